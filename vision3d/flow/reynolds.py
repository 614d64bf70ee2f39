r"""ReynoldsFlow (Chen & Wu, arXiv 2503.04500): training-free flow from the Reynolds transport theorem.

What the paper states (abstract, TL;DR, ICLR'26 abstract): optical flow is generalised beyond brightness
constancy with the Reynolds transport theorem (RTT); the velocity is split by the Helmholtz decomposition into
irrotational and solenoidal parts; an *irrotational Reynolds flow* ``v_r`` adds "lighting-variant residuals" to the
conventional flow ``v_o``; ReynoldsFlow+ is the RGB image ``(|v_o|, |v_r|, f^n)``. The paper's own equations were
not retrievable (only its first page is stored anywhere we can read), so the concrete equations below are our
derivation from those statements; ``docs/methods/reynoldsflow.md`` says line by line what is paper and what is ours.

Derivation implemented here (grey intensity ``f(x,t)``, velocity ``v``)::

    RTT:            d/dt ∫_Ω(t) f dx = ∫_Ω(t) [ ∂t f + ∇·(f v) ] dx
    conservation:   ∂t f + ∇·(f v) = 0   ⇔   ∂t f + v·∇f + f ∇·v = 0                          (1)
    Helmholtz:      v = v_o + v_l,  v_l = ∇φ (irrotational; carries the divergence),
                    v_o = motion that obeys brightness constancy (the conventional flow, ∂t f + v_o·∇f = 0)
    data term:      ∂t f + v_o·∇f + f m = 0,   m = ∇·v_l  (the RTT term f∇·v as a lighting residual)     (2)
    Poisson:        Δφ = m  (Dirichlet φ=0 on the border),   v_l = ∇φ,   v_r = v_o + v_l                (3)

``(v_o, m)`` minimise ``Σ K_ρ*(f_t + v_o·∇f + f m)² + α²|∇v_o|² + β²|∇m|² + γ m²`` (combined local-global
Horn-Schunck with the RTT term), coarse-to-fine with warping, red-black SOR, median filtering of the flow
between warps. ``v_l`` then comes from one fast sine-transform Poisson solve. The displacement estimate
(:func:`reynolds_flow`) is the motion ``v_o``: ``v_l`` explains brightness change, not point motion.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import cv2
import numpy as np
from scipy import fft as sfft

from vision3d.errors import InputError

__all__ = ["ReynoldsConfig", "reynolds_components", "reynolds_flow", "reynolds_rgb", "to_grey"]

_D5 = np.array([[1.0, -8.0, 0.0, 8.0, -1.0]], np.float32) / 12.0  # 5-point central derivative
_NB4 = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32)      # 4-neighbour sum
_OUTPUTS = ("motion", "reynolds")
_NORMS = ("minmax", "fixed")


@dataclass(frozen=True)
class ReynoldsConfig:
    """Parameters of the ReynoldsFlow estimator (the paper gives none for a dense solver: see the docs).

    Intensities are in [0,1] and flows in pixels, so ``alpha``/``beta`` are in intensity units.
    """

    alpha: float = 0.02        # smoothness of the motion v_o
    beta: float = 0.2          # smoothness of the lighting divergence m = ∇·v_l (large: lighting varies slowly)
    gamma: float = 1e-4        # ridge on m (keeps m at 0 where nothing constrains it)
    lighting: bool = True      # estimate the RTT lighting term f·m jointly (False: plain CLG brightness constancy)
    rho: float = 1.0           # Gaussian sigma (px) of the local integration of the data term (CLG)
    presmooth: float = 0.8     # Gaussian sigma (px) applied to both frames before everything
    pyr_scale: float = 0.5     # pyramid downscale factor per level
    min_size: int = 12         # coarsest level keeps at least this many pixels on its short side
    max_levels: int = 7
    warps: int = 3             # warps (re-linearisations) per level
    iters: int = 12            # red-black SOR sweeps per warp
    omega: float = 1.8         # SOR over-relaxation
    median: int = 5            # median filter (3 or 5) on the flow after each warp; 0 = off
    output: str = "motion"     # reynolds_flow() returns "motion" (v_o) or "reynolds" (v_r = v_o + v_l)
    rgb_norm: str = "minmax"   # ReynoldsFlow+ magnitude channels: per-frame "minmax" or "fixed" (/ rgb_max_mag)
    rgb_max_mag: float = 10.0  # pixels mapped to 1.0 when rgb_norm == "fixed"

    def __post_init__(self) -> None:
        pos = {"alpha": self.alpha, "beta": self.beta, "pyr_scale": self.pyr_scale, "omega": self.omega,
               "rgb_max_mag": self.rgb_max_mag}
        for name, val in pos.items():
            if not (np.isfinite(val) and val > 0):
                raise InputError(f"ReynoldsConfig.{name} must be a positive number, got {val!r}")
        for name in ("gamma", "rho", "presmooth"):
            val = getattr(self, name)
            if not (np.isfinite(val) and val >= 0):
                raise InputError(f"ReynoldsConfig.{name} must be >= 0, got {val!r}")
        if not self.pyr_scale < 1:
            raise InputError(f"ReynoldsConfig.pyr_scale must be in (0,1), got {self.pyr_scale}")
        if not 0 < self.omega < 2:
            raise InputError(f"ReynoldsConfig.omega must be in (0,2), got {self.omega}")
        for name in ("min_size", "max_levels", "warps", "iters"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"ReynoldsConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.median not in (0, 1, 3, 5):
            raise InputError(f"ReynoldsConfig.median must be 0, 3 or 5, got {self.median!r}")
        if self.output not in _OUTPUTS:
            raise InputError(f"ReynoldsConfig.output must be one of {_OUTPUTS}, got {self.output!r}")
        if self.rgb_norm not in _NORMS:
            raise InputError(f"ReynoldsConfig.rgb_norm must be one of {_NORMS}, got {self.rgb_norm!r}")


def _config(config: ReynoldsConfig | None, params: dict) -> ReynoldsConfig:
    cfg = config if config is not None else ReynoldsConfig()
    if params:
        known = {f.name for f in fields(ReynoldsConfig)}
        bad = sorted(set(params) - known)
        if bad:
            raise InputError(f"unknown ReynoldsFlow parameter(s) {', '.join(bad)}",
                             fix=f"use fields of ReynoldsConfig: {', '.join(sorted(known))}")
        cfg = replace(cfg, **params)
    return cfg


# ------------------------------------------------------------------------------------------------- input
def to_grey(img: np.ndarray, name: str = "image") -> np.ndarray:
    """Image (``(H,W)``, ``(H,W,1|3|4)``; uint8, uint16, bool or float in [0,1]) → float32 ``(H,W)`` in [0,1].

    Colour uses the Rec. 601 luma weights (0.299, 0.587, 0.114); floats are clipped to [0,1], NaN → 0.
    """
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InputError(f"{name} has shape {a.shape}, expected (H,W), (H,W,3) or (H,W,4)")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise InputError(f"{name} is {a.shape[1]}x{a.shape[0]} pixels; flow needs at least 2x2")
    if a.dtype == np.uint8:
        f = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        f = a.astype(np.float32) / 65535.0
    elif a.dtype == bool:
        f = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.number):
        f = np.clip(np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    else:
        raise InputError(f"{name} has dtype {a.dtype}, expected uint8, uint16 or float")
    if f.ndim == 3:
        f = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    return np.ascontiguousarray(f, np.float32)


def _pair(img0: np.ndarray, img1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s0, s1 = np.shape(img0)[:2], np.shape(img1)[:2]
    if s0 != s1:
        raise InputError(f"frames differ in size: {s0[1] if len(s0) > 1 else '?'}x{s0[0] if s0 else '?'} vs "
                         f"{s1[1] if len(s1) > 1 else '?'}x{s1[0] if s1 else '?'}",
                         fix="resize both frames to one size")
    return to_grey(img0, "img0"), to_grey(img1, "img1")


# ------------------------------------------------------------------------------------------------- solver
def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return a
    return cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)


def _downsample(a: np.ndarray, scale: float) -> np.ndarray:
    h, w = a.shape[:2]
    sigma = 0.5 * np.sqrt(1.0 / scale**2 - 1.0)
    return cv2.resize(_blur(a, sigma), (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_LINEAR)


def _pyramid(f0: np.ndarray, f1: np.ndarray, cfg: ReynoldsConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    levels = [(f0, f1)]
    while len(levels) < cfg.max_levels and min(levels[-1][0].shape) * cfg.pyr_scale >= cfg.min_size:
        a, b = levels[-1]
        levels.append((_downsample(a, cfg.pyr_scale), _downsample(b, cfg.pyr_scale)))
    return levels


def _resize_flow(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H,W,3) [u, v, m] → new size; u and v are rescaled to the new pixel units, m (1/frame) is not."""
    h, w = x.shape[:2]
    out = cv2.resize(x, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= shape[1] / w
    out[..., 1] *= shape[0] / h
    return out


def _inv3_sym(a11, a12, a13, a22, a23, a33):
    """Per-pixel inverse of symmetric 3×3 matrices (float64 in, float32 out): 6 unique entries."""
    c11 = a22 * a33 - a23 * a23
    c12 = a13 * a23 - a12 * a33
    c13 = a12 * a23 - a13 * a22
    c22 = a11 * a33 - a13 * a13
    c23 = a12 * a13 - a11 * a23
    c33 = a11 * a22 - a12 * a12
    det = a11 * c11 + a12 * c12 + a13 * c13
    r = 1.0 / det
    return [(c * r).astype(np.float32) for c in (c11, c12, c13, c22, c23, c33)]


def _warp(f1: np.ndarray, x: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mx, my = gx + x[..., 0], gy + x[..., 1]
    h, w = f1.shape
    f1w = cv2.remap(f1, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return f1w, inside


def _solve_level(f0: np.ndarray, f1: np.ndarray, x: np.ndarray, cfg: ReynoldsConfig) -> np.ndarray:
    """Refine x = [u, v, m] (H,W,3) on one pyramid level."""
    h, w = f0.shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    a2, b2 = cfg.alpha**2, cfg.beta**2
    red = ((np.add.outer(np.arange(h), np.arange(w)) % 2) == 0)[..., None]
    masks = (red, ~red)
    for _ in range(cfg.warps):
        f1w, inside = _warp(f1, x, gx, gy)
        fm = 0.5 * (f0 + f1w)
        ix = cv2.filter2D(fm, -1, _D5, borderType=cv2.BORDER_REFLECT_101)
        iy = cv2.filter2D(fm, -1, _D5.T, borderType=cv2.BORDER_REFLECT_101)
        fc = fm if cfg.lighting else np.zeros_like(fm)
        wt = inside.astype(np.float32)
        # linearised around the current flow: (f1w - f0) + ∇f·(v' - v) + f m' = 0
        c = (f1w - f0) - ix * x[..., 0] - iy * x[..., 1]
        ix, iy, fc, c = ix * wt, iy * wt, fc * wt, c * wt
        terms = {"11": ix * ix, "12": ix * iy, "13": ix * fc, "22": iy * iy, "23": iy * fc, "33": fc * fc,
                 "1c": ix * c, "2c": iy * c, "3c": fc * c}
        stack = _blur(np.dstack(list(terms.values())), cfg.rho).astype(np.float64)
        j = {k: stack[..., i] for i, k in enumerate(terms)}
        inv = _inv3_sym(j["11"] + 4 * a2, j["12"], j["13"], j["22"] + 4 * a2, j["23"], j["33"] + 4 * b2 + cfg.gamma)
        i11, i12, i13, i22, i23, i33 = inv
        rhs = -np.dstack([j["1c"], j["2c"], j["3c"]]).astype(np.float32)
        reg = np.array([a2, a2, b2], np.float32)
        for _ in range(cfg.iters):
            for mask in masks:
                r = rhs + reg * cv2.filter2D(x, -1, _NB4, borderType=cv2.BORDER_REPLICATE)
                r0, r1, r2 = r[..., 0], r[..., 1], r[..., 2]
                y = np.dstack([i11 * r0 + i12 * r1 + i13 * r2,
                               i12 * r0 + i22 * r1 + i23 * r2,
                               i13 * r0 + i23 * r1 + i33 * r2])
                np.copyto(x, x + cfg.omega * (y - x), where=mask)
        if cfg.median > 1:
            x[..., 0] = cv2.medianBlur(np.ascontiguousarray(x[..., 0]), cfg.median)
            x[..., 1] = cv2.medianBlur(np.ascontiguousarray(x[..., 1]), cfg.median)
    return x


def _estimate(f0: np.ndarray, f1: np.ndarray, cfg: ReynoldsConfig) -> np.ndarray:
    """Coarse-to-fine joint estimate of motion and lighting divergence: (H,W,3) [u, v, m]."""
    levels = _pyramid(_blur(f0, cfg.presmooth), _blur(f1, cfg.presmooth), cfg)
    x = np.zeros((*levels[-1][0].shape, 3), np.float32)
    for k in range(len(levels) - 1, -1, -1):
        a, b = levels[k]
        if x.shape[:2] != a.shape:
            x = _resize_flow(x, a.shape)
        x = _solve_level(a, b, x, cfg)
    return x


def _poisson_dirichlet(rhs: np.ndarray) -> np.ndarray:
    """Solve the 5-point Δφ = rhs with φ = 0 just outside the grid (DST-I diagonalises it exactly)."""
    h, w = rhs.shape
    lam_y = 2.0 * np.cos(np.pi * np.arange(1, h + 1) / (h + 1)) - 2.0
    lam_x = 2.0 * np.cos(np.pi * np.arange(1, w + 1) / (w + 1)) - 2.0
    hat = sfft.dstn(rhs.astype(np.float64), type=1)
    hat /= lam_y[:, None] + lam_x[None, :]
    return sfft.idstn(hat, type=1).astype(np.float32)


# ------------------------------------------------------------------------------------------------- public API
def reynolds_components(img0: np.ndarray, img1: np.ndarray, config: ReynoldsConfig | None = None,
                        **params) -> dict[str, np.ndarray]:
    """All ReynoldsFlow quantities for the pair ``img0 → img1`` (flows ``(2,H,W)`` float32 pixels, x first).

    Keys:
      ``v_o``        motion (conventional flow: obeys brightness constancy once lighting is accounted for);
      ``v_l``        irrotational lighting-residual flow ``∇φ`` (RTT divergence term);
      ``v_r``        Reynolds flow ``v_o + v_l`` (satisfies the linearised RTT continuity equation);
      ``div``        ``m = ∇·v_l`` (H,W), about ``-(f1/f0 - 1)`` for a pure brightness change;
      ``phi``        the potential φ (H,W);
      ``residual``   brightness-constancy residual ``f1(x+v_o) - f0(x)`` (H,W);
      ``rtt_residual`` what is left after the lighting term: ``residual + f̄·m`` (H,W);
      ``intensity``  grey ``f^n`` of ``img0`` (H,W) in [0,1].
    ``params`` override fields of ``config`` (a :class:`ReynoldsConfig`).
    """
    cfg = _config(config, params)
    f0, f1 = _pair(img0, img1)
    x = _estimate(f0, f1, cfg)
    u, v = x[..., 0], x[..., 1]
    m = x[..., 2] if cfg.lighting else np.zeros_like(u)
    phi = _poisson_dirichlet(m)
    gy, gx = np.gradient(phi)
    v_o = np.stack([u, v]).astype(np.float32)
    v_l = np.stack([gx, gy]).astype(np.float32)
    h, w = f0.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f1w = cv2.remap(f1, xx + u, yy + v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    res = f1w - f0
    return {"v_o": v_o, "v_l": v_l, "v_r": (v_o + v_l).astype(np.float32), "div": m.astype(np.float32),
            "phi": phi, "residual": res.astype(np.float32),
            "rtt_residual": (res + 0.5 * (f0 + f1w) * m).astype(np.float32), "intensity": f0}


def reynolds_flow(img0: np.ndarray, img1: np.ndarray, config: ReynoldsConfig | None = None,
                  **params) -> np.ndarray:
    """ReynoldsFlow displacement from ``img0`` to ``img1`` as ``(2,H,W)`` float32 pixels, x first.

    Images: float32 ``(H,W,3)`` in [0,1], uint8, or grey. Returns ``v_o`` (default, ``output="motion"``) or
    ``v_r = v_o + v_l`` (``output="reynolds"``); see :func:`reynolds_components`.
    """
    cfg = _config(config, params)
    comps = reynolds_components(img0, img1, cfg)
    return comps["v_o"] if cfg.output == "motion" else comps["v_r"]


def _norm_mag(flow: np.ndarray, cfg: ReynoldsConfig) -> np.ndarray:
    mag = np.sqrt((flow.astype(np.float32) ** 2).sum(0))
    if cfg.rgb_norm == "fixed":
        return np.clip(mag / cfg.rgb_max_mag, 0.0, 1.0)
    lo, hi = float(mag.min()), float(mag.max())
    return (mag - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(mag)


def reynolds_rgb(img0: np.ndarray, img1: np.ndarray, config: ReynoldsConfig | None = None,
                 components: dict[str, np.ndarray] | None = None, **params) -> np.ndarray:
    """ReynoldsFlow+ image ``(H,W,3)`` float32 in [0,1]: R = |v_o|, G = |v_r|, B = intensity f^n of ``img0``.

    The magnitudes are min–max normalised per frame (``rgb_norm="minmax"``) or divided by ``rgb_max_mag``
    (``"fixed"``). Pass ``components`` (from :func:`reynolds_components` on the same pair) to skip the solve.
    """
    cfg = _config(config, params)
    comps = components if components is not None else reynolds_components(img0, img1, cfg)
    return np.ascontiguousarray(np.dstack([_norm_mag(comps["v_o"], cfg), _norm_mag(comps["v_r"], cfg),
                                           comps["intensity"]]).astype(np.float32))
