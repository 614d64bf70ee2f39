"""GFlow's initialisation: a Sobel texture map becomes a sampling probability; sampled pixels are unprojected
with depth into isotropic Gaussians whose size matches the image area each sample stands for."""

from __future__ import annotations

import cv2
import numpy as np

from vision3d.core.gaussians import logit


def texture_probability(image: np.ndarray, mask: np.ndarray | None = None, uniform: float = 0.2) -> np.ndarray:
    """``(H,W)`` probabilities (sum 1) ∝ Sobel gradient magnitude, mixed with a ``uniform`` share so flat regions
    still get Gaussians; zero outside ``mask``."""
    gray = cv2.cvtColor(np.ascontiguousarray(image, np.float32), cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    tex = np.sqrt(gx * gx + gy * gy)
    tex = tex / max(float(tex.mean()), 1e-8)
    p = ((1 - uniform) * tex / max(float(tex.sum()), 1e-8) * tex.size + uniform).astype(np.float64)
    if mask is not None:
        p = p * mask
    s = float(p.sum())
    return p / s if s > 0 else np.zeros_like(p)


def sample_pixels(prob: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` distinct pixels from ``prob`` (fewer if fewer have mass); returns ``(xy (n,2) float with
    sub-pixel jitter, p (n,) their probabilities)``."""
    flat = np.asarray(prob, np.float64).ravel()
    flat = flat / max(float(flat.sum()), 1e-300)
    nz = int((flat > 0).sum())
    n = min(int(n), nz)
    if n <= 0:
        return np.zeros((0, 2), np.float32), np.zeros(0)
    idx = rng.choice(flat.size, size=n, replace=False, p=flat)
    h, w = prob.shape
    ys, xs = np.divmod(idx, w)
    xy = np.stack([xs, ys], 1).astype(np.float32) + rng.uniform(-0.5, 0.5, (n, 2)).astype(np.float32)
    xy[:, 0] = np.clip(xy[:, 0], 0, w - 1)
    xy[:, 1] = np.clip(xy[:, 1], 0, h - 1)
    return xy, flat[idx]


def bilinear(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample ``img`` ``(H,W)`` or ``(H,W,C)`` at float pixels ``xy (n,2)`` (border clamped). The points go to
    ``cv2.remap`` as rows of at most 4096 (its maps must stay under 32767 on a side)."""
    n = len(xy)
    if n == 0:
        return np.zeros((0, *np.shape(img)[2:]), np.float32)
    cols = min(n, 4096)
    rows = -(-n // cols)
    maps = np.zeros((2, rows * cols), np.float32)
    maps[:, :n] = np.asarray(xy, np.float32).T
    out = cv2.remap(np.ascontiguousarray(img, np.float32), maps[0].reshape(rows, cols), maps[1].reshape(rows, cols),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * cols, *out.shape[2:])[:n]


def unproject(xy: np.ndarray, depth: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray) -> np.ndarray:
    """Pixels ``(n,2)`` with depths ``(n,)`` → world points ``(n,3)`` (OpenCV camera, z-depth)."""
    rays = np.linalg.solve(K, np.concatenate([xy.T, np.ones((1, len(xy)))]).astype(np.float64))
    cam = rays * depth[None]
    c2w = np.linalg.inv(world_to_cam)
    return (c2w[:3, :3] @ cam + c2w[:3, 3:4]).T.astype(np.float32)


def gaussians_from_pixels(image: np.ndarray, depth: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray,
                          xy: np.ndarray, p: np.ndarray, n_total: int, opacity: float = 0.99,
                          rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Raw Gaussian parameters for pixels ``xy`` sampled with probabilities ``p`` out of ``n_total`` draws.

    Each sample stands for ``1/(n_total·p)`` pixels, so its radius is ``sqrt(area/π)`` pixels, times depth/focal in
    world units (GFlow: "scale from the sampling probability, scaled by depth"). Colour is the pixel's RGB.
    """
    rng = rng or np.random.default_rng(0)
    n = len(xy)
    d = bilinear(depth, xy).reshape(n)
    means = unproject(xy, d, K, world_to_cam)
    area = 1.0 / np.maximum(n_total * p, 1e-12)
    r_px = np.clip(np.sqrt(area / np.pi), 0.5, 0.05 * max(depth.shape))
    focal = 0.5 * (K[0, 0] + K[1, 1])
    scale = (r_px * d / focal).astype(np.float32)
    q = rng.normal(size=(n, 4)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return {"means": means, "quats": q, "log_scales": np.repeat(np.log(scale)[:, None], 3, 1),
            "opacity_logits": np.full(n, logit(np.array(opacity)), np.float32),
            "colors": np.clip(bilinear(image, xy).reshape(n, 3), 0, 1).astype(np.float32)}
