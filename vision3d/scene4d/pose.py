"""Camera poses for the camera step: a world→camera matrix updated by a left-multiplied SE(3) increment
``exp(ω, v)``, differentiable everywhere (series expansions near zero rotation)."""

from __future__ import annotations

import numpy as np
import torch


def _skew(w: torch.Tensor) -> torch.Tensor:
    z = torch.zeros((), dtype=w.dtype, device=w.device)
    return torch.stack([torch.stack([z, -w[2], w[1]]), torch.stack([w[2], z, -w[0]]),
                        torch.stack([-w[1], w[0], z])])


def so3_exp(w: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula ``I + A·[w] + B·[w]²`` with ``A = sinθ/θ``, ``B = (1−cosθ)/θ²`` (Taylor near 0)."""
    t2 = (w * w).sum()
    small = t2 < 1e-8
    t = torch.sqrt(torch.where(small, torch.ones_like(t2), t2))
    a = torch.where(small, 1 - t2 / 6, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24, (1 - torch.cos(t)) / torch.where(small, torch.ones_like(t2), t2))
    W = _skew(w)
    return torch.eye(3, dtype=w.dtype, device=w.device) + a * W + b * (W @ W)


def apply_increment(base: torch.Tensor, omega: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``[R(ω) | v] · base`` for a 4×4 world→camera ``base``."""
    R = so3_exp(omega)
    top = torch.cat([R, v[:, None]], 1)
    inc = torch.cat([top, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=base.dtype, device=base.device)], 0)
    return inc @ base


def predict_next(poses: list[np.ndarray]) -> np.ndarray:
    """Constant-velocity guess of the next world→camera pose from the last two (the last one if only one)."""
    if len(poses) < 2:
        return poses[-1].copy()
    return poses[-1] @ np.linalg.inv(poses[-2]) @ poses[-1]
