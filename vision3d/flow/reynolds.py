r"""ReynoldsFlow (Chen & Wu, arXiv 2503.04500): training-free flow from the Reynolds transport theorem.

What the paper states (abstract, TL;DR, ICLR'26 abstract): optical flow is generalised beyond brightness
constancy with the Reynolds transport theorem (RTT); the velocity is split by the Helmholtz decomposition into
irrotational and solenoidal parts; an *irrotational Reynolds flow* ``v_r`` adds "lighting-variant residuals" to the
conventional flow ``v_o``; ReynoldsFlow+ is the RGB image ``(|v_o|, |v_r|, f^n)``. The paper's own equations were
not retrievable (no stored copy goes past its first page), so the concrete equations below are our derivation
from those statements; ``docs/methods/reynoldsflow.md`` says line by line what is paper and what is ours.

Derivation implemented here (grey intensity ``f(x,t)``, velocity ``v``, one frame = one time unit)::

    RTT:           d/dt ∫_Ω(t) f dx = ∫_Ω(t) [ ∂t f + ∇·(f v) ] dx
    conservation:  ∂t f + ∇·(f v) = 0   ⇔   ∂t f + v·∇f + f ∇·v = 0                               (1)
    Helmholtz:     v = v_o + v_l,  v_l = ∇φ irrotational (it alone carries divergence);
                   v_o: the motion, which obeys brightness constancy ∂t f + v_o·∇f = 0 (conventional flow)
    data term:     ∂t f + v_o·∇f + f m = 0,    m = ∇·v_l   (the RTT term f∇·v as the lighting residual)  (2)
    Poisson:       Δφ = m (φ = 0 on the border),   v_l = ∇φ,   Reynolds flow v_r = v_o + v_l           (3)

``v_o`` minimises ``Σ K_ρ*(f1(x+v_o) - f0 + f̄ m)² + α²|∇v_o|²`` (combined local-global Horn-Schunck,
linearised, coarse-to-fine with warping, red-black SOR, median filter between warps); after each motion
update ``m`` is refitted by least squares as a smooth bilinear field (the lighting residual varies slowly;
a per-pixel ``m`` could explain any motion away). ``v_l`` then comes from one sine-transform Poisson solve.
The displacement estimate (:func:`reynolds_flow`) is the motion ``v_o``: ``v_l`` accounts for brightness
change, not for the motion of scene points.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import cv2
import numpy as np
from scipy import fft as sfft

from vision3d.errors import InputError
from vision3d.io.images import unit_float

__all__ = ["ReynoldsConfig", "reynolds_components", "reynolds_flow", "reynolds_rgb", "to_grey"]

_D5 = np.array([[1.0, -8.0, 0.0, 8.0, -1.0]], np.float32) / 12.0  # 5-point central derivative
_OUTPUTS = ("motion", "reynolds")
_NORMS = ("minmax", "fixed")


@dataclass(frozen=True)
class ReynoldsConfig:
    """Parameters of the ReynoldsFlow estimator (the paper gives none for a dense solver: see the docs).

    Intensities are in [0,1] and flows in pixels, so ``alpha`` is in intensity units.
    """

    alpha: float = 0.02        # smoothness of the motion v_o
    lighting: bool = True      # estimate the RTT lighting term f·m jointly (False: plain CLG brightness constancy)
    lighting_grid: int = 1     # m = ∇·v_l is bilinear on a grid of lighting_grid × lighting_grid cells
    gamma: float = 1e-3        # ridge on the grid values of m, relative to the mean data weight per node
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
        pos = {"alpha": self.alpha, "pyr_scale": self.pyr_scale, "omega": self.omega,
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
        for name in ("min_size", "max_levels", "warps", "iters", "lighting_grid"):
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
    f = unit_float(a)
    if a.dtype.kind == "f":
        f = np.clip(np.nan_to_num(f, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    if f.ndim == 3:
        f = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    return np.ascontiguousarray(f, np.float32)


def _pair(img0: np.ndarray, img1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f0, f1 = to_grey(img0, "img0"), to_grey(img1, "img1")
    if f0.shape != f1.shape:
        raise InputError(f"frames differ in size: {f0.shape[1]}x{f0.shape[0]} vs {f1.shape[1]}x{f1.shape[0]}",
                         fix="resize both frames to one size")
    return f0, f1


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
    """(3,H,W) [u, v, m] → new size; u and v are rescaled to the new pixel units, m (1/frame) is not."""
    h, w = x.shape[1:]
    out = np.stack([cv2.resize(c, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) for c in x])
    out[0] *= shape[1] / w
    out[1] *= shape[0] / h
    return out


def _pad_even(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[-2:]
    if h % 2 == 0 and w % 2 == 0:
        return a
    return cv2.copyMakeBorder(a, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)


def _warp(f1: np.ndarray, flow: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``f1(x + flow)`` (bilinear, border replicated) and the mask of targets inside the frame."""
    mx, my = gx + flow[0], gy + flow[1]
    h, w = f1.shape
    f1w = cv2.remap(f1, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return f1w, inside


# ---- the lighting term: m = ∇·v_l on a coarse bilinear grid, fitted by least squares (exact, global)
def _hat_basis(n: int, cells: int) -> np.ndarray:
    """``(n, cells+1)`` bilinear hat functions with nodes spread evenly over ``0..n-1`` (a partition of unity)."""
    t = np.arange(n, dtype=np.float64)
    step = max(n - 1, 1) / cells
    nodes = np.arange(cells + 1) * step
    return np.maximum(0.0, 1.0 - np.abs(t[:, None] - nodes[None, :]) / step)


def _fit_lighting(r: np.ndarray, f: np.ndarray, wt: np.ndarray, cfg: ReynoldsConfig) -> np.ndarray:
    """argmin_m Σ wt (r + f m)² + ridge |c|², m = B c on a ``lighting_grid``² bilinear grid → m (H,W)."""
    h, w = r.shape
    by, bx = _hat_basis(h, cfg.lighting_grid), _hat_basis(w, cfg.lighting_grid)
    g = by.shape[1]
    ww = (wt * f * f).astype(np.float64)
    wr = (wt * f * r).astype(np.float64)
    # A[(j,i),(k,l)] = Σ_yx ww by_j by_k bx_i bx_l, computed separably (einsum's own loops: these skinny
    # products are slow and erratic through a shared BLAS)
    sy = (by[:, :, None] * by[:, None, :]).reshape(h, g * g)
    sx = (bx[:, :, None] * bx[:, None, :]).reshape(w, g * g)
    zx = np.einsum("yx,xk->yk", ww, sx)
    a4 = np.einsum("yj,yk->jk", sy, zx).reshape(g, g, g, g).transpose(0, 2, 1, 3).reshape(g * g, g * g)
    b = -np.einsum("yj,yi->ji", by, np.einsum("yx,xi->yi", wr, bx)).reshape(-1)
    ridge = cfg.gamma * max(float(np.trace(a4)) / (g * g), 1e-12)
    coef = np.linalg.solve(a4 + ridge * np.eye(g * g), b)
    return np.einsum("yi,xi->yx", np.einsum("yj,ji->yi", by, coef.reshape(g, g)), bx).astype(np.float32)


# ---- the motion term: Horn-Schunck/CLG by red-black SOR on the four 2×2 sub-lattices L00, L01, L10, L11 of
# an even-sized grid: red points (L00, L11) only have black neighbours (L01, L10) and vice versa, so each
# half-sweep is a dense update of two quarter-size arrays. Borders replicate (Neumann), as the smoothness term.
def _lattices(a: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(a[i::2, j::2]) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1))]


