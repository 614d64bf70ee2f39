"""Textures and alpha masks for synthetic layers: procedural (default, no data needed) or crops of real photos.

Textures are RGB, float32 in [0,1] (or uint8 0-255 where the renderer takes them directly). Generating a
procedural texture costs milliseconds, so scenes draw crops from a ``TexturePool`` whose entry ``i`` is a pure
function of ``(seed, i)``: caching never changes results.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from vision3d.errors import InputError

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
TEXTURE_SOURCES = ("procedural", "smooth", "photos", "mixed")
MASK_SHAPES = ("ellipse", "polygon", "blob", "rectangle")


# --------------------------------------------------------------------------------------------- procedural
def value_noise(rng: np.random.Generator, h: int, w: int, channels: int = 3, octaves: int = 5,
                base_cells: int = 3, persistence: float = 0.55) -> np.ndarray:
    """Multi-octave value noise ``(h,w,channels)`` in [0,1]: random grids upsampled bicubically and summed."""
    out = np.zeros((h, w, channels), np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        cells = base_cells * 2**k
        gh = max(2, round(cells * h / max(h, w)) + 1)
        gw = max(2, round(cells * w / max(h, w)) + 1)
        grid = rng.random((gh, gw, channels), dtype=np.float32)
        up = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        out += amp * up.reshape(h, w, channels)
        total += amp
        amp *= persistence
    out /= total
    lo, hi = out.min(), out.max()
    return ((out - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def _random_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random((n, 3), dtype=np.float32)


def _pattern(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A single-channel pattern in [0,1]: stripes, checkers, rings or a linear gradient, randomly oriented."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    a = xx * np.cos(theta) + yy * np.sin(theta)
    b = -xx * np.sin(theta) + yy * np.cos(theta)
    kind = rng.integers(4)
    period = rng.uniform(6, max(h, w) / 3)
    if kind == 0:  # stripes, sharp or soft
        p = 0.5 + 0.5 * np.sin(2 * np.pi * a / period + rng.uniform(0, 2 * np.pi))
        if rng.random() < 0.5:
            p = (p > 0.5).astype(np.float32)
    elif kind == 1:  # checkers
        p = ((np.floor(a / period) + np.floor(b / period)) % 2).astype(np.float32)
    elif kind == 2:  # rings around a random centre
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        p = 0.5 + 0.5 * np.sin(2 * np.pi * np.hypot(xx - cx, yy - cy) / period)
    else:  # gradient
        p = (a - a.min()) / max(float(a.max() - a.min()), 1e-6)
    return p.astype(np.float32)


def procedural_texture(rng: np.random.Generator, h: int, w: int, smooth: bool = False) -> np.ndarray:
    """A random colour texture ``(h,w,3)`` float32 in [0,1].

    ``smooth=True`` keeps only low frequencies (coarse noise and gradients): bilinear resampling of such a
    texture is nearly exact, which the warp-consistency tests rely on.
    """
    if smooth:
        noise = value_noise(rng, h, w, octaves=2, base_cells=2, persistence=0.5)
        c0, c1 = _random_colours(rng, 2)
        grad = _pattern_gradient(rng, h, w)[..., None]
        tex = 0.6 * noise + 0.4 * (c0 * (1 - grad) + c1 * grad)
        return np.clip(tex, 0, 1).astype(np.float32)
    octaves = int(np.clip(np.log2(max(h, w) / 4), 3, 8))
    noise = value_noise(rng, h, w, octaves=int(rng.integers(3, octaves + 1)), base_cells=int(rng.integers(2, 9)),
                        persistence=float(rng.uniform(0.5, 0.9)))
    c0, c1 = _random_colours(rng, 2)
    p = _pattern(rng, h, w)[..., None]
    pattern = c0 * (1 - p) + c1 * p
    mode = rng.integers(4)
    mix = float(rng.uniform(0.3, 0.7))
    if mode == 0:  # linear blend
        tex = mix * noise + (1 - mix) * pattern
    elif mode == 1:  # modulate the pattern by the noise
        tex = pattern * (0.3 + 0.7 * noise)
    else:  # coloured noise through a random colour transform, sometimes with contrast-stretched detail
        m = rng.normal(0, 0.6, (3, 3)).astype(np.float32) + np.eye(3, dtype=np.float32)
        tex = noise @ m.T
        tex = (tex - tex.min()) / max(float(tex.max() - tex.min()), 1e-6)
        if mode == 3:
            fine = value_noise(rng, h, w, channels=1, octaves=2, base_cells=max(8, max(h, w) // 16), persistence=0.6)
            tex = tex * (0.5 + 0.5 * fine)
    return np.clip(tex, 0, 1).astype(np.float32)


def _pattern_gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = xx * np.cos(theta) + yy * np.sin(theta)
    return ((a - a.min()) / max(float(a.max() - a.min()), 1e-6)).astype(np.float32)


# --------------------------------------------------------------------------------------------- photos
def list_photos(dirs) -> list[Path]:
    """Image files (sorted, recursive) under the given folders; raises ``InputError`` when there are none."""
    files: list[Path] = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise InputError("photo folder not found", path=d, fix="give an existing folder of images")
        files += [p for p in d.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file()]
    if not files:
        raise InputError(f"no images ({', '.join(PHOTO_SUFFIXES)}) in {', '.join(map(str, dirs))}")
    return sorted(files)


@functools.lru_cache(maxsize=256)
def _read_photo(path: str) -> np.ndarray:
    """Decoded RGB uint8 photo (cached: the decode is the slow part)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError("could not decode image", path=path)
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    rgb.setflags(write=False)
    return rgb


