"""Focal length from optical flow alone, when the user gives none: the focal that lets one rigid camera motion
explain the flow best.

For each candidate focal (horizontal field of view 30°–110°), an essential matrix is fit (MAGSAC, fixed seed) to
the flow correspondences of several frame pairs; the score is the mean Sampson distance of all correspondences to
it, truncated at 1 px so moving objects and flow outliers count as a constant. A wrong focal bends the epipolar
geometry, so the score has a minimum near the true value when the camera translates. Two views constrain the focal
only weakly: when the curve is nearly flat (best score within 3 % of the upper quartile) or its minimum sits on the
edge of the range (the search found no minimum), we say so and use 60°, a typical phone camera's field of view.
(The median-of-RANSAC score used before was noise: 110° for a 68° synthetic camera, 50° for TartanAir's 90°.)
"""

from __future__ import annotations

import cv2
import numpy as np

from vision3d.core.camera import fov_to_focal
from vision3d.core.parallel import ordered_map

DEFAULT_FOV_DEG = 60.0
TRUNCATE_PX = 1.0
MIN_SPREAD = 0.03


def _score(p0: np.ndarray, p1: np.ndarray, K: np.ndarray) -> float:
    from vision3d.scene4d.split import sampson_distance

    cv2.setRNGSeed(0)
    E, _ = cv2.findEssentialMat(p0, p1, K, cv2.USAC_MAGSAC, 0.999, 1.0)
    if E is None or E.shape[0] < 3:
        return np.inf
    Kinv = np.linalg.inv(K)
    F = Kinv.T @ E[:3] @ Kinv
    return float(np.mean(np.minimum(sampson_distance(F, p0, p1), TRUNCATE_PX)))


def estimate_focal(flows: list[np.ndarray], width: int, height: int, step: int = 6,
                   fovs_deg=tuple(np.linspace(30, 110, 17))) -> tuple[float, str]:
    """``(focal_px, how)`` from forward flows ``(2,H,W)`` of a few consecutive pairs."""
    default = fov_to_focal(np.deg2rad(DEFAULT_FOV_DEG), width)
    pairs = []
    ys, xs = np.mgrid[step // 2:height:step, step // 2:width:step]
    for f in flows:
        d = f[:, ys, xs]
        ok = np.isfinite(d).all(0)
        if ok.sum() < 30 or np.median(np.linalg.norm(d[:, ok], axis=0)) < 0.5:
            continue                     # too little motion to say anything
        p0 = np.stack([xs[ok], ys[ok]], 1).astype(np.float64)
        pairs.append((p0, p0 + d[:, ok].T.astype(np.float64)))
    if not pairs:
        return default, f"default {DEFAULT_FOV_DEG:.0f}° horizontal field of view (too little motion to estimate)"

    def score(fov: float) -> float:
        fpx = fov_to_focal(np.deg2rad(fov), width)
        K = np.array([[fpx, 0, (width - 1) / 2], [0, fpx, (height - 1) / 2], [0, 0, 1]])
        return float(np.mean([_score(p0, p1, K) for p0, p1 in pairs]))

    # candidates in parallel threads (OpenCV's robust fit releases the GIL and seeds its per-thread generator)
    scores = np.array(list(ordered_map(score, fovs_deg)))
    best = int(np.argmin(scores))
    spread = (np.percentile(scores, 75) - scores[best]) / max(scores[best], 1e-9)
    if not np.isfinite(scores[best]) or spread < MIN_SPREAD or best in (0, len(scores) - 1):
        return default, f"default {DEFAULT_FOV_DEG:.0f}° horizontal field of view (flow does not constrain the focal)"
    fov = float(fovs_deg[best])
    return fov_to_focal(np.deg2rad(fov), width), f"estimated from flow ({fov:.0f}° horizontal field of view)"
