"""``SynthConfig``: the knobs of the random scene generator (sizes, layers, motion regimes, textures, seed)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vision3d.errors import InputError
from vision3d.synth.scene import check_resolution
from vision3d.synth.textures import TEXTURE_SOURCES

# Per-frame motion magnitudes (ranges), in pixels of induced flow at the reference depth / degrees.
MOTION_PRESETS = {
    "small": {"camera_translation_px": (0.0, 3.0), "camera_rotation_deg": (0.0, 0.5),
                  "object_translation_px": (0.5, 6.0), "object_rotation_deg": (0.0, 3.0)},
    "large": {"camera_translation_px": (2.0, 25.0), "camera_rotation_deg": (0.2, 3.0),
                  "object_translation_px": (5.0, 60.0), "object_rotation_deg": (1.0, 15.0)},
}


def _range(name: str, r, lo_ok: float = 0.0, strict: bool = False) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in r)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a (low, high) pair, got {r!r}") from None
    if not (lo <= hi) or lo < lo_ok or (strict and lo <= lo_ok):
        raise InputError(f"{name} range ({lo}, {hi}) is invalid", fix=f"need {lo_ok} {'<' if strict else '<='} low <= high")
    return lo, hi


@dataclass(frozen=True)
class SynthConfig:
    """Random layered scenes. Motion magnitudes left ``None`` come from the ``motion`` preset.

    Translations are per frame, in pixels of flow they induce at the reference depth
    ``sqrt(near * far)``; rotations are per frame in degrees. ``depth_range = (near, far)``: foreground
    layers lie between ``near`` and the back wall, which sits at 0.85–1.0 × ``far``.
    """

    width: int = 256
    height: int = 256
    n_frames: int = 2
    n_layers: tuple[int, int] = (2, 8)
    fov_deg: tuple[float, float] = (45.0, 90.0)
    depth_range: tuple[float, float] = (1.0, 10.0)
    layer_size: tuple[float, float] = (0.15, 0.6)
    max_tilt_deg: float = 60.0
    motion: str = "small"
    camera_translation_px: tuple[float, float] | None = None
    camera_rotation_deg: tuple[float, float] | None = None
    object_translation_px: tuple[float, float] | None = None
    object_rotation_deg: tuple[float, float] | None = None
    acceleration: float = 0.15
    static_camera_prob: float = 0.15
    moving_fraction: float = 0.5
    ground_plane_prob: float = 0.3
    background_tilt_deg: float = 15.0
    texture_source: str = "procedural"
    photo_dirs: tuple[str, ...] = ()
    texture_pool_size: int = 32
    texture_pool_res: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        check_resolution(self.width, self.height)
        if int(self.n_frames) < 1:
            raise InputError(f"n_frames must be >= 1, got {self.n_frames}")
        lo, hi = self.n_layers
        if not (0 <= int(lo) <= int(hi) <= 64):
            raise InputError(f"n_layers range {self.n_layers} is invalid", fix="need 0 <= low <= high <= 64")
        _f0, f1 = _range("fov_deg", self.fov_deg, 0.0, strict=True)
        if f1 >= 170:
            raise InputError(f"fov_deg range {self.fov_deg} reaches 170 degrees or more")
        near, far = _range("depth_range", self.depth_range, 0.0, strict=True)
        if far < 1.5 * near:
            raise InputError(f"depth_range {self.depth_range}: far must be at least 1.5 x near")
        _range("layer_size", self.layer_size, 0.0, strict=True)
        if self.motion not in MOTION_PRESETS:
            raise InputError(f"unknown motion preset {self.motion!r}", fix=f"use one of {', '.join(MOTION_PRESETS)}")
        for name in MOTION_PRESETS["small"]:
            v = getattr(self, name)
            if v is not None:
                _range(name, v)
        for name in ("static_camera_prob", "moving_fraction", "ground_plane_prob"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise InputError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.max_tilt_deg < 89 or not 0 <= self.background_tilt_deg < 60:
            raise InputError("max_tilt_deg must lie in [0, 89) and background_tilt_deg in [0, 60)")
        if self.acceleration < 0:
            raise InputError(f"acceleration must be >= 0, got {self.acceleration}")
        if self.texture_source not in TEXTURE_SOURCES:
            raise InputError(f"unknown texture source {self.texture_source!r}",
                             fix=f"use one of {', '.join(TEXTURE_SOURCES)}")
        if isinstance(self.photo_dirs, str):
            object.__setattr__(self, "photo_dirs", (self.photo_dirs,))
        object.__setattr__(self, "photo_dirs", tuple(str(p) for p in self.photo_dirs))
        if self.texture_source in ("photos", "mixed") and not self.photo_dirs:
            raise InputError(f"texture_source {self.texture_source!r} needs photo_dirs")

    def magnitude(self, name: str) -> tuple[float, float]:
        """A motion magnitude range: the explicit field, or the preset's."""
        v = getattr(self, name)
        return tuple(MOTION_PRESETS[self.motion][name] if v is None else v)

    def replace(self, **changes) -> SynthConfig:
        return dataclasses.replace(self, **changes)
