"""The gsplat backend (CUDA): a thin wrapper over ``gsplat.rasterization`` with the project's conventions.

Extra channels (features, flow) and depth ride along as colour channels (``render_mode="RGB+ED"``), so they
are composited with exactly the colour weights. K is shifted by half a pixel into gsplat's convention and
the returned 2D means are shifted back.
"""

from __future__ import annotations

import functools
import importlib.util

import torch

from vision3d.render.api import RenderOutput
from vision3d.render.torch_backend import per_camera_colors


@functools.cache
def _import_gsplat():
    import gsplat

    return gsplat


def gsplat_available(device: torch.device) -> tuple[bool, str]:
    """Whether gsplat can render on ``device``, and why not."""
    if device.type != "cuda":
        return False, f"gsplat needs a CUDA device (got {device.type})"
    return _gsplat_loads()


@functools.cache
def _gsplat_loads() -> tuple[bool, str]:
    """Asked once per process: a fitting loop renders thousands of times."""
    if importlib.util.find_spec("gsplat") is None:
        return False, "gsplat is not installed (pip install 'vision3d[cuda]')"
    try:
        _import_gsplat()
    except Exception as e:  # noqa: BLE001 - any import or compile failure means "unavailable"
        return False, f"gsplat failed to load: {e}"
    return True, "ok"


def render_gsplat(g: dict, V: torch.Tensor, K: torch.Tensor, width: int, height: int, *, mode: str,
                  background, features, flow_uv, sh_degree, near, far, eps2d, retain_screen_grad,
                  max_pairs) -> RenderOutput:
    gsplat = _import_gsplat()
    Kg = K.clone()
    Kg[:, 0, 2] += 0.5
    Kg[:, 1, 2] += 0.5
    C, N = len(V), len(g["means"])
    extra = []
    if features is not None:
        extra.append(features[None].expand(C, -1, -1))
    plain = mode == "rgb" and not extra and flow_uv is None
    kwargs = {}
    if plain and g["sh"] is not None:
        colors, kwargs["sh_degree"] = g["sh"], sh_degree
    elif mode == "rgb":
        colors = per_camera_colors(g, V, sh_degree)
    else:
        colors = None
    # flow needs the 2D means before rendering: project the centres the same way (cheap, differentiable)
    if flow_uv is not None:
        from vision3d.render.projection import project_points

        extra.append(flow_uv - project_points(g["means"], V, K))
    if colors is None and not extra:
        render_mode, chans = "ED", None
    else:
        chans = torch.cat(([colors] if colors is not None else []) + extra, -1) if extra else colors
        render_mode = "RGB+ED"
    bgs = None
    if background is not None and colors is not None:
        pad = chans.shape[-1] - 3 if chans.dim() == 3 else 0
        bgs = torch.cat([background, background.new_zeros(C, pad)], -1) if pad else background
    img, alphas, meta = gsplat.rasterization(
        g["means"], g["quats"], g["scales"], g["opacities"],
        chans if chans is not None else torch.zeros(N, 1, device=V.device), V, Kg, width, height,
        near_plane=near, far_plane=far, eps2d=eps2d, render_mode=render_mode, backgrounds=bgs, packed=False,
        **kwargs)
    screen = meta["means2d"]
    if retain_screen_grad and screen.requires_grad:
        screen.retain_grad()
    alpha = alphas[..., 0]
    depth = img[..., -1]
    out, i = {}, 0
    if colors is not None:
        out["colors"] = img[..., :3]
        i = 3
    if features is not None:
        out["features"] = img[..., i:i + features.shape[-1]]
        i += features.shape[-1]
    if flow_uv is not None:
        # gsplat composites the background into every channel; extra channels have a zero background
        out["flow"] = img[..., i:i + 2]
    return RenderOutput(colors=out.get("colors"), depth=depth, alpha=alpha, means2d=screen - 0.5,
                        radii=meta["radii"].reshape(C, N, -1).expand(C, N, 2).to(torch.int32),
                        depths=meta["depths"], backend="gsplat", features=out.get("features"),
                        flow=out.get("flow"), meta=meta, _screen=screen if retain_screen_grad else None)
