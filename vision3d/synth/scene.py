"""Scene description: textured planar layers with hard alpha masks, pinhole intrinsics and a camera path.

A layer lives in its own local frame (x, y span the plane, z is its normal, origin at the patch centre);
``LayerSpec.motion`` places that frame in the world at any time, so a surface point keeps fixed local
coordinates — the definition that makes the ground-truth flow exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vision3d.core.camera import Camera, Cameras, invert_pose
from vision3d.errors import InputError
from vision3d.synth.motion import RigidMotion

MAX_SIDE = 8192


def check_resolution(width, height) -> tuple[int, int]:
    """Validated ``(width, height)`` for the engine (positive integers, at most ``MAX_SIDE`` per side)."""
    try:
        w, h = int(width), int(height)
    except (TypeError, ValueError):
        raise InputError(f"resolution {width!r}x{height!r} is not a pair of integers") from None
    if w != width or h != height:
        raise InputError(f"resolution {width}x{height} is not a pair of integers")
    if w <= 0 or h <= 0:
        raise InputError(f"resolution {w}x{h} must be positive")
    if w > MAX_SIDE or h > MAX_SIDE:
        raise InputError(f"resolution {w}x{h} is too large for the synthetic engine (max {MAX_SIDE} per side)")
    return w, h


@dataclass
class LayerSpec:
    """One textured planar patch.

    ``extent``: half sizes ``(hx, hy)`` (world units) of the rectangle that ``texture`` ``(h,w,3)`` covers,
    centred on the local origin. ``texture`` is float32 RGB in [0,1], or uint8 (0–255, as photos and the
    texture pool deliver it; ``texture_rgb()`` always gives float32). ``mask`` ``(h,w)`` (same grid) cuts the
    shape out; it is stored binary (uint8 0/1), looked up bilinearly and thresholded at 0.5, so coverage is
    hard. ``bounded=False`` makes the plane infinite (backgrounds): the texture repeats by mirroring and the
    mask is ignored.
    """

    motion: RigidMotion
    extent: tuple[float, float]
    texture: np.ndarray
    mask: np.ndarray | None = None
    bounded: bool = True
    name: str = ""
    kind: str = "foreground"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.motion, RigidMotion):
            self.motion = RigidMotion.static(self.motion)
        hx, hy = (float(v) for v in self.extent)
        if not (hx > 0 and hy > 0 and np.isfinite(hx) and np.isfinite(hy)):
            raise InputError(f"layer extent {self.extent} must be two positive finite half sizes")
        self.extent = (hx, hy)
        tex = np.asarray(self.texture)
        if tex.dtype != np.uint8:
            tex = tex.astype(np.float32, copy=False)
        if tex.ndim == 2:
            tex = np.repeat(tex[..., None], 3, -1)
        if tex.ndim != 3 or tex.shape[2] != 3 or min(tex.shape[:2]) < 2:
            raise InputError(f"layer texture has shape {tex.shape}, expected (h, w, 3) with h, w >= 2")
        self.texture = tex
        if self.mask is not None:
            m = np.asarray(self.mask)
            if m.shape != tex.shape[:2]:
                raise InputError(f"layer mask {m.shape} does not match its texture {tex.shape[:2]}")
            if m.dtype == np.uint8 and m.max(initial=0) <= 1:
                self.mask = m
            else:
                thr = 128 if m.dtype == np.uint8 else 0.5
                self.mask = (m >= thr).astype(np.uint8)

    @property
    def moving(self) -> bool:
        """True when the layer moves independently of the (static) world."""
        return not self.motion.is_static

    def texture_rgb(self) -> np.ndarray:
        """The texture as float32 RGB in [0,1]."""
        if self.texture.dtype == np.uint8:
            return self.texture.astype(np.float32) * np.float32(1.0 / 255.0)
        return self.texture

    def rgba(self, precision: str = "uint8", tiled: bool = False) -> np.ndarray:
        """Texture with the mask as 4th channel, as the renderer samples it (cached).

        ``precision`` ``uint8`` (default; 4× less memory traffic, 8-bit images like real ones) or ``float32``.
        ``tiled`` mirror-tiles it to 2h×2w: wrapping that equals mirror addressing at O(1) cost per texel.
        """
        key = (precision, tiled)
        out = self._cache.get(key)
        if out is not None:
            return out
        if tiled:
            base = self.rgba(precision)
            top = np.concatenate([base, cv2.flip(base, 1)], 1)
            out = np.concatenate([top, cv2.flip(top, 0)], 0)
        else:
            _h, _w = self.texture.shape[:2]
            use_mask = self.mask is not None and self.bounded
            if precision == "uint8":
                tex = self.texture if self.texture.dtype == np.uint8 else \
                    np.rint(np.clip(self.texture, 0.0, 1.0) * 255.0).astype(np.uint8)
                out = cv2.cvtColor(tex, cv2.COLOR_RGB2RGBA)
                if use_mask:
                    out[..., 3] = self.mask * np.uint8(255)
            elif precision == "float32":
                out = cv2.cvtColor(self.texture_rgb(), cv2.COLOR_RGB2RGBA)
                if use_mask:
                    out[..., 3] = self.mask
            else:
                raise InputError(f"unknown texture precision {precision!r}", fix="use 'uint8' or 'float32'")
        self._cache[key] = out
        return out

    def local_to_texel(self) -> np.ndarray:
        """3×3 affine map from local plane coordinates ``(x, y, 1)`` to texel coordinates (texel centres at integers)."""
        h, w = self.texture.shape[:2]
        hx, hy = self.extent
        return np.array([[w / (2 * hx), 0.0, w / 2 - 0.5], [0.0, h / (2 * hy), h / 2 - 0.5], [0.0, 0.0, 1.0]])

    def corners_local(self) -> np.ndarray:
        hx, hy = self.extent
        return np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])


@dataclass
class SceneSpec:
    """Layers, pinhole intrinsics ``K`` (3×3 pixels), image size and the per-frame camera ``world_to_cam`` (T,4,4).

    ``camera_motion`` (camera-to-world, optional) lets the camera be evaluated at fractional times.
    ``precision``: texture sampling in ``uint8`` (fast, 8-bit images) or ``float32``; geometry is exact either way.
    """

    layers: list[LayerSpec]
    K: np.ndarray
    width: int
    height: int
    world_to_cam: np.ndarray
    camera_motion: RigidMotion | None = None
    meta: dict = field(default_factory=dict)
    precision: str = "uint8"

    def __post_init__(self) -> None:
        self.width, self.height = check_resolution(self.width, self.height)
        if not self.layers:
            raise InputError("a scene needs at least one layer")
        w2c = np.asarray(self.world_to_cam, dtype=np.float64)
        if w2c.ndim == 2:
            w2c = w2c[None]
        self.world_to_cam = w2c
        self.K = np.asarray(self.K, dtype=np.float64)
        if self.precision not in ("uint8", "float32"):
            raise InputError(f"unknown scene precision {self.precision!r}", fix="use 'uint8' or 'float32'")
        Cameras(self.K, w2c, self.width, self.height)  # validates shapes, finiteness, focal > 0

    @property
    def n_frames(self) -> int:
        return len(self.world_to_cam)

    @property
    def cameras(self) -> Cameras:
        return Cameras(self.K, self.world_to_cam.copy(), self.width, self.height)

    @property
    def moving_layers(self) -> np.ndarray:
        """Boolean ``(L,)``: which layers move independently."""
        return np.array([layer.moving for layer in self.layers], dtype=bool)

    def camera(self, t: float) -> Camera:
        """The scene camera at time ``t``: the stored pose for integer frames, else ``camera_motion``."""
        ti = round(t)
        if abs(t - ti) < 1e-12 and 0 <= ti < self.n_frames:
            return Camera(self.K, self.world_to_cam[ti], self.width, self.height, f"{ti:05d}")
        if self.camera_motion is None:
            raise InputError(f"time {t} is not a frame of this {self.n_frames}-frame scene and it has no camera_motion",
                             fix="pass an explicit camera")
        return Camera(self.K, invert_pose(self.camera_motion.pose(t)), self.width, self.height)
