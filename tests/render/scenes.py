"""Small random Gaussian scenes and cameras for render tests."""

from __future__ import annotations

import numpy as np
import torch

from vision3d.core.camera import intrinsics, look_at


def random_scene(n: int, seed: int = 0, dtype=torch.float32, spread: float = 0.6, log_scale: float = -2.5) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"means": torch.randn(n, 3, generator=g, dtype=dtype) * spread,
            "quats": torch.randn(n, 4, generator=g, dtype=dtype),
            "log_scales": torch.randn(n, 3, generator=g, dtype=dtype) * 0.5 + log_scale,
            "opacity_logits": torch.randn(n, generator=g, dtype=dtype) * 2,
            "colors": torch.rand(n, 3, generator=g, dtype=dtype)}


def cameras(width: int, height: int, n: int = 2, dtype=torch.float32, focal: float | None = None):
    """``n`` cameras on an arc 3 units from the origin, looking at it (viewmats, Ks)."""
    f = focal or 1.0 * width
    eyes = [[1.2 * np.sin(a), -0.4 * np.cos(a), -3.0] for a in np.linspace(-0.5, 0.5, n)]
    V = torch.tensor(np.stack([look_at(e, [0, 0, 0]) for e in eyes]), dtype=dtype)
    K = torch.tensor(intrinsics(f, f, (width - 1) / 2, (height - 1) / 2), dtype=dtype)[None].repeat(n, 1, 1)
    return V, K
