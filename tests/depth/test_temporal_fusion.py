"""Flow-guided temporal fusion (``vision3d.depth.temporal``) and the video-depth metrics, on synthetic video
with exact depth."""

from __future__ import annotations

import numpy as np
import pytest

from vision3d.depth.metrics import align_sequence
from vision3d.depth.registry import estimate
from vision3d.depth.temporal import FusionConfig, TemporalFusion
from vision3d.synth import SynthConfig, render_sequence, sample_scene


@pytest.fixture(scope="module")
def video():
    cfg = SynthConfig(width=160, height=120, n_frames=8, moving_fraction=0.0, static_camera_prob=0.0,
                      camera_translation_px=(2.0, 4.0), camera_rotation_deg=(0.0, 0.3), texture_source="procedural")
    seq = render_sequence(sample_scene(cfg, np.random.default_rng(5)))
    return list(seq.images), [1.0 / d for d in seq.depth]  # frames and true inverse depth


def _video_residual(preds, inv_true):
    """Relative RMS error after one scale and shift for the whole video (inner pixels)."""
    crop = (slice(12, -12), slice(12, -12))
    p = np.concatenate([x[crop].ravel() for x in preds])
    g = np.concatenate([x[crop].ravel() for x in inv_true])
    A = np.stack([p, np.ones_like(p)], 1)
    coef, *_ = np.linalg.lstsq(A, g, rcond=None)
    return float(np.sqrt(np.mean((A @ coef - g) ** 2)) / np.std(g))


def test_fusion_keeps_one_scale_per_video(video):
    frames, inv = video
    rng = np.random.default_rng(0)
    preds = [(a * d + b).astype(np.float32) for d, a, b in zip(inv, rng.uniform(0.5, 2.0, len(inv)),
                                                                 rng.uniform(-0.2, 0.2, len(inv)))]
    fuse = TemporalFusion()
    fused = [fuse(f, p) for f, p in zip(frames, preds)]
    assert np.array_equal(fused[0], preds[0])  # the first frame sets the scale
    raw, chained = _video_residual(preds, inv), _video_residual(fused, inv)
    assert raw > 0.3
    assert chained < 0.1 and chained < raw / 4


def test_fusion_averages_noise_on_agreeing_pixels():
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 1, (96, 128, 3)).astype(np.float32)
    truth = np.tile(np.linspace(1.0, 2.0, 128, dtype=np.float32), (96, 1))
    fuse = TemporalFusion(FusionConfig(weight=0.5, agree=0.2))
    errs = []
    for _ in range(12):
        out = fuse(img, truth + rng.normal(0, 0.02, truth.shape).astype(np.float32))
        errs.append(float(np.std(out - truth)))
    assert errs[-1] < 0.75 * 0.02  # a steady-state recursive mean of the noise (≈ 0.58 σ)


def test_fusion_keeps_new_content_where_maps_disagree():
    rng = np.random.default_rng(2)
    img = rng.uniform(0, 1, (96, 128, 3)).astype(np.float32)
    before = np.tile(np.linspace(1.0, 2.0, 128, dtype=np.float32), (96, 1))
    after = before.copy()
    after[30:60, 40:80] += 1.0  # an object appears in front
    fuse = TemporalFusion()
    fuse(img, before)
    out = fuse(img, after)
    assert np.abs(out[35:55, 45:75] - after[35:55, 45:75]).max() < 0.02
    assert np.abs(out - after).mean() < 0.01


def test_off_switch_and_shape_change():
    img = np.zeros((32, 48, 3), np.float32)
    fuse = TemporalFusion(FusionConfig(weight=0.0))
    a, b = np.ones((32, 48), np.float32), np.full((32, 48), 3.0, np.float32)
    fuse(img, a)
    assert np.array_equal(fuse(img, b), b)
    fuse = TemporalFusion()
    fuse(img, a)
    small = np.full((16, 24), 2.0, np.float32)
    assert np.array_equal(fuse(img[:16, :24], small), small)  # a new size restarts the filter


def test_video_alignment_counts_scale_jumps(video):
    _, inv = video
    depth = [1.0 / d for d in inv]
    masks = [np.ones(d.shape, bool) for d in depth]
    jumpy = [d * s for d, s in zip(inv, np.linspace(1.0, 2.0, len(inv)))]
    video_aligned = align_sequence(jumpy, depth, masks, "inverse")
    per_frame = align_sequence(jumpy[:1], depth[:1], masks[:1], "inverse")
    assert np.allclose(per_frame[0], depth[0], rtol=1e-3)
    assert np.abs(video_aligned[-1] / depth[-1] - 1).mean() > 0.1


def test_futuredepth_fuses_by_default(video):
    frames, _ = video
    default = [r.depth for r in estimate(frames[:3], "futuredepth")]
    plain = [r.depth for r in estimate(frames[:3], "futuredepth", temporal=False)]
    assert np.array_equal(default[0], plain[0])
    assert not np.allclose(default[2], plain[2])
