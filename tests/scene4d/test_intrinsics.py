"""Focal length from optical flow: close to the truth on exact flow, the stated default when flow cannot tell."""

from __future__ import annotations

import numpy as np

from pipelines.demo import SAMPLE
from vision3d.scene4d.intrinsics import DEFAULT_FOV_DEG, estimate_focal
from vision3d.synth.sample import load_sample_gt


def _fov(f: float, w: int) -> float:
    return float(np.degrees(2 * np.arctan(w / 2 / f)))


def test_focal_from_exact_flow_of_the_synthetic_clip():
    gt = load_sample_gt(SAMPLE / "gt.npz")
    flows = list(gt["flow_fw"][:12])
    h, w = flows[0].shape[1:]
    f, how = estimate_focal(flows, w, h)
    true = _fov(gt["K"][0][0, 0] if np.ndim(gt["K"]) == 3 else gt["K"][0, 0], w)
    assert "estimated" in how
    assert abs(_fov(f, w) - true) <= 10, (how, true)


def test_focal_defaults_without_motion_or_constraint():
    h, w = 48, 64
    still = [np.zeros((2, h, w), np.float32)] * 3
    f, how = estimate_focal(still, w, h)
    assert "too little motion" in how and abs(_fov(f, w) - DEFAULT_FOV_DEG) < 1e-6
    rng = np.random.default_rng(0)             # random flow: no rigid motion explains it at any focal
    noise = [rng.normal(0, 3, (2, h, w)).astype(np.float32) for _ in range(3)]
    f, how = estimate_focal(noise, w, h)
    assert "default" in how and abs(_fov(f, w) - DEFAULT_FOV_DEG) < 1e-6
