"""``rasterize()``: one call for every backend, with gsplat's semantics and the project's conventions.

Gaussians are raw parameters (``means``, wxyz ``quats``, ``log_scales``, ``opacity_logits``, ``colors`` or
``sh``) as a :class:`~vision3d.core.gaussians.Gaussians` or a dict of tensors; cameras are
:class:`~vision3d.core.camera.Cameras` or a ``(viewmats, Ks)`` pair of tensors (world→camera, OpenCV
convention, pixel centres at integer coordinates — the gsplat backend shifts K by half a pixel itself).
Tensors keep their autograd graph, so parameters and ``viewmats`` can be optimised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vision3d.core.camera import Cameras
from vision3d.core.gaussians import Gaussians
from vision3d.errors import InputError

BACKENDS = ("auto", "torch", "cpu", "gsplat")
MODES = ("rgb", "depth")


@dataclass
class RenderOutput:
    """What a render returns; images are ``(C,H,W,...)`` for ``C`` cameras, per-Gaussian data ``(C,N,...)``."""

    colors: torch.Tensor | None  # (C,H,W,3), background composited; None in depth mode
    depth: torch.Tensor  # (C,H,W) expected z-depth Σwz/Σw (0 where nothing is hit)
    alpha: torch.Tensor  # (C,H,W) accumulated opacity
    means2d: torch.Tensor  # (C,N,2) projected centres, pixels (integer pixel centres)
    radii: torch.Tensor  # (C,N,2) int32 screen half-extent; 0 where culled
    depths: torch.Tensor  # (C,N) camera-space z of each centre
    backend: str
    features: torch.Tensor | None = None  # (C,H,W,D) extra channels composited with the colour weights
    flow: torch.Tensor | None = None  # (C,H,W,2) composited 2D displacement of the Gaussians (Σ w·d)
    n_pairs: int | None = None  # candidate (pixel, Gaussian) pairs inside the Gaussians' ellipses (torch backend)
    meta: dict | None = None  # gsplat's own meta dict (gsplat backend; its densification strategies read it)
    _screen: torch.Tensor | None = field(default=None, repr=False)  # the 2D-means node that holds .grad

    @property
    def visible(self) -> torch.Tensor:
        """``(C,N)`` Gaussians that reach at least one pixel's box in each camera."""
        return (self.radii > 0).all(-1)

    def screen_grad(self) -> torch.Tensor | None:
        """d(loss)/d(2D means) ``(C,N,2)`` after ``backward()`` (needs ``retain_screen_grad=True``)."""
        return None if self._screen is None else self._screen.grad


def _as_tensor(v, device, dtype=torch.float32) -> torch.Tensor:
    return v.to(device) if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=dtype, device=device)


def activated(gaussians: Gaussians | dict, device=None, validate: bool = True) -> dict:
    """Raw parameters → gsplat's activated inputs: means, quats, scales, opacities, colors | sh. ``validate``
    also rejects NaN/inf values (a host synchronisation per tensor on a GPU)."""
    if isinstance(gaussians, Gaussians):
        gaussians = gaussians.to_torch(device)
    need = ("means", "quats", "log_scales", "opacity_logits")
    missing = [k for k in need if k not in gaussians]
    if missing:
        raise InputError(f"Gaussians are missing {', '.join(missing)}",
                         fix="pass a Gaussians object or a dict with means, quats, log_scales, opacity_logits, "
                             "colors or sh")
    device = device or gaussians["means"].device
    g = {k: _as_tensor(gaussians[k], device) for k in need}
    colors, sh = gaussians.get("colors"), gaussians.get("sh")
    if (colors is None) == (sh is None):
        raise InputError("Gaussians need exactly one of colors (N,3) or sh (N,K,3)")
    n = len(g["means"])
    shapes = {"means": (n, 3), "quats": (n, 4), "log_scales": (n, 3), "opacity_logits": (n,)}
    for k, s in shapes.items():
        if tuple(g[k].shape) != s:
            raise InputError(f"Gaussian {k} has shape {tuple(g[k].shape)}, expected {s}")
    out = {"means": g["means"], "quats": g["quats"], "scales": torch.exp(g["log_scales"]),
           "opacities": torch.sigmoid(g["opacity_logits"]), "colors": None, "sh": None}
    if colors is not None:
        out["colors"] = _as_tensor(colors, device)
        if out["colors"].shape != (n, 3):
            raise InputError(f"Gaussian colors have shape {tuple(out['colors'].shape)}, expected ({n}, 3)")
    else:
        out["sh"] = _as_tensor(sh, device)
        if out["sh"].ndim != 3 or out["sh"].shape[0] != n or out["sh"].shape[2] != 3:
            raise InputError(f"Gaussian sh has shape {tuple(out['sh'].shape)}, expected ({n}, K, 3)")
    for k in ("means", "quats", "scales", "opacities", "colors", "sh") if validate else ():
        v = out[k]
        if v is not None and n and not bool(torch.isfinite(v.detach()).all()):
            bad = int((~torch.isfinite(v.detach().reshape(n, -1))).any(1).sum())
            raise InputError(f"{bad} Gaussians have NaN or inf {k}",
                             fix="drop them first (Gaussians.finite_mask()) or lower the learning rate")
    return out


