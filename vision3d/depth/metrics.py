"""Depth metrics as the field reports them: ``abs_rel``, ``delta1`` (and ``sq_rel``, ``rmse``), after the
alignment each depth kind needs, plus a temporal-consistency (flicker) measure for video.

Alignment: ``relative`` (affine-invariant depth) → least-squares scale and shift in depth; ``inverse``
(affine-invariant inverse depth, MiDaS/PrimeDepth style) → least-squares scale and shift in inverse depth,
then inverted; ``metric`` → median scaling (``align="median"``) or none (``align="none"``). Ground truth is
capped to the dataset's range (NYU 10 m, KITTI 80 m) and predictions clipped to it, as in the usual protocol.
"""

from __future__ import annotations

import numpy as np

from vision3d.errors import InputError

ALIGNMENTS = ("auto", "median", "scale-shift", "none")


def _lstsq_scale_shift(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``s, t`` minimising ``Σ (s·x + t − y)²``."""
    A = np.stack([x, np.ones_like(x)], 1).astype(np.float64)
    (s, t), *_ = np.linalg.lstsq(A, y.astype(np.float64), rcond=None)
    return float(s), float(t)


def align(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, kind: str, how: str = "auto") -> np.ndarray:
    """``pred`` brought to ``gt``'s metric scale on ``mask`` according to its ``kind`` (see module doc)."""
    if how not in ALIGNMENTS:
        raise InputError(f"unknown alignment {how!r}", fix=f"use one of {', '.join(ALIGNMENTS)}")
    if how == "auto":
        how = "median" if kind == "metric" else "scale-shift"
    if kind == "inverse" and how != "scale-shift":  # median/none work on depth, not on inverse depth
        with np.errstate(divide="ignore"):
            pred = np.where(pred > 0, 1.0 / pred, np.nan)
    p, g = pred[mask].astype(np.float64), gt[mask].astype(np.float64)
    if how == "none":
        out = pred.astype(np.float64)
    elif how == "median":
        out = pred * (np.median(g) / max(float(np.nanmedian(p)), 1e-12))
    elif kind == "inverse":
        s, t = _lstsq_scale_shift(p, 1.0 / g)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 1.0 / (s * pred + t)
    else:
        s, t = _lstsq_scale_shift(p, g)
        out = s * pred + t
    return out.astype(np.float32)


def align_sequence(preds: list[np.ndarray], gts: list[np.ndarray], masks: list[np.ndarray], kind: str,
                   how: str = "auto") -> list[np.ndarray]:
    """Like ``align`` but with one scale (and shift) for the whole video — the video-depth protocol
    (DepthCrafter, Video Depth Anything), under which a model's per-frame scale changes count as errors."""
    if kind == "metric" or how in ("median", "none"):
        return [align(p, g, m, kind, how) for p, g, m in zip(preds, gts, masks)]
    cat = np.concatenate([p[m] for p, m in zip(preds, masks)])
    gcat = np.concatenate([g[m] for g, m in zip(gts, masks)])
    if kind == "inverse":
        s, t = _lstsq_scale_shift(cat, 1.0 / gcat)
        with np.errstate(divide="ignore", invalid="ignore"):
            return [(1.0 / (s * p + t)).astype(np.float32) for p in preds]
    s, t = _lstsq_scale_shift(cat, gcat)
    return [(s * p + t).astype(np.float32) for p in preds]


def depth_metrics(pred: np.ndarray, gt: np.ndarray, kind: str = "metric", how: str = "auto",
                  cap: float | None = None, min_depth: float = 1e-3, mask: np.ndarray | None = None) -> dict:
    """``abs_rel, sq_rel, rmse, delta1..3`` on valid GT pixels (finite, > ``min_depth``, ≤ ``cap``)."""
    pred = np.asarray(pred, np.float32)
    gt = np.asarray(gt, np.float32)
    if pred.shape != gt.shape:
        raise InputError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size",
                         fix="resize the prediction to the ground truth first")
    valid = np.isfinite(gt) & (gt > min_depth) & np.isfinite(pred)
    if cap is not None:
        valid &= gt <= cap
    if mask is not None:
        valid &= mask
    if valid.sum() < 10:
        raise InputError(f"only {int(valid.sum())} valid ground-truth pixels", fix="check the depth scale and caps")
    p = align(pred, gt, valid, kind, how)[valid]
    g = gt[valid].astype(np.float64)
    hi = cap if cap is not None else np.inf  # clip to the cap as the protocol does; no cap, no upper clip
    bad = cap if cap is not None else 10.0 * float(g.max())  # what a NaN/inf prediction counts as
    p = np.clip(np.nan_to_num(p, nan=bad, posinf=bad, neginf=min_depth), min_depth, hi).astype(np.float64)
    ratio = np.maximum(p / g, g / p)
    return {"abs_rel": float(np.mean(np.abs(p - g) / g)), "sq_rel": float(np.mean((p - g) ** 2 / g)),
            "rmse": float(np.sqrt(np.mean((p - g) ** 2))), "delta1": float(np.mean(ratio < 1.25)),
            "delta2": float(np.mean(ratio < 1.25 ** 2)), "delta3": float(np.mean(ratio < 1.25 ** 3)),
            "pixels": int(valid.sum())}


