"""A brute-force dense reference renderer (every Gaussian × every pixel, explicit loops over depth order).

Written independently of the backend's vectorised code, for tiny exactness tests only.
"""

from __future__ import annotations

import torch

from vision3d.render.projection import project_gaussians


def render_dense(g: dict, V: torch.Tensor, K: torch.Tensor, width: int, height: int, features: torch.Tensor,
                 background: torch.Tensor | None = None):
    """Per camera: loop over Gaussians front to back with full-image tensors; returns (img, alpha)."""
    p = project_gaussians(g["means"], g["quats"], g["scales"], g["opacities"], V, K, width, height)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=features.dtype), torch.arange(width, dtype=features.dtype),
                            indexing="ij")
    imgs, alphas = [], []
    for c in range(len(V)):
        T = torch.ones(height, width, dtype=features.dtype)
        done = torch.zeros(height, width, dtype=torch.bool)
        img = torch.zeros(height, width, features.shape[-1], dtype=features.dtype)
        for i in torch.argsort(p.depths[c].detach(), stable=True).tolist():
            if not bool(p.visible[c, i]):
                continue
            dx = p.means2d[c, i, 0] - xs
            dy = p.means2d[c, i, 1] - ys
            a, b, cc = p.conics[c, i]
            sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
            alpha = (p.opacities[c, i] * torch.exp(-sigma)).clamp_max(0.999)
            use = (sigma >= 0) & (alpha >= 1 / 255) & ~done
            nxt = T * (1 - alpha)
            stop = use & (nxt <= 1e-4)
            done = done | stop
            use = use & ~stop
            w = torch.where(use, alpha * T, torch.zeros_like(alpha))
            img = img + w[..., None] * features[c, i]
            T = torch.where(use, nxt, T)
        alpha_img = 1 - T
        if background is not None:
            img = img + T[..., None] * background
        imgs.append(img)
        alphas.append(alpha_img)
    return torch.stack(imgs), torch.stack(alphas)
