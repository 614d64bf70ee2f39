"""Flow visualisation: the Middlebury colour wheel (Baker et al. 2011), the HSV map every flow paper shows."""

from __future__ import annotations

import numpy as np


def _colorwheel() -> np.ndarray:
    # Hue segments sized as in the Middlebury code: RY 15, YG 6, GC 4, CB 11, BM 13, MR 6.
    segs = [(15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)), (4, (0, 255, 0), (0, 255, 255)),
            (11, (0, 255, 255), (0, 0, 255)), (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0))]
    rows = []
    for n, a, b in segs:
        t = np.arange(n)[:, None] / n
        rows.append(np.asarray(a) * (1 - t) + np.asarray(b) * t)
    return np.concatenate(rows) / 255.0


_WHEEL = _colorwheel()


def flow_to_color(flow: np.ndarray, max_mag: float | None = None) -> np.ndarray:
    """``(2,H,W)`` flow → ``(H,W,3)`` float RGB: hue = direction, saturation = magnitude / ``max_mag``.

    ``max_mag`` defaults to the largest finite magnitude, so one image is self-normalised; pass a fixed
    value to compare several images. NaN pixels are black.
    """
    u, v = np.asarray(flow[0], np.float64), np.asarray(flow[1], np.float64)
    bad = ~(np.isfinite(u) & np.isfinite(v))
    u, v = np.where(bad, 0, u), np.where(bad, 0, v)
    mag = np.hypot(u, v)
    if max_mag is None:
        max_mag = float(mag.max()) if mag.size else 1.0
    r = mag / max(max_mag, 1e-9)
    ncols = len(_WHEEL)
    ang = np.arctan2(-v, -u) / np.pi  # in [-1, 1]
    fk = (ang + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(int)
    k1 = (k0 + 1) % ncols
    f = (fk - k0)[..., None]
    col = (1 - f) * _WHEEL[k0] + f * _WHEEL[k1]
    rr = r[..., None]
    col = np.where(rr <= 1, 1 - rr * (1 - col), col * 0.75)  # beyond max_mag: darker, saturated
    col[bad] = 0
    return col.astype(np.float32)
