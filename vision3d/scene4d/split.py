"""Still/moving split (GFlow §3.3): pixels whose optical flow breaks the epipolar geometry of the dominant
(camera) motion are moving.

A robust fundamental matrix (LMedS, as GFlow's ``move_seg.py``) is fit to the forward–backward-consistent flow
correspondences; each pixel's Sampson distance to it (pixels) is thresholded. A camera that barely translates
makes F ill-posed (any epipole fits), so where the background motion is explained by a homography (pure rotation,
static camera, distant scene) the homography residual is used instead; a pixel is moving only if it breaks both
models. Masks are cleaned by a morphological opening and by dropping tiny components.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class SplitResult:
    moving: np.ndarray          # (H,W) bool
    error: np.ndarray           # (H,W) float: per-pixel distance to the camera-motion model (px)
    model: str                  # "fundamental" | "homography" | "none"
    inlier_ratio: float


def _correspondences(flow: np.ndarray, valid: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[1:]
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    keep = valid[ys, xs]
    p0 = np.stack([xs[keep], ys[keep]], 1).astype(np.float64)
    p1 = p0 + np.stack([flow[0][ys, xs][keep], flow[1][ys, xs][keep]], 1)
    return p0, p1


def sampson_distance(F: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Sampson distance (pixels) of correspondences ``p0 ↔ p1`` ``(n,2)`` to the fundamental matrix ``F``."""
    x0 = np.concatenate([p0, np.ones((len(p0), 1))], 1)
    x1 = np.concatenate([p1, np.ones((len(p1), 1))], 1)
    Fx0 = x0 @ F.T
    Ftx1 = x1 @ F
    num = np.einsum("ij,ij->i", x1, Fx0) ** 2
    den = Fx0[:, 0] ** 2 + Fx0[:, 1] ** 2 + Ftx1[:, 0] ** 2 + Ftx1[:, 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-12))


def moving_mask(flow: np.ndarray, occluded: np.ndarray | None = None, threshold_px: float = 1.0,
                step: int = 4, min_area: float = 2e-4, rng: int = 0) -> SplitResult:
    """Moving-pixel mask of the first frame of a pair from its forward flow ``(2,H,W)``.

    ``occluded`` (forward–backward check) pixels are left out of the model fit and never called moving on their
    own (their flow is unreliable). ``threshold_px`` is the distance to the camera-motion model above which a
    pixel moves; it adapts upwards to 3× the median inlier distance when the flow is noisy.
    """
    h, w = flow.shape[1:]
    valid = np.isfinite(flow).all(0)
    if occluded is not None:
        valid &= ~occluded
    p0, p1 = _correspondences(np.nan_to_num(flow), valid, step)
    empty = SplitResult(np.zeros((h, w), bool), np.zeros((h, w), np.float32), "none", 0.0)
    if len(p0) < 16:
        return empty
    cv2.setRNGSeed(rng)
    ys, xs = np.mgrid[0:h, 0:w]
    P0 = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    P1 = P0 + np.nan_to_num(flow).reshape(2, -1).T
    H, _ = cv2.findHomography(p0, p1, cv2.LMEDS)
    err_h = None
    if H is not None:
        q = np.concatenate([P0, np.ones((len(P0), 1))], 1) @ H.T
        err_h = np.linalg.norm(q[:, :2] / np.where(np.abs(q[:, 2:]) > 1e-9, q[:, 2:], 1e-9) - P1, axis=1)
    F, _ = cv2.findFundamentalMat(p0, p1, cv2.FM_LMEDS)
    err_f = sampson_distance(F[:3], P0, P1) if F is not None and F.shape[0] >= 3 else None
    # a homography that explains the background as well as F does: static/rotating camera or a distant scene
    if err_h is not None:
        med_h = float(np.median(err_h.reshape(h, w)[valid]))
        if err_f is None or med_h < max(0.5 * threshold_px, 2 * float(np.median(err_f.reshape(h, w)[valid]))):
            err_f = None
    if err_f is not None and err_h is not None:
        err, model = np.minimum(err_f, err_h), "fundamental"
    elif err_h is not None:
        err, model = err_h, "homography"
    elif err_f is not None:
        err, model = err_f, "fundamental"
    else:
        return empty
    err = err.reshape(h, w).astype(np.float32)
    thr = max(threshold_px, 3.0 * float(np.median(err[valid])))
    moving = (err > thr) & valid
    moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    moving = cv2.morphologyEx(moving, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(moving, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(4, min_area * h * w)
    moving = keep[lab]
    return SplitResult(moving, err, model, float(((err <= thr) & valid).sum() / max(valid.sum(), 1)))
