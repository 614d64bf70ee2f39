"""Still/moving split (GFlow §3.3): pixels whose optical flow breaks the epipolar geometry of the dominant
(camera) motion are moving.

A robust fundamental matrix (LMedS, as GFlow's ``move_seg.py``) is fit to the forward–backward-consistent flow
correspondences; each pixel's Sampson distance to it (pixels) is thresholded. A camera that barely translates
makes F ill-posed (any epipole fits), so where the background motion is explained by a homography (pure rotation,
static camera, distant scene) the homography residual is used instead; a pixel is moving only if it breaks both
models. In a video that choice is made over neighbouring frames (``smooth_choice``): the camera motion is shared
by a shot's frames, while one frame's F alone can absorb a moving object. Masks are cleaned by a morphological
opening and by dropping tiny components.
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


@dataclass
class MotionFit:
    """The camera-motion models of one flow field: a robust homography and fundamental matrix (None where the fit
    failed) and ``h_score``: the homography's median residual over what it must reach to stand for the camera
    motion alone (< 1: the background is a homography — a static or rotating camera, a distant scene — and F is
    then ill-posed: any epipole fits, moving objects included)."""

    H: np.ndarray | None
    F: np.ndarray | None
    h_score: float


def _pixels(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w]
    P0 = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    return P0, P0 + np.nan_to_num(flow).reshape(2, -1).T


def _errors(fit: MotionFit, flow: np.ndarray, with_f: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-pixel residuals (flat) of the flow under the homography (transfer error) and F (Sampson distance;
    not computed without ``with_f``)."""
    P0, P1 = _pixels(flow)
    err_h = err_f = None
    if fit.H is not None:
        q = np.concatenate([P0, np.ones((len(P0), 1))], 1) @ fit.H.T
        err_h = np.linalg.norm(q[:, :2] / np.where(np.abs(q[:, 2:]) > 1e-9, q[:, 2:], 1e-9) - P1, axis=1)
    if fit.F is not None and with_f:
        err_f = sampson_distance(fit.F, P0, P1)
    return err_h, err_f


def _valid(flow: np.ndarray, occluded: np.ndarray | None) -> np.ndarray:
    valid = np.isfinite(flow).all(0)
    return valid & ~occluded if occluded is not None else valid


def fit_motion(flow: np.ndarray, occluded: np.ndarray | None = None, threshold_px: float = 1.0, step: int = 4,
               rng: int = 0) -> MotionFit | None:
    """LMedS homography and fundamental matrix of the forward flow ``(2,H,W)`` on its reliable (not ``occluded``)
    pixels, one in ``step``² of them; None with under 16 such pixels."""
    valid = _valid(flow, occluded)
    p0, p1 = _correspondences(np.nan_to_num(flow), valid, step)
    if len(p0) < 16:
        return None
    cv2.setRNGSeed(rng)
    H, _ = cv2.findHomography(p0, p1, cv2.LMEDS)
    F, _ = cv2.findFundamentalMat(p0, p1, cv2.FM_LMEDS)
    fit = MotionFit(H, F[:3] if F is not None and F.shape[0] >= 3 else None, np.inf)
    err_h, err_f = _errors(fit, flow)
    if err_h is not None:
        v = valid.reshape(-1)
        need = 0.5 * threshold_px if err_f is None else max(0.5 * threshold_px, 2 * float(np.median(err_f[v])))
        fit.h_score = float(np.median(err_h[v])) / need
    return fit


def smooth_choice(scores: list[float], radius: int = 3) -> list[bool]:
    """Per frame, whether the homography alone stands for the camera motion: the median ``h_score`` of the frames
    within ``radius`` is below 1. A shot's camera motion is shared by its frames, and one frame's F can absorb a
    moving object on its own (DAVIS blackswan, 160p: one frame of a panning shot took F and lost the swan)."""
    s = np.asarray(scores, np.float64)
    return [bool(np.median(s[max(0, t - radius):t + radius + 1]) < 1) for t in range(len(s))]


def mask_from_fit(flow: np.ndarray, fit: MotionFit | None, occluded: np.ndarray | None = None,
                  threshold_px: float = 1.0, min_area: float = 2e-4, homography_only: bool | None = None) -> SplitResult:
    """Moving-pixel mask of the first frame of a pair from its flow and camera-motion models: pixels that break
    both models (only the homography when ``homography_only``; None: ``fit.h_score < 1``) by more than the
    threshold, which adapts upwards to 3× the median residual when the flow is noisy; then a morphological
    opening and closing and no components under ``min_area`` of the frame."""
    h, w = flow.shape[1:]
    valid = _valid(flow, occluded)
    if fit is None:
        return SplitResult(np.zeros((h, w), bool), np.zeros((h, w), np.float32), "none", 0.0)
    if homography_only is None:
        homography_only = fit.h_score < 1
    err_h, err_f = _errors(fit, flow, with_f=not (homography_only and fit.H is not None))
    if err_f is not None and err_h is not None:
        err, model = np.minimum(err_f, err_h), "fundamental"
    elif err_h is not None:
        err, model = err_h, "homography"
    elif err_f is not None:
        err, model = err_f, "fundamental"
    else:
        return SplitResult(np.zeros((h, w), bool), np.zeros((h, w), np.float32), "none", 0.0)
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


def moving_mask(flow: np.ndarray, occluded: np.ndarray | None = None, threshold_px: float = 1.0,
                step: int = 4, min_area: float = 2e-4, rng: int = 0) -> SplitResult:
    """Moving-pixel mask of the first frame of a pair from its forward flow ``(2,H,W)``, on its own (a video
    decides the model over neighbouring frames: ``fit_motion`` → ``smooth_choice`` → ``mask_from_fit``).

    ``occluded`` (forward–backward check) pixels are left out of the model fit and never called moving on their
    own (their flow is unreliable). ``threshold_px`` is the distance to the camera-motion model above which a
    pixel moves; it adapts upwards to 3× the median inlier distance when the flow is noisy.
    """
    fit = fit_motion(flow, occluded, threshold_px, step, rng)
    return mask_from_fit(flow, fit, occluded, threshold_px, min_area)
