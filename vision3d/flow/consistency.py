"""Forward–backward consistency: warping flow fields and the occlusion test of Sundaram et al. (ECCV'10)."""

from __future__ import annotations

import cv2
import numpy as np


def sample_at(field: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``field`` ``(C,H,W)`` at ``x + flow`` (bilinear, border clamped) → ``(C,H,W)``."""
    _, h, w = flow.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mx, my = (xs + flow[0]).astype(np.float32), (ys + flow[1]).astype(np.float32)
    return np.stack([cv2.remap(np.ascontiguousarray(c, np.float32), mx, my, cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE) for c in field])


def fb_occlusion(flow_fw: np.ndarray, flow_bw: np.ndarray, alpha1: float = 0.01, alpha2: float = 0.5) -> np.ndarray:
    """``(H,W)`` bool, True where forward and backward flow disagree (occluded) or the target leaves the image.

    A pixel is consistent when |w_f + w_b(x + w_f)|² < α1 (|w_f|² + |w_b(x + w_f)|²) + α2.
    """
    bw = sample_at(flow_bw, flow_fw)
    diff = ((flow_fw + bw) ** 2).sum(0)
    bound = alpha1 * ((flow_fw ** 2).sum(0) + (bw ** 2).sum(0)) + alpha2
    _, h, w = flow_fw.shape
    ys, xs = np.mgrid[0:h, 0:w]
    tx, ty = xs + flow_fw[0], ys + flow_fw[1]
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    return (diff > bound) | outside | ~np.isfinite(diff)
