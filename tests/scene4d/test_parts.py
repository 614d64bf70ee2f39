"""GFlow's parts on exact synthetic data: split, depth-prior alignment, poses, initialisation, metrics."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vision3d.errors import InputError
from vision3d.scene4d.init import gaussians_from_pixels, sample_pixels, texture_probability, unproject
from vision3d.scene4d.metrics import contour_accuracy, region_similarity, trajectory_errors, umeyama
from vision3d.scene4d.pose import apply_increment, predict_next, so3_exp
from vision3d.scene4d.prior import align_to_render, initial_depth
from vision3d.scene4d.split import fit_motion, mask_from_fit, moving_mask, smooth_choice
from vision3d.synth import SynthConfig, make_batch


def _clip(static_camera: bool, seed: int = 2):
    cfg = SynthConfig(width=96, height=72, n_frames=2, motion="small", texture_source="procedural",
                      static_camera_prob=1.0 if static_camera else 0.0, camera_translation_px=(2.0, 4.0),
                      moving_fraction=1.0, object_translation_px=(3.0, 6.0))
    return make_batch(cfg, 1, seed)


@pytest.mark.parametrize("static", [False, True])
def test_moving_mask_finds_the_moving_objects(static):
    b = _clip(static)
    gt = b.moving[0, 0]
    assert gt.mean() > 0.02
    r = moving_mask(b.flow[0, 0], b.valid[0, 0] < 0.5)
    iou = region_similarity(r.moving, gt)
    assert iou > 0.6, (iou, r.model)
    if static:
        assert r.model == "homography"


def test_model_choice_follows_the_neighbouring_frames():
    # one frame of a panning shot whose own F would absorb the moving object takes the shot's homography
    assert smooth_choice([0.4, 0.5, 1.2, 0.4, 0.6]) == [True] * 5
    # a shot that changes from panning to translating changes model once the neighbours have changed
    assert smooth_choice([0.2] * 5 + [3.0] * 5, radius=2) == [True] * 5 + [False] * 5
    assert smooth_choice([np.inf]) == [False]


def test_forced_homography_keeps_the_object_that_F_absorbs():
    # a static camera: F is ill-posed and its LMedS fit explains the object's motion along its epipolar lines;
    # the homography (identity) does not
    b = _clip(True)
    flow, occ, gt = b.flow[0, 0], b.valid[0, 0] < 0.5, b.moving[0, 0]
    fit = fit_motion(flow, occ)
    assert fit is not None and fit.h_score < 1
    forced = mask_from_fit(flow, fit, occ, homography_only=True)
    both = mask_from_fit(flow, fit, occ, homography_only=False)
    assert forced.model == "homography" and both.model == "fundamental"
    assert region_similarity(forced.moving, gt) > 0.6
    assert forced.moving.sum() >= both.moving.sum()
    assert mask_from_fit(flow, None, occ).model == "none"


def test_no_motion_gives_no_moving_pixels():
    flow = np.zeros((2, 48, 64), np.float32)
    assert not moving_mask(flow).moving.any()
    # a rigid camera motion (pure translation parallel to a plane): nothing moves
    flow[0] = 2.0
    assert moving_mask(flow).moving.mean() < 0.01


def test_initial_depth_kinds():
    inv = np.linspace(0.1, 1.0, 100).reshape(10, 10)
    d = initial_depth(inv, "inverse")
    assert np.all(d > 0) and d[0, 0] > d[-1, -1]       # small inverse depth = far
    m = initial_depth(inv * 5, "metric")
    assert np.allclose(m, inv * 5)
    r = initial_depth(inv - 0.5, "relative")
    assert np.all(r > 0) and abs(np.median(r) - 1) < 1e-6
    with pytest.raises(InputError):
        initial_depth(np.full((4, 4), np.nan), "metric")
    with pytest.raises(InputError):
        initial_depth(inv, "disparity")


def test_prior_outliers_stay_within_the_scene_depths():
    """A prior pixel far outside the depths the scene holds (a failed match: 0.002× or 70× the median) is clipped
    to the scene's span widened 2× — unclipped, GFlow put Gaussians there, a hair in front of the camera."""
    rng = np.random.default_rng(0)
    rendered = rng.uniform(1.0, 3.0, (40, 50))
    prior = rendered.copy()
    prior[5, :10], prior[20, :10] = 0.002, 70.0
    d = align_to_render(prior, "relative", rendered, np.ones_like(rendered), affine=(1.0, 0.0))
    lo, hi = np.percentile(rendered, [2, 98])
    assert d.min() >= lo / 2 - 1e-6 and d.max() <= 2 * hi + 1e-6
    assert np.allclose(d[10:19], rendered[10:19], atol=1e-5)        # the rest as the prior says
    inv = align_to_render(1 / prior, "inverse", rendered, np.ones_like(rendered), affine=(1.0, 0.0))
    assert inv.min() >= lo / 2 - 1e-4 and inv.max() <= 2 * hi + 1e-4
    r = initial_depth(np.where(rng.random((40, 50)) < 0.002, 1e-4, rendered), "relative")    # the first frame too
    assert r.min() >= 0.5 * np.percentile(r, 2) - 1e-6