def _merge(q: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    out = np.empty(shape, np.float32)
    for (i, j), part in zip(((0, 0), (0, 1), (1, 0), (1, 1)), q):
        out[i::2, j::2] = part
    return out


def _nb_sum(q: list[np.ndarray], k: int, out: np.ndarray) -> None:
    """4-neighbour sum for the points of sub-lattice ``k`` of one plane (given as its four sub-lattices)."""
    l00, l01, l10, l11 = q
    if k == 0:    # (2a,2b): up/down in L10, left/right in L01
        np.add(l10, l01, out=out)
        out[1:] += l10[:-1]
        out[0] += l00[0]
        out[:, 1:] += l01[:, :-1]
        out[:, 0] += l00[:, 0]
    elif k == 1:  # (2a,2b+1): up/down in L11, left/right in L00
        np.add(l11, l00, out=out)
        out[1:] += l11[:-1]
        out[0] += l01[0]
        out[:, :-1] += l00[:, 1:]
        out[:, -1] += l01[:, -1]
    elif k == 2:  # (2a+1,2b): up/down in L00, left/right in L11
        np.add(l00, l11, out=out)
        out[:-1] += l00[1:]
        out[-1] += l10[-1]
        out[:, 1:] += l11[:, :-1]
        out[:, 0] += l10[:, 0]
    else:         # (2a+1,2b+1): up/down in L01, left/right in L10
        np.add(l01, l10, out=out)
        out[:-1] += l01[1:]
        out[-1] += l11[-1]
        out[:, :-1] += l10[:, 1:]
        out[:, -1] += l11[:, -1]


def _sor(u: np.ndarray, v: np.ndarray, j11, j12, j22, j1c, j2c, cfg: ReynoldsConfig) -> tuple[np.ndarray, np.ndarray]:
    """Red-black block SOR for ``(J + 4α²) w_p = -J_c + α² Σ_nb w`` at every pixel p, w = (u, v)."""
    a2, om = cfg.alpha**2, cfg.omega
    a11, a22 = j11 + 4 * a2, j22 + 4 * a2
    r = 1.0 / (a11 * a22 - j12 * j12)
    i11, i12, i22 = a22 * r, -j12 * r, a11 * r
    # w_new = (1-ω) w + P + N nb   with  P = -ω A⁻¹ J_c,  N = ω α² A⁻¹
    p1 = _lattices(-om * (i11 * j1c + i12 * j2c))
    p2 = _lattices(-om * (i12 * j1c + i22 * j2c))
    n11, n12, n22 = (_lattices(om * a2 * t) for t in (i11, i12, i22))
    qu, qv = _lattices(u), _lattices(v)
    nbu = [np.empty_like(t) for t in qu]
    nbv = [np.empty_like(t) for t in qu]
    tmp = [np.empty_like(t) for t in qu]
    for _ in range(cfg.iters):
        for k in (0, 3, 1, 2):  # red lattices, then black
            _nb_sum(qu, k, nbu[k])
            _nb_sum(qv, k, nbv[k])
            for x, p, na, nb_ in ((qu[k], p1[k], n11[k], n12[k]), (qv[k], p2[k], n12[k], n22[k])):
                x *= 1.0 - om
                x += p
                np.multiply(na, nbu[k], out=tmp[k])
                x += tmp[k]
                np.multiply(nb_, nbv[k], out=tmp[k])
                x += tmp[k]
    return _merge(qu, u.shape), _merge(qv, v.shape)


def _solve_level(f0: np.ndarray, f1: np.ndarray, x: np.ndarray, cfg: ReynoldsConfig) -> np.ndarray:
    """Refine x = [u, v, m] (3,H,W) on one pyramid level (H, W even): per warp, the motion, then m."""
    h, w = f0.shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(cfg.warps):
        f1w, inside = _warp(f1, x[:2], gx, gy)
        fm = 0.5 * (f0 + f1w)
        wt = inside.astype(np.float32)
        r0 = f1w - f0
        ix = cv2.filter2D(fm, -1, _D5, borderType=cv2.BORDER_REFLECT_101) * wt
        iy = cv2.filter2D(fm, -1, _D5.T, borderType=cv2.BORDER_REFLECT_101) * wt
        # linearised around the current flow: (f1w - f0) + f m + ∇f·(v' - v) = 0
        c = (r0 + fm * x[2] - ix * x[0] - iy * x[1]) * wt
        # local integration (CLG): Gaussian-weighted structure tensor
        t = _blur(np.dstack([ix * ix, ix * iy, iy * iy, ix * c]), cfg.rho)
        j2c = _blur(iy * c, cfg.rho)
        x[0], x[1] = _sor(x[0], x[1], *(np.ascontiguousarray(t[..., i]) for i in range(4)), j2c, cfg)
        if cfg.median > 1:
            for i in range(2):
                x[i] = cv2.medianBlur(np.ascontiguousarray(x[i]), cfg.median)
        if cfg.lighting:  # RTT term f·∇·v_l fitted to what the updated motion leaves unexplained
            f1w, inside = _warp(f1, x[:2], gx, gy)
            x[2] = _fit_lighting(f1w - f0, 0.5 * (f0 + f1w), inside.astype(np.float32), cfg)
    return x


def _estimate(f0: np.ndarray, f1: np.ndarray, cfg: ReynoldsConfig) -> np.ndarray:
    """Coarse-to-fine joint estimate of motion and lighting divergence: (3,H,W) [u, v, m]."""
    levels = _pyramid(_blur(f0, cfg.presmooth), _blur(f1, cfg.presmooth), cfg)
    x = np.zeros((3, *levels[-1][0].shape), np.float32)
    for k in range(len(levels) - 1, -1, -1):
        a, b = levels[k]
        if x.shape[1:] != a.shape:
            x = _resize_flow(x, a.shape)
        # the red-black solver works on even-sized grids: pad by one replicated row/column where needed
        h, w = a.shape
        xp = np.stack([_pad_even(c) for c in x])
        xp = _solve_level(_pad_even(a), _pad_even(b), xp, cfg)
        x = np.ascontiguousarray(xp[:, :h, :w])
    return x


def _poisson_dirichlet(rhs: np.ndarray) -> np.ndarray:
    """Solve the 5-point Δφ = rhs with φ = 0 just outside the grid (DST-I diagonalises it exactly)."""
    h, w = rhs.shape
    lam_y = 2.0 * np.cos(np.pi * np.arange(1, h + 1) / (h + 1)) - 2.0
    lam_x = 2.0 * np.cos(np.pi * np.arange(1, w + 1) / (w + 1)) - 2.0
    hat = sfft.dstn(rhs.astype(np.float32), type=1)
    hat /= (lam_y[:, None] + lam_x[None, :]).astype(np.float32)
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
    u, v = x[0], x[1]
    m = x[2] if cfg.lighting else np.zeros_like(u)
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
