"""Colourised depth (turbo colormap on inverse depth, robust range; missing pixels black)."""

from __future__ import annotations

import cv2
import numpy as np


def depth_to_color(depth: np.ndarray, kind: str = "metric", lo: float | None = None,
                   hi: float | None = None) -> np.ndarray:
    """``(H,W)`` depth → float RGB ``(H,W,3)``; near is warm. ``lo``/``hi`` fix the inverse-depth range
    (pass the same values for every frame of a video so colours stay comparable)."""
    d = np.asarray(depth, np.float32)
    valid = np.isfinite(d) & ((d > 0) if kind != "relative" else np.ones_like(d, bool))
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = d if kind == "inverse" else 1.0 / d
    inv = np.where(valid & np.isfinite(inv), inv, np.nan)
    if lo is None or hi is None:
        finite = inv[np.isfinite(inv)]
        lo, hi = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
    x = np.clip((inv - lo) / max(hi - lo, 1e-12), 0, 1)
    rgb = cv2.applyColorMap((np.nan_to_num(x) * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    rgb = rgb.astype(np.float32) / 255.0
    rgb[~np.isfinite(inv)] = 0
    return rgb


def inverse_range(depth: np.ndarray) -> tuple[float, float]:
    """The 2–98 % inverse-depth range of one frame (to fix a video's colour scale from its first frame)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.asarray(depth, np.float32)
    finite = inv[np.isfinite(inv) & (inv > 0)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [2, 98])
    return float(lo), float(hi)