# --------------------------------------------------------------------------------------------- pool
class TexturePool:
    """Deterministic source of texture crops.

    ``source``: ``procedural`` (default), ``smooth`` (low-frequency procedural, for exactness tests),
    ``photos`` (random crops of the images under ``photo_dirs``) or ``mixed`` (half and half).
    Procedural entries are ``size``×``size`` textures generated lazily from ``default_rng([seed, i])``
    and kept as float16 to bound memory.
    """

    def __init__(self, source: str = "procedural", photo_dirs=(), size: int = 512, pool_size: int = 32,
                 seed: int = 0):
        if source not in TEXTURE_SOURCES:
            raise InputError(f"unknown texture source {source!r}", fix=f"use one of {', '.join(TEXTURE_SOURCES)}")
        if source in ("photos", "mixed") and not photo_dirs:
            raise InputError(f"texture source {source!r} needs photo_dirs", fix="give folders of images")
        if size < 16 or pool_size < 1:
            raise InputError(f"texture pool size {pool_size} x {size}px is too small")
        self.source, self.size, self.pool_size, self.seed = source, int(size), int(pool_size), int(seed)
        self.photos = list_photos(photo_dirs) if source in ("photos", "mixed") else []
        self._cache: dict[int, np.ndarray] = {}

    def _procedural(self, i: int) -> np.ndarray:
        tex = self._cache.get(i)
        if tex is None:
            rng = np.random.default_rng([self.seed, i, 7919])
            tex = procedural_texture(rng, self.size, self.size, smooth=self.source == "smooth")
            tex = np.rint(tex * 255.0).astype(np.uint8)  # 8-bit like photos: 4x less memory and traffic
            tex.setflags(write=False)
            self._cache[i] = tex
        return tex

    def warm(self) -> TexturePool:
        """Generate every procedural entry (10-30 ms each) and decode every photo now instead of on first use."""
        if self.source != "photos":
            for i in range(self.pool_size):
                self._procedural(i)
        for p in self.photos:
            _read_photo(str(p))
        return self

    def sample(self, rng: np.random.Generator, h: int, w: int, as_uint8: bool = False) -> np.ndarray:
        """A ``(h,w,3)`` texture: a random crop (flipped, colour-jittered) of a pool entry or photo.

        float32 in [0,1], or uint8 with ``as_uint8`` (what the renderer samples; avoids two conversions).
        """
        use_photo = self.source == "photos" or (self.source == "mixed" and rng.random() < 0.5)
        if use_photo:
            src = _read_photo(str(self.photos[int(rng.integers(len(self.photos)))]))
        else:
            src = self._procedural(int(rng.integers(self.pool_size)))
        sh, sw = src.shape[:2]
        # Crop a window with the target aspect; half the time at a random zoom (resized), else 1:1 when it fits.
        zoom = rng.uniform(0.5, 1.0) if rng.random() < 0.5 else 1.0
        ch = max(2, min(sh, round(h * zoom), round(sw * h / w)))
        cw = max(2, min(sw, round(ch * w / h)))
        y0 = int(rng.integers(0, sh - ch + 1))
        x0 = int(rng.integers(0, sw - cw + 1))
        crop = src[y0:y0 + ch, x0:x0 + cw]
        if (ch, cw) != (h, w):
            crop = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
        flip = int(rng.integers(4))  # none, x, y, both
        if flip:
            crop = cv2.flip(crop, {1: 1, 2: 0, 3: -1}[flip])
        if not use_photo or rng.random() < 0.3:  # colour jitter: per-channel gain and offset (saturating)
            gain = rng.uniform(0.6, 1.2, 3)
            off = rng.uniform(-0.15, 0.15, 3) * 255.0
            crop = cv2.transform(np.ascontiguousarray(crop), np.c_[np.diag(gain), off])
        crop = np.ascontiguousarray(crop)
        if np.shares_memory(crop, src):  # never hand out the cached source itself
            crop = crop.copy()
        return crop if as_uint8 else crop.astype(np.float32) * np.float32(1.0 / 255.0)