def camera_tensors(cameras, device,
                   validate: bool = True) -> tuple[torch.Tensor, torch.Tensor, int | None, int | None]:
    """``Cameras`` or ``(viewmats, Ks)`` → float tensors ``(C,4,4)``, ``(C,3,3)`` and the cameras' size;
    ``validate`` checks the values (finite, positive focal), the shapes are always checked."""
    if isinstance(cameras, Cameras):
        K, V = cameras.to_torch(device)
        return V, K, cameras.width, cameras.height
    try:
        viewmats, Ks = cameras
    except (TypeError, ValueError):
        raise InputError("cameras must be a Cameras object or a (viewmats, Ks) pair") from None
    V, K = _as_tensor(viewmats, device), _as_tensor(Ks, device)
    if V.ndim == 2:
        V = V[None]
    if K.ndim == 2:
        K = K[None].expand(len(V), 3, 3)
    if V.shape[1:] != (4, 4) or K.shape != (len(V), 3, 3):
        raise InputError(f"camera tensors have shapes viewmats {tuple(V.shape)}, Ks {tuple(K.shape)}; "
                         "expected (C,4,4) and (C,3,3)")
    if not validate:
        return V, K, None, None
    if not (bool(torch.isfinite(V.detach()).all()) and bool(torch.isfinite(K.detach()).all())):
        raise InputError("camera matrices contain NaN or inf")
    if bool((K[:, 0, 0] <= 0).any()) or bool((K[:, 1, 1] <= 0).any()):
        raise InputError("camera focal length must be positive", fix="give fx, fy > 0 in K")
    return V, K, None, None


