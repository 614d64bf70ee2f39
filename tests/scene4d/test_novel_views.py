"""Novel-view scoring against a synthetic scene: a reconstruction with the true geometry scores far above the
input frame (the peer), a flattened one scores lower, and the score does not depend on the reconstruction's
unknown scale."""

import numpy as np
import pytest

from vision3d.core.camera import Camera
from vision3d.errors import InputError
from vision3d.scene4d.evaluate import novel_view_scores
from vision3d.scene4d.scene import DYNAMIC, FrameRows, Scene4D
from vision3d.synth import SynthConfig, sample_scene
from vision3d.synth.render import render_frame

W, H = 96, 72


@pytest.fixture(scope="module")
def spec():
    cfg = SynthConfig(width=W, height=H, n_frames=2, n_layers=(3, 4), motion="small", static_camera_prob=0.0,
                      texture_source="procedural", seed=3)
    return sample_scene(cfg, rng=3)


def _from_depth(spec, depth_of=lambda D: D, scale: float = 1.0) -> Scene4D:
    """Frame 0 of ``spec`` as one still Gaussian per pixel at depth ``depth_of(true depth)``, the world scaled."""
    f = render_frame(spec, 0, Camera(spec.K, spec.world_to_cam[0], W, H))
    img = f.image[..., :3].astype(np.float32)
    img = img / 255 if f.image.dtype == np.uint8 else img
    ok = np.isfinite(f.depth)
    D = np.where(ok, depth_of(np.where(ok, f.depth, 1.0)), np.nan)
    ys, xs = np.mgrid[0:H, 0:W]
    K = spec.K
    cam = np.stack([(xs - K[0, 2]) / K[0, 0] * D, (ys - K[1, 2]) / K[1, 1] * D, D], -1)[ok]
    c2w = np.linalg.inv(spec.world_to_cam[0])
    X = (cam @ c2w[:3, :3].T + c2w[:3, 3]) * scale
    n = len(X)
    params = {"means": X.astype(np.float32), "quats": np.tile([1.0, 0, 0, 0], (n, 1)).astype(np.float32),
              "log_scales": np.log(np.repeat(D[ok, None] * scale / K[0, 0] * 0.7, 3, 1)).astype(np.float32),
              "opacity_logits": np.full(n, 5.0, np.float32), "colors": img[ok]}
    empty = FrameRows(np.zeros(2, np.int64), np.zeros(0, np.int64),
                      {k: np.zeros((0, *params[k].shape[1:]), np.float32) for k in DYNAMIC})
    V = spec.world_to_cam[:1].copy()
    V[:, :3, 3] *= scale
    return Scene4D(params, np.zeros(n, bool), np.zeros(n, np.int64), empty, spec.K, W, H, V)


def test_true_geometry_beats_the_input_frame_and_a_flat_scene(spec):
    true = novel_view_scores(_from_depth(spec), spec, frames=[0])
    flat = novel_view_scores(_from_depth(spec, lambda D: np.full_like(D, np.median(D))), spec, frames=[0])
    assert true["novel_psnr_0"] > 25
    for m in ("0.05", "0.1"):
        assert true[f"novel_psnr_{m}"] > true[f"novel_static_psnr_{m}"] + 6, true
        assert true[f"novel_psnr_{m}"] > flat[f"novel_psnr_{m}"] + 3, (true, flat)
        assert 0.3 < true[f"novel_covisible_{m}"] <= 1
    assert true["novel_psnr_0.05"] == pytest.approx(true["novel_all_psnr_0.05"])   # all Gaussians exist at frame 0


def test_the_reconstruction_scale_does_not_matter(spec):
    a = novel_view_scores(_from_depth(spec), spec, frames=[0])
    b = novel_view_scores(_from_depth(spec, scale=0.3), spec, frames=[0])
    for k in ("novel_psnr_0.05", "novel_psnr_0.1"):
        assert b[k] == pytest.approx(a[k], abs=0.5)


def test_the_shipped_sample_scene_is_drawn_again_exactly(tmp_path):
    from pipelines.demo import SAMPLE
    from vision3d.synth.sample import load_sample_gt, load_sample_scene

    spec = load_sample_scene(SAMPLE)
    assert np.allclose(spec.world_to_cam, load_sample_gt(SAMPLE / "gt.npz")["world_to_cam"])
    (tmp_path / "sample.json").write_text("{not json")
    with pytest.raises(InputError):
        load_sample_scene(tmp_path)
