"""Flow metrics with ptlflow's names: ``epe``, ``px1``, ``px3``, ``px5`` and KITTI's ``flall`` (Fl-all, %)."""

from __future__ import annotations

import numpy as np


def flow_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """Metrics over valid pixels: mean end-point error, fraction within 1/3/5 px, and Fl-all outliers.

    Fl-all counts a pixel as an outlier when its EPE > 3 px and > 5 % of the GT magnitude (KITTI 2015).
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    ok = np.isfinite(gt).all(0)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    if not ok.any():
        return {"epe": float("nan"), "px1": float("nan"), "px3": float("nan"), "px5": float("nan"),
                "flall": float("nan"), "n": 0}
    epe = np.sqrt(((pred - gt) ** 2).sum(0))[ok]
    mag = np.sqrt((gt ** 2).sum(0))[ok]
    return {"epe": float(epe.mean()), "px1": float((epe < 1).mean()), "px3": float((epe < 3).mean()),
            "px5": float((epe < 5).mean()), "flall": float(100 * ((epe > 3) & (epe > 0.05 * mag)).mean()),
            "n": int(ok.sum())}