def pick_backend(backend: str, device: torch.device) -> str:
    """``auto`` → gsplat on CUDA when it imports, the compiled ``cpu`` backend on the CPU (numba), else torch;
    explicit names are checked."""
    if backend not in BACKENDS:
        raise InputError(f"unknown render backend {backend!r}", fix=f"use one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return "torch"
    from vision3d.render import cpu_kernels

    if backend == "cpu":
        if device.type != "cpu" or not cpu_kernels.AVAILABLE:
            why = cpu_kernels.WHY or f"tensors are on {device.type}"
            raise InputError(f"the cpu backend is unavailable: {why}", fix="use backend='torch' or 'auto'")
        return "cpu"
    from vision3d.render.gsplat_backend import gsplat_available

    ok, why = gsplat_available(device)
    if backend == "gsplat" and not ok:
        raise InputError(f"the gsplat backend is unavailable: {why}", fix="use backend='torch' or a CUDA device")
    if ok:
        return "gsplat"
    return "cpu" if device.type == "cpu" and cpu_kernels.AVAILABLE else "torch"


def rasterize(gaussians: Gaussians | dict, cameras, width: int | None = None, height: int | None = None, *,
              backend: str = "auto", mode: str = "rgb", background=None, features: torch.Tensor | None = None,
              flow_means: torch.Tensor | None = None, flow_viewmats: torch.Tensor | None = None,
              sh_degree: int | None = None, near: float = 0.01, far: float = 1e10, eps2d: float = 0.3,
              retain_screen_grad: bool = False, max_pairs: int = 4_000_000, validate: bool = True) -> RenderOutput:
    """Render Gaussians into one or more cameras.

    ``mode``: ``rgb`` (colour, depth, alpha) or ``depth`` (depth and alpha only). ``background``: ``(3,)`` or
    ``(C,3)``. ``features``: ``(N,D)`` extra channels. ``flow_means``/``flow_viewmats``: a second state of
    the Gaussians and/or cameras; the output ``flow`` composites each Gaussian's 2D displacement from this
    state to that one. ``retain_screen_grad`` keeps d(loss)/d(2D means) for densification. ``validate=False``
    skips the NaN/inf checks of the values (shapes are still checked): each costs a host synchronisation on a GPU,
    so fitting loops check their parameters once in a while instead of on every render.
    """
    if mode not in MODES:
        raise InputError(f"unknown render mode {mode!r}", fix=f"use one of {', '.join(MODES)}")
    device = gaussians["means"].device if isinstance(gaussians, dict) and isinstance(
        gaussians.get("means"), torch.Tensor) else None
    if device is None:
        device = cameras[0].device if isinstance(cameras, tuple) and isinstance(cameras[0], torch.Tensor) \
            else torch.device("cpu")
    g = activated(gaussians, device, validate)
    V, K, cw, ch = camera_tensors(cameras, device, validate)
    width, height = int(width or cw or 0), int(height or ch or 0)
    if width <= 0 or height <= 0:
        raise InputError(f"render size {width}x{height} must be positive")
    if not (0 < near < far):
        raise InputError(f"near/far planes {near}/{far} must satisfy 0 < near < far")
    n = len(g["means"])
    if features is not None:
        features = _as_tensor(features, device)
        if features.ndim != 2 or len(features) != n:
            raise InputError(f"features have shape {tuple(features.shape)}, expected ({n}, D)")
    if g["sh"] is not None:
        k = g["sh"].shape[1]
        max_degree = round(k ** 0.5) - 1
        if (max_degree + 1) ** 2 != k:
            raise InputError(f"Gaussian sh has {k} coefficients; expected (d+1)² for d in 0..3")
        sh_degree = max_degree if sh_degree is None else sh_degree
        if not 0 <= sh_degree <= max_degree:
            raise InputError(f"sh_degree {sh_degree} needs {(sh_degree + 1) ** 2} coefficients, have {k}")
    bg = None
    if background is not None and mode == "rgb":
        bg = _as_tensor(background, device).reshape(-1, 3).expand(len(V), 3)
    flow_uv = None
    if flow_means is not None or flow_viewmats is not None:
        from vision3d.render.projection import project_points

        means_b = g["means"] if flow_means is None else _as_tensor(flow_means, device)
        if means_b.shape != g["means"].shape:
            raise InputError(f"flow_means have shape {tuple(means_b.shape)}, expected {tuple(g['means'].shape)}")
        V_b = V if flow_viewmats is None else _as_tensor(flow_viewmats, device).reshape(V.shape)
        flow_uv = project_points(means_b, V_b, K)
    chosen = pick_backend(backend, torch.device(device))
    kw = {}
    if chosen == "gsplat":
        from vision3d.render.gsplat_backend import render_gsplat as impl
    else:
        from vision3d.render.torch_backend import render_torch as impl

        kw = {"compiled": chosen == "cpu"}
    return impl(g, V, K, width, height, mode=mode, background=bg, features=features, flow_uv=flow_uv,
                sh_degree=sh_degree, near=near, far=far, eps2d=eps2d, retain_screen_grad=retain_screen_grad,
                max_pairs=max_pairs, **kw)