def reprojection_geometry(d0: np.ndarray, K: np.ndarray, T_1_0: np.ndarray):
    """Where each pixel of frame 0 lands in frame 1 given depth ``d0`` and the relative pose ``T_1_0``.

    Returns ``(z, mx, my, rz, tz)``: the depth ``z`` of the moved point in camera 1, its pixel ``(mx, my)``, and
    the pieces of ``z = d0·rz + tz`` (``rz`` the z row of ``R·K⁻¹p`` per pixel, ``tz`` the translation's z), so a
    training loss can re-evaluate ``z`` for another depth map at the same pixels.
    """
    h, w = d0.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.linalg.solve(K, np.stack([xs.ravel(), ys.ravel(), np.ones(h * w)]))
    R, t = T_1_0[:3, :3], T_1_0[:3, 3:4]
    q = R @ (rays * np.nan_to_num(d0).ravel().astype(np.float64)) + t
    z = q[2]
    uv = (K @ q)[:2] / np.where(np.abs(z) > 1e-9, z, 1e-9)
    rz = (R[2] @ rays).reshape(h, w)
    return (z.reshape(h, w), uv[0].reshape(h, w).astype(np.float32), uv[1].reshape(h, w).astype(np.float32),
            rz.astype(np.float32), float(t[2, 0]))


def _reprojection_error(d0: np.ndarray, d1: np.ndarray, K: np.ndarray, T_1_0: np.ndarray):
    """Per pixel of frame 0: ``|z₀→₁ − d1(warp)| / z₀→₁`` and where it is defined (lands inside frame 1)."""
    import cv2

    h, w = d0.shape
    z, mx, my, _, _ = reprojection_geometry(d0, K, T_1_0)
    d1s = cv2.remap(np.nan_to_num(d1, nan=0).astype(np.float32), mx, my, cv2.INTER_NEAREST,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    ok = np.isfinite(d0) & (d0 > 0) & (z > 1e-6) & (d1s > 0) & (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    err = np.where(ok, np.abs(z - d1s) / np.where(ok, z, 1), np.nan)
    return err, ok


def covisible(gt0: np.ndarray, gt1: np.ndarray, K: np.ndarray, T_1_0: np.ndarray, tol: float = 0.05) -> np.ndarray:
    """Pixels of frame 0 that ground truth says are visible in frame 1 (reprojection agrees within ``tol``)."""
    err, ok = _reprojection_error(gt0, gt1, K, T_1_0)
    return ok & (np.nan_to_num(err, nan=1.0) < tol)


def reprojection_flicker(d0: np.ndarray, d1: np.ndarray, K: np.ndarray, T_1_0: np.ndarray,
                         valid: np.ndarray | None = None) -> float:
    """Temporal inconsistency between metric depths of consecutive frames.

    Each pixel of frame 0 is lifted with ``d0``, moved by ``T_1_0`` (frame-0 camera → frame-1 camera, the GT
    relative pose) and compared with ``d1`` sampled where it lands: mean ``|z₀→₁ − d1| / z₀→₁`` (TAE-style;
    0 for perfectly consistent depth). ``valid`` restricts it to pixels co-visible in both frames (see
    ``covisible``), so occlusion boundaries do not count as flicker.
    """
    err, ok = _reprojection_error(d0, d1, K, T_1_0)
    if valid is not None:
        ok &= valid
    if ok.sum() < 10:
        return float("nan")
    return float(np.mean(err[ok]))
