"""Flow-guided temporal fusion of per-frame (inverse) depth: a recursive filter that steadies video depth.

Affine-invariant models pick their own scale and shift for every frame, so their video "breathes". Each new
prediction is therefore brought into the affine frame of the previous (fused) map warped into the current
frame by optical flow (DIS backward flow, forward–backward occlusion check; robust least-squares scale and
shift on the co-visible pixels) — one scale for the whole video, as video depth models keep it — and then
blended with that warped map per pixel. Occluded pixels, pixels that leave the image and pixels where the
two disagree strongly (moving objects, wrong flow) keep the new prediction. ``anchor=False`` does the
opposite alignment (history into the new frame's affine frame): smoothing without scale chaining.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class FusionConfig:
    weight: float = 0.5  # share of the warped history where it agrees (0 = off; 0.5 ≈ mean of ~3 frames)
    agree: float = 0.1  # disagreement (fraction of the map's 5–95 % range) at which blending fades to ~37 %
    flow_long_side: int = 320  # flow is computed at this size (then scaled up): depth maps are smooth
    preset: str = "fast"  # DIS preset
    anchor: bool = True  # bring each prediction to the history's affine frame (one scale per video)


def _robust_affine(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``s, t`` with ``s·x + t ≈ y``: least squares, refitted on the residuals below 2.5× their median."""
    s, t = 1.0, 0.0
    keep = np.ones(x.shape, bool)
    for _ in range(4):
        A = np.stack([x[keep], np.ones(int(keep.sum()))], 1).astype(np.float64)
        (s, t), *_ = np.linalg.lstsq(A, y[keep].astype(np.float64), rcond=None)
        r = np.abs(s * x + t - y)
        keep = r <= 2.5 * max(float(np.median(r)), 1e-12)
        if keep.sum() < 16:
            break
    return float(s), float(t)


class TemporalFusion:
    """Call with each frame ``(H,W,3)`` and its prediction ``(H,W)`` in order; returns the fused map."""

    def __init__(self, cfg: FusionConfig | None = None):
        self.cfg = cfg or FusionConfig()
        self.prev_frame: np.ndarray | None = None
        self.prev: np.ndarray | None = None

    def _flows(self, cur: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backward flow (current → previous) at full size and the pixels it can be trusted at."""
        from vision3d.flow.classical import dis_flow
        from vision3d.flow.consistency import fb_occlusion

        h, w = cur.shape[:2]
        s = min(1.0, self.cfg.flow_long_side / max(h, w))
        size = (max(8, round(w * s)), max(8, round(h * s)))
        a = cv2.resize(cur, size, interpolation=cv2.INTER_AREA) if s < 1 else cur
        b = cv2.resize(prev, size, interpolation=cv2.INTER_AREA) if s < 1 else prev
        bw, fw = dis_flow(a, b, self.cfg.preset), dis_flow(b, a, self.cfg.preset)
        ok = ~fb_occlusion(bw, fw)
        if s < 1:
            bw = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) / s for c in bw])
            ok = cv2.resize(ok.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        return bw, ok

    def __call__(self, frame: np.ndarray, pred: np.ndarray) -> np.ndarray:
        from vision3d.flow.consistency import sample_at

        pred = np.asarray(pred, np.float32)
        first = self.prev is None or self.prev.shape != pred.shape or self.cfg.weight <= 0
        out = pred
        if not first:
            bw, ok = self._flows(frame, self.prev_frame)
            warped = sample_at(self.prev[None], bw)[0]
            ok &= np.isfinite(warped) & np.isfinite(pred)
            if ok.sum() >= 64:
                if self.cfg.anchor:
                    s, t = _robust_affine(pred[ok], warped[ok])
                    pred = (s * pred + t).astype(np.float32)
                else:
                    s, t = _robust_affine(warped[ok], pred[ok])
                    warped = s * warped + t
                lo, hi = np.percentile(pred[np.isfinite(pred)], [5, 95])
                rel = np.abs(warped - pred) / max(float(hi - lo), 1e-9)
                w = np.where(ok, self.cfg.weight * np.exp(-(rel / self.cfg.agree) ** 2), 0.0).astype(np.float32)
                out = (pred + w * (np.nan_to_num(warped) - pred)).astype(np.float32)
        self.prev_frame, self.prev = frame, out
        return out
