"""The temporal consistency loss FutureDepth trains with is the flicker metric made differentiable."""

from __future__ import annotations

import numpy as np
import torch

from vision3d.depth.metrics import covisible, reprojection_flicker, reprojection_geometry
from vision3d.depth.models.common import temporal_consistency_loss
from vision3d.synth.scenes3d import Scene3DConfig, render_clip3d


def _pair():
    clip = render_clip3d(Scene3DConfig(width=64, height=48, n_frames=2, n_objects=(1, 2), spacing=0.08), rng=3)
    T = clip.world_to_cam[1] @ np.linalg.inv(clip.world_to_cam[0])
    d0, d1 = clip.depth[0].astype(np.float64), clip.depth[1].astype(np.float64)
    _, mx, my, rz, tz = reprojection_geometry(d0, clip.K, T)
    vis = covisible(d0, d1, clip.K, T)
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)[None]  # noqa: E731
    return clip, T, d0, d1, vis, (t(np.stack([mx, my])), t(rz), torch.tensor([tz], dtype=torch.float32), t(vis) > 0)


def test_zero_for_ground_truth_and_grows_with_flicker():
    clip, T, d0, d1, vis, (landing, rz, tz, mask) = _pair()
    inv0, inv1 = torch.as_tensor(1 / d0, dtype=torch.float32)[None], torch.as_tensor(1 / d1, dtype=torch.float32)[None]
    base = temporal_consistency_loss(inv0, inv1, landing, rz, tz, mask).item()
    assert base < 0.02
    rng = np.random.default_rng(0)
    noisy = d1 * np.exp(rng.normal(0, 0.1, d1.shape))          # per-pixel flicker of ~10 %
    inv1n = torch.as_tensor(1 / noisy, dtype=torch.float32)[None]
    loss = temporal_consistency_loss(inv0, inv1n, landing, rz, tz, mask).item()
    metric = reprojection_flicker(d0, noisy, clip.K, T, vis)
    # agrees with the evaluation metric (within half: the loss samples the next map bilinearly, which averages
    # per-pixel noise that the metric's nearest-pixel lookup keeps; how much depends on the scene drawn)
    assert loss > 0.03 and abs(loss - metric) < 0.5 * metric


def test_gradient_reduces_flicker():
    clip, T, d0, d1, vis, (landing, rz, tz, mask) = _pair()
    inv0 = torch.as_tensor(1 / d0, dtype=torch.float32)[None]
    inv1 = torch.as_tensor(1 / (d1 * 1.2), dtype=torch.float32)[None].requires_grad_(True)
    opt = torch.optim.Adam([inv1], lr=0.01)
    first = None
    for _ in range(30):
        loss = temporal_consistency_loss(inv0, inv1, landing, rz, tz, mask)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