_POOLS: dict[tuple, TexturePool] = {}


def get_texture_pool(source: str = "procedural", photo_dirs=(), size: int = 512, pool_size: int = 32,
                     seed: int = 0) -> TexturePool:
    """A process-wide cached ``TexturePool`` for these settings (its content depends only on them)."""
    key = (source, tuple(str(p) for p in photo_dirs), int(size), int(pool_size), int(seed))
    pool = _POOLS.get(key)
    if pool is None:
        if len(_POOLS) > 8:
            _POOLS.clear()
        pool = _POOLS[key] = TexturePool(source, photo_dirs, size, pool_size, seed)
    return pool


# --------------------------------------------------------------------------------------------- masks
def random_mask(rng: np.random.Generator, h: int, w: int, shape: str | None = None, margin: int = 2) -> np.ndarray:
    """A binary shape ``(h,w)`` uint8 in {0,1} (ellipse, star-shaped polygon, noise blob or rectangle).

    The outer ``margin`` texels stay 0 so bilinear lookups never blend the shape with the texture border.
    """
    if shape is None:
        shape = MASK_SHAPES[int(rng.choice(4, p=[0.3, 0.3, 0.3, 0.1]))]
    if shape not in MASK_SHAPES:
        raise InputError(f"unknown mask shape {shape!r}", fix=f"use one of {', '.join(MASK_SHAPES)}")
    m = np.zeros((h, w), np.uint8)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    rx, ry = (w - 1) / 2 - margin, (h - 1) / 2 - margin
    if shape == "ellipse":
        sc = rng.uniform(0.7, 1.0)
        cv2.ellipse(m, (round(cx), round(cy)), (max(1, int(rx * sc)), max(1, int(ry * sc))), 0, 0, 360, 1, -1)
    elif shape == "polygon":
        n = int(rng.integers(3, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.45, 1.0, n)
        pts = np.stack([cx + rx * rad * np.cos(ang), cy + ry * rad * np.sin(ang)], 1)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    elif shape == "blob":  # smooth field thresholded; computed at <= 96 px and upsampled (it is smooth)
        sh_, sw_ = min(h, 96), min(w, 96)
        noise = value_noise(rng, sh_, sw_, channels=1, octaves=3, base_cells=2, persistence=0.5)[..., 0]
        yy, xx = np.mgrid[0:sh_, 0:sw_].astype(np.float32)
        cy_, cx_ = (sh_ - 1) / 2, (sw_ - 1) / 2
        falloff = 1.0 - np.hypot((xx - cx_) / max(cx_, 1), (yy - cy_) / max(cy_, 1))  # keep the blob central
        field_ = 0.6 * noise + 0.7 * falloff
        if (sh_, sw_) != (h, w):
            field_ = cv2.resize(field_, (w, h), interpolation=cv2.INTER_LINEAR)
        m = (field_ > 0.55).astype(np.uint8)
    else:
        m[margin:h - margin, margin:w - margin] = 1
    m[:margin] = 0
    m[h - margin:] = 0
    m[:, :margin] = 0
    m[:, w - margin:] = 0
    if not m.any():  # degenerate draw (tiny mask): fall back to the inner rectangle
        m[margin:h - margin, margin:w - margin] = 1
    return m