@pytest.mark.parametrize("kind", ["metric", "inverse"])
def test_align_to_render_recovers_scale_and_shift(kind):
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 5, (40, 50))
    prior = (1 / depth - 0.1) * 3.0 if kind == "inverse" else 0.5 * depth + 0.2
    prior_noisy = prior.copy()
    prior_noisy[:5] += 10                             # outliers the robust fit must ignore
    out = align_to_render(prior_noisy, kind, depth, np.ones_like(depth))
    assert np.median(np.abs(out[5:] - depth[5:]) / depth[5:]) < 1e-3
    assert align_to_render(prior, kind, depth, np.zeros_like(depth)) is None


@pytest.mark.parametrize("kind", ["relative", "inverse", "metric"])
def test_prior_affine_fit_reports_agreement_and_initial_map(kind):
    from vision3d.scene4d.prior import fit_prior_affine, initial_affine

    rng = np.random.default_rng(1)
    depth = rng.uniform(1, 5, (40, 50))
    prior = 1 / depth if kind == "inverse" else 0.5 * depth + 0.2
    a, b, corr = fit_prior_affine(prior, kind, depth, np.ones_like(depth))
    assert corr > 0.99
    assert fit_prior_affine(rng.permutation(prior.ravel()).reshape(prior.shape), kind, depth,
                            np.ones_like(depth))[2] < 0.2          # a prior unrelated to the scene
    a0, b0 = initial_affine(prior, kind)                          # what initial_depth did, as an affine map
    z = initial_depth(prior, kind)
    mapped = np.clip(a0 * prior + b0, 0.1, 1.0) if kind == "inverse" else a0 * prior + b0   # near/far 1/10
    assert np.allclose(mapped, 1 / z if kind == "inverse" else z, rtol=1e-4)


