"""The pure-PyTorch backend: EWA projection + banded, culled, sorted compositing (any device, autograd)."""

from __future__ import annotations

import torch

from vision3d.render.api import RenderOutput
from vision3d.render.composite import composite
from vision3d.render.projection import project_gaussians
from vision3d.render.sh import eval_sh


def per_camera_colors(g: dict, viewmats: torch.Tensor, sh_degree: int | None) -> torch.Tensor:
    """``(C,N,3)`` colours: RGB as given, or SH evaluated along each camera's viewing directions."""
    C = len(viewmats)
    if g["sh"] is None:
        return g["colors"][None].expand(C, -1, -1)
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]
    centers = -(R.transpose(-1, -2) @ t[..., None])[..., 0]  # (C,3)
    dirs = g["means"][None] - centers[:, None]
    return eval_sh(sh_degree, g["sh"], dirs)


def render_torch(g: dict, V: torch.Tensor, K: torch.Tensor, width: int, height: int, *, mode: str,
                 background, features, flow_uv, sh_degree, near, far, eps2d, retain_screen_grad,
                 max_pairs, compiled: bool = False) -> RenderOutput:
    p = project_gaussians(g["means"], g["quats"], g["scales"], g["opacities"], V, K, width, height,
                          near=near, far=far, eps2d=eps2d)
    if retain_screen_grad and p.means2d.requires_grad:
        p.means2d.retain_grad()
    C = p.depths.shape[0]
    chans, names = [], []
    if mode == "rgb":
        chans.append(per_camera_colors(g, V, sh_degree))
        names.append(("colors", 3))
    if features is not None:
        chans.append(features[None].expand(C, -1, -1))
        names.append(("features", features.shape[-1]))
    if flow_uv is not None:
        chans.append(flow_uv - p.means2d)
        names.append(("flow", 2))
    chans.append(p.depths[..., None])
    names.append(("depth", 1))
    if compiled:  # the ``cpu`` backend: numba tile kernels instead of the vectorised pair compositor
        from vision3d.render.tile_composite import composite_tiles

        img, alpha, n_pairs = composite_tiles(p, torch.cat(chans, -1), width, height)
    else:
        img, alpha, n_pairs = composite(p, torch.cat(chans, -1), width, height, max_pairs=max_pairs)
    parts, i = {}, 0
    for name, d in names:
        parts[name] = img[..., i:i + d]
        i += d
    colors = parts.get("colors")
    if colors is not None and background is not None:
        colors = colors + (1 - alpha)[..., None] * background[:, None, None, :]
    depth = parts["depth"][..., 0] / alpha.clamp_min(1e-10)
    return RenderOutput(colors=colors, depth=depth, alpha=alpha, means2d=p.means2d, radii=p.radii,
                        depths=p.depths, backend="cpu" if compiled else "torch", features=parts.get("features"), flow=parts.get("flow"),
                        n_pairs=n_pairs, _screen=p.means2d if retain_screen_grad else None)
