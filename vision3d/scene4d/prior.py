"""The depth prior as GFlow uses it: per-frame depth maps of any kind turned into positive z-depth that agrees
with the scene being built (GFlow's learnable scale and shift, solved in closed form against the render)."""

from __future__ import annotations

import numpy as np

from vision3d.errors import InputError

KINDS = ("metric", "relative", "inverse")


def initial_affine(prior: np.ndarray, kind: str, near_far: tuple[float, float] = (1.0, 10.0)) -> tuple[float, float]:
    """The affine map ``a·prior + b`` (in inverse depth for inverse priors) that gives the first frame's depth
    before any scene exists to align with: metric depth as it is; relative depth shifted to stay positive and
    rescaled to median 1; affine-invariant inverse depth mapped so its 2nd–98th percentiles span
    ``1/far .. 1/near`` (the world's scale is arbitrary; only shape matters). A flat prior gives ``a = 0``."""
    if kind not in KINDS:
        raise InputError(f"unknown depth kind {kind!r}", fix=f"use one of {', '.join(KINDS)}")
    p = np.asarray(prior, np.float64)
    ok = np.isfinite(p)
    if ok.sum() < 16:
        raise InputError("the depth prior of the first frame has no finite values",
                         fix="check the depth method or the imported depth maps")
    lo, hi = np.percentile(p[ok], [2, 98])
    near, far = near_far
    if not hi - lo > 1e-6 * max(abs(hi), abs(lo), 1e-12):   # a flat (failed) prior: a fronto-parallel plane
        return 0.0, (1.0 if kind != "metric" else float(np.median(p[ok])) or 1.0)
    if kind == "inverse":
        a = (1 / near - 1 / far) / (hi - lo)
        return a, 1 / far - a * lo
    if kind == "relative":
        shift = -lo + (hi - lo) * near / max(far - near, 1e-8)
        med = max(float(np.median(p[ok])) + shift, 1e-8)
        return 1.0 / med, shift / med
    return 1.0, 0.0


def initial_depth(prior: np.ndarray, kind: str, near_far: tuple[float, float] = (1.0, 10.0)) -> np.ndarray:
    """Depth for the first frame: ``initial_affine``'s map applied (inverse depth clipped to ``1/far .. 1/near``,
    holes filled with the typical value)."""
    a, b = initial_affine(prior, kind, near_far)
    p = np.asarray(prior, np.float64)
    ok = np.isfinite(p)
    x = np.where(ok, p, np.median(p[ok]))
    if kind == "inverse":
        near, far = near_far
        return (1 / np.clip(a * x + b, 1 / far, 1 / near)).astype(np.float32)
    z = a * x + b
    return within_scene(z, z[ok]).astype(np.float32) if a > 0 else np.clip(z, 1e-3, None).astype(np.float32)


def _overlap(prior, kind, rendered, weight, min_pixels):
    """Prior values, render values (inverse depth for inverse priors) and weights on the pixels both cover, or
    None with fewer than ``min_pixels``."""
    m = (weight > 0) & np.isfinite(prior) & np.isfinite(rendered) & (rendered > 1e-6)
    if m.sum() < min_pixels:
        return None
    y = 1.0 / rendered[m] if kind == "inverse" else rendered[m]
    return prior[m].astype(np.float64), y.astype(np.float64), weight[m].astype(np.float64)


def align_to_render(prior: np.ndarray, kind: str, rendered: np.ndarray, weight: np.ndarray,
                    min_pixels: int = 50, affine: tuple[float, float] | None = None) -> np.ndarray | None:
    """Scale and shift ``prior`` to match ``rendered`` depth on pixels with ``weight`` > 0 (robust least squares,
    in inverse depth for inverse priors); returns positive z-depth, or None with too little overlap. ``affine``
    ``(a, b)`` skips the fit (see ``fit_prior_affine``)."""
    ov = _overlap(prior, kind, rendered, weight, min_pixels)
    if ov is None:
        return None
    x, y, w = ov
    a, b = affine if affine is not None else _robust_affine(x, y, w)
    filled = np.where(np.isfinite(prior), prior, np.median(x)).astype(np.float64)   # holes: the typical value
    out = within_scene(a * filled + b, y)
    if kind == "inverse":
        return (1.0 / out).astype(np.float32)
    return out.astype(np.float32)


def within_scene(values: np.ndarray, scene: np.ndarray, margin: float = 2.0) -> np.ndarray:
    """``values`` clipped to the span of ``scene`` (its 2nd–98th percentiles) widened ``margin`` times each way:
    a prior pixel far outside the depths the scene holds is a failed measurement, and a Gaussian unprojected with
    it lands a hair in front of the camera (blackswan at 480p: a tenth of the Gaussians, and frames that
    collapsed to 10 dB once the camera moved) or far behind everything."""
    lo, hi = np.percentile(scene, [2, 98])
    return np.clip(values, max(float(lo) / margin, 1e-6), max(float(hi) * margin, 2e-6))


def fit_prior_affine(prior: np.ndarray, kind: str, rendered: np.ndarray, weight: np.ndarray,
                     min_pixels: int = 50) -> tuple[float, float, float] | None:
    """The ``(a, b)`` that ``align_to_render`` would apply and the correlation of prior and render on the pixels
    used (in inverse depth for inverse priors): a prior whose shape does not follow the scene has a low one. None
    with too little overlap."""
    ov = _overlap(prior, kind, rendered, weight, min_pixels)
    if ov is None:
        return None
    x, y, w = ov
    a, b = _robust_affine(x, y, w)
    corr = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else 0.0
    return a, b, corr


def _robust_affine(x: np.ndarray, y: np.ndarray, w: np.ndarray, trials: int = 200) -> tuple[float, float]:
    """Robust ``y ≈ a·x + b``: RANSAC over point pairs (outliers such as moving objects, sky or a wrong prior
    region can be a large share), weighted least squares on the inliers, then two Cauchy re-weightings."""
    rng = np.random.default_rng(0)
    n = len(x)
    tol = 0.05 * (np.percentile(y, 90) - np.percentile(y, 10) + 1e-12)
    sub = rng.choice(n, min(n, 4000), replace=False)
    xs, ys = x[sub], y[sub]
    best, a, b = -1, 1.0, 0.0
    i, j = rng.integers(0, len(sub), (2, trials))
    for p, q in zip(i, j):
        if abs(xs[p] - xs[q]) < 1e-12:
            continue
        aa = (ys[p] - ys[q]) / (xs[p] - xs[q])
        if aa <= 0:
            continue
        bb = ys[p] - aa * xs[p]
        score = int((np.abs(ys - (aa * xs + bb)) < tol).sum())
        if score > best:
            best, a, b = score, aa, bb
    ww = w * (np.abs(y - (a * x + b)) < 3 * tol)
    for _ in range(3):
        A = np.stack([x, np.ones_like(x)], 1) * ww[:, None]
        sol, *_ = np.linalg.lstsq(A, y * ww, rcond=None)
        a, b = float(sol[0]), float(sol[1])
        r = y - (a * x + b)
        s = 1.4826 * float(np.median(np.abs(r[ww > 0]))) + 1e-9 if (ww > 0).any() else 1.0
        ww = w / (1 + (r / (2 * s)) ** 2)
    if a <= 0:       # a prior that anti-correlates with the scene: fall back to a pure scale on the medians
        a, b = float(np.median(y) / max(np.median(x), 1e-9)), 0.0
    return a, b