def test_so3_exp_matches_rodrigues_and_has_gradients_at_zero():
    w = np.array([0.3, -0.2, 0.5])
    R = so3_exp(torch.tensor(w, dtype=torch.float64)).numpy()
    assert np.allclose(R, cv2.Rodrigues(w)[0], atol=1e-10)
    z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    v = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    V = apply_increment(torch.eye(4, dtype=torch.float64), z, v)
    (V[:3, :3] @ torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    a = np.eye(4)
    b = np.eye(4)
    b[0, 3] = 1
    assert np.allclose(predict_next([a, b])[0, 3], 2)


def test_texture_sampling_prefers_edges_and_sizes_follow_density():
    img = np.zeros((64, 64, 3), np.float32)
    img[:, 32:] = 1.0                                 # one vertical edge
    p = texture_probability(img, uniform=0.1)
    assert abs(p.sum() - 1) < 1e-9 and p[:, 30:34].sum() > 0.5
    xy, pp = sample_pixels(p, 500, np.random.default_rng(0))
    assert len(xy) == 500 and len(np.unique(np.round(xy).astype(int), axis=0)) > 400
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 31.5], [0, 0, 1]])
    g = gaussians_from_pixels(img, np.full((64, 64), 2.0, np.float32), K, np.eye(4), xy, pp, 500)
    assert np.allclose(g["means"][:, 2], 2.0, atol=1e-5)
    flat = np.abs(xy[:, 0] - 32) > 6
    # samples in flat regions stand for more pixels → larger Gaussians
    assert np.exp(g["log_scales"][flat, 0]).mean() > 2 * np.exp(g["log_scales"][~flat, 0]).mean()
    X = unproject(np.array([[31.5, 31.5]]), np.array([3.0]), K, np.eye(4))
    assert np.allclose(X, [[0, 0, 3]])


def test_trajectory_metrics():
    rng = np.random.default_rng(1)
    gt = np.repeat(np.eye(4)[None], 10, 0)
    gt[:, :3, 3] = np.cumsum(rng.normal(0, 0.1, (10, 3)), 0)
    s, R, t = 2.5, cv2.Rodrigues(np.array([0.1, 0.2, 0.3]))[0], np.array([1.0, 2.0, 3.0])
    est = gt.copy()
    est[:, :3, 3] = (gt[:, :3, 3] - t) @ R / s        # the same path in another similarity frame
    est[:, :3, :3] = R.T @ gt[:, :3, :3]
    e = trajectory_errors(est, gt)
    assert e["ate"] < 1e-9 and e["rpe_t"] < 1e-9 and e["rpe_r"] < 1e-6
    s2, R2, _ = umeyama(est[:, :3, 3], gt[:, :3, 3])
    assert abs(s2 - s) < 1e-9 and np.allclose(R2, R)
    noisy = est.copy()
    noisy[:, :3, 3] += rng.normal(0, 0.05, (10, 3))
    assert trajectory_errors(noisy, gt)["ate"] > 0.01


def test_mask_metrics():
    a = np.zeros((50, 50), bool)
    a[10:30, 10:30] = True
    assert region_similarity(a, a) == 1 and contour_accuracy(a, a) == 1
    b = np.roll(a, 15, axis=1)
    assert region_similarity(a, b) < 0.5 and contour_accuracy(a, b) < 0.6
    assert region_similarity(np.zeros_like(a), np.zeros_like(a)) == 1


def test_a_flat_prior_becomes_a_plane():
    flat = np.full((8, 8), 3.0)
    assert np.allclose(initial_depth(flat, "relative"), 1.0)
    assert np.allclose(initial_depth(flat, "metric"), 3.0)
    assert np.all(np.isfinite(initial_depth(flat, "inverse")))


def test_bilinear_samples_more_points_than_remap_takes_in_one_row():
    """The paper preset samples 50k pixels at once; cv2.remap's maps must stay under 32767 per side."""
    from vision3d.scene4d.init import bilinear

    rng = np.random.default_rng(0)
    img = rng.random((48, 64, 3)).astype(np.float32)
    xy = rng.uniform(0, [63, 47], (40_000, 2)).astype(np.float32)
    x0, y0 = np.floor(xy).astype(int).T
    fx, fy = (xy - np.floor(xy)).T[..., None]
    x1, y1 = np.minimum(x0 + 1, 63), np.minimum(y0 + 1, 47)
    ref = (img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x1] * fx * (1 - fy) + img[y1, x0] * (1 - fx) * fy
           + img[y1, x1] * fx * fy)
    out = bilinear(img, xy)
    assert out.shape == (40_000, 3) and np.abs(out - ref).max() < 1e-5
    assert bilinear(img[..., 0], xy[:0]).shape == (0,)
