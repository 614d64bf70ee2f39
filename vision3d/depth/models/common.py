"""Blocks and losses shared by the depth networks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, twice, with an optional additive embedding and a 1×1 skip when widths differ."""

    def __init__(self, cin: int, cout: int, emb: int = 0):
        super().__init__()
        self.n1, self.c1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.n2, self.c2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout) if emb else None
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        if self.emb is not None and e is not None:
            h = h + self.emb(e)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return h + self.skip(x)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion timesteps ``(B,)`` → ``(B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], 1)


def ssi_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale-and-shift-invariant L1 (MiDaS): align ``pred`` to ``target`` per image by least squares on
    ``mask``, then the mean absolute error. All ``(B,H,W)``; returns the loss and the aligned prediction."""
    m = mask.float()
    n = m.sum((1, 2)).clamp_min(1)
    p, t = pred * m, target * m
    a00, a01, a11 = (p * pred).sum((1, 2)), p.sum((1, 2)), n
    b0, b1 = (p * target).sum((1, 2)), t.sum((1, 2))
    det = (a00 * a11 - a01 * a01).clamp_min(1e-6)
    s = (a11 * b0 - a01 * b1) / det
    sh = (-a01 * b0 + a00 * b1) / det
    aligned = s[:, None, None] * pred + sh[:, None, None]
    return ((aligned - target).abs() * m).sum((1, 2)).div(n).mean(), aligned


def gradient_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """Multi-scale gradient matching of the (normalised) prediction and target (MiDaS), sharpening edges."""
    total = pred.new_zeros(())
    for s in range(scales):
        if s:
            pred, target = pred[:, ::2, ::2], target[:, ::2, ::2]
            mask = mask[:, ::2, ::2]
        d = (pred - target) * mask
        gx = (d[:, :, 1:] - d[:, :, :-1]).abs() * (mask[:, :, 1:] * mask[:, :, :-1])
        gy = (d[:, 1:] - d[:, :-1]).abs() * (mask[:, 1:] * mask[:, :-1])
        total = total + (gx.sum() + gy.sum()) / mask.sum().clamp_min(1)
    return total


def normalise_inverse_depth(depth: torch.Tensor, mask: torch.Tensor, return_stats: bool = False):
    """Metric depth → inverse depth normalised per image to median 0 and mean absolute deviation 1 (on mask).

    With ``return_stats`` also the per-image ``(median, scale)`` ``(B,)`` each, so that ``x·scale + median`` maps
    a normalised map back to metric inverse depth."""
    inv = torch.where(mask, 1.0 / depth.clamp_min(1e-3), torch.zeros_like(depth))
    out, meds, scales = [], [], []
    for i in range(len(inv)):
        v = inv[i][mask[i]]
        if v.numel() < 2:
            out.append(torch.zeros_like(inv[i]))
            meds.append(inv.new_zeros(()))
            scales.append(inv.new_ones(()))
            continue
        med = v.median()
        s = (v - med).abs().mean().clamp_min(1e-6)
        out.append((inv[i] - med) / s)
        meds.append(med)
        scales.append(s)
    if return_stats:
        return torch.stack(out), torch.stack(meds), torch.stack(scales)
    return torch.stack(out)


def temporal_consistency_loss(inv0: torch.Tensor, inv1: torch.Tensor, landing: torch.Tensor, rz: torch.Tensor,
                              tz: torch.Tensor, mask: torch.Tensor, max_err: float = 1.0) -> torch.Tensor:
    """Reprojection consistency of two metric inverse-depth maps of consecutive frames (the flicker metric as a
    loss): each pixel of frame 0 is lifted with ``1/inv0``, moved to frame 1 (``z = d0·rz + tz``, ground-truth
    relative pose), and ``inv1`` is sampled bilinearly at its ground-truth landing pixel ``landing (B,2,H,W)``;
    the error is ``|1 − z·inv1|`` (relative depth disagreement) averaged over ``mask`` (co-visible pixels),
    clipped at ``max_err`` so gross outliers do not dominate. All maps ``(B,H,W)``, ``tz (B,)``."""
    B, H, W = inv0.shape
    d0 = 1.0 / inv0.clamp_min(1e-4)
    z = d0 * rz + tz[:, None, None]
    gx = 2 * landing[:, 0] / max(W - 1, 1) - 1
    gy = 2 * landing[:, 1] / max(H - 1, 1) - 1
    inv1s = F.grid_sample(inv1[:, None], torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border",
                          align_corners=True)[:, 0]
    m = (mask & (z > 1e-3)).float()
    err = (1 - z * inv1s).abs().clamp_max(max_err)
    return (err * m).sum() / m.sum().clamp_min(1)
