"""Photometric augmentation for training clips, kept apart from the exact ground truth (which it never touches)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision3d.errors import InputError


@dataclass(frozen=True)
class PhotometricAugment:
    """Random brightness/contrast/gamma/saturation, applied per clip and perturbed per frame, plus noise.

    ``*_range`` are the clip-level spreads; ``frame_jitter`` scales an extra per-frame change (0 = the
    same change for every frame, so brightness constancy still holds exactly).
    """

    brightness: float = 0.2
    contrast: float = 0.2
    gamma: float = 0.2
    saturation: float = 0.3
    frame_jitter: float = 0.25
    noise_std: tuple[float, float] = (0.0, 0.02)
    prob: float = 0.8

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "gamma", "saturation", "frame_jitter", "prob"):
            v = float(getattr(self, name))
            if not 0.0 <= v <= (1.0 if name == "prob" else 0.95):
                raise InputError(f"PhotometricAugment.{name}={v} is out of range")
        lo, hi = self.noise_std
        if not 0 <= lo <= hi <= 0.5:
            raise InputError(f"PhotometricAugment.noise_std={self.noise_std} is out of range")

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment ``(T,H,W,3)`` or ``(T,3,H,W)`` float32 [0,1] images; returns a new array in [0,1]."""
        x = np.asarray(images, dtype=np.float32)
        if x.ndim != 4 or 3 not in (x.shape[1], x.shape[-1]):
            raise InputError(f"augment expects (T,H,W,3) or (T,3,H,W) images, got {x.shape}")
        if rng.random() >= self.prob:
            return x.copy()
        chw = x.shape[1] == 3 and x.shape[-1] != 3
        if chw:
            x = np.moveaxis(x, 1, -1)
        t = len(x)

        def draw(spread: float) -> np.ndarray:
            base = rng.uniform(-spread, spread)
            return base + rng.uniform(-spread, spread, t) * self.frame_jitter

        b, c, g, s = draw(self.brightness), draw(self.contrast), draw(self.gamma), draw(self.saturation)
        out = np.empty_like(x)
        for i in range(t):
            f = x[i]
            grey = f.mean(-1, keepdims=True)
            f = grey + (f - grey) * (1.0 + s[i])
            mean = f.mean()
            f = (f - mean) * (1.0 + c[i]) + mean + b[i]
            f = np.clip(f, 0.0, 1.0) ** np.float32(np.exp(g[i]))
            out[i] = f
        sigma = rng.uniform(*self.noise_std)
        if sigma > 0:
            out += rng.normal(0.0, sigma, out.shape).astype(np.float32)
        np.clip(out, 0.0, 1.0, out=out)
        return np.ascontiguousarray(np.moveaxis(out, -1, 1)) if chw else out
