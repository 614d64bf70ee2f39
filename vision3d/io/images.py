"""Image files: read any 8/16-bit grey/RGB/RGBA image as float32 RGB in [0,1]; write PNG/JPEG atomically."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vision3d.errors import InputError
from vision3d.io.atomic import atomic_path

# vision3d enforces its own limit (``check_resolution``) before decoding, with a clearer message and an
# override; PIL's decompression-bomb guard would otherwise fire first with an opaque error.
Image.MAX_IMAGE_PIXELS = None

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def max_pixels() -> int:
    """Largest image (width × height) vision3d accepts; ``V3D_MAX_PIXELS`` overrides the 8192² default."""
    return int(os.environ.get("V3D_MAX_PIXELS", 8192 * 8192))


def check_resolution(width: int, height: int, path: str | Path | None = None) -> None:
    """Refuse empty or absurd resolutions before anything large is allocated."""
    if width <= 0 or height <= 0:
        raise InputError(f"image size {width}x{height} is empty", path=path)
    if width * height > max_pixels():
        raise InputError(f"resolution {width}x{height} is too large ({width * height / 1e6:.0f} MP)", path=path,
                         fix="downscale it first, or raise the limit with V3D_MAX_PIXELS")


def natural_key(path: Path):
    """Sort key that puts frame2 before frame10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: str | Path) -> list[Path]:
    """Image files in ``folder`` (not recursive), in natural order; raises if there are none."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError("folder does not exist", path=folder, fix="check the path")
    if not folder.is_dir():
        raise InputError("is not a folder", path=folder)
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
                   key=natural_key)
    if not files:
        raise InputError("folder holds no images", path=folder,
                         fix=f"put frames there as {', '.join(IMAGE_SUFFIXES[:3])} files")
    return files


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` from the file header, without decoding the pixels."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file does not exist", path=path, fix="check the path")
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as e:  # PIL raises many types for non-images
        raise InputError(f"not a readable image ({type(e).__name__})", path=path) from e


def unit_float(a: np.ndarray) -> np.ndarray:
    """uint8/uint16 scaled to [0,1], bool to 0/1, other numbers as they are; float32, any shape."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if not (a.dtype == bool or np.issubdtype(a.dtype, np.number)):
        raise InputError(f"image has dtype {a.dtype}, expected uint8, uint16 or float")
    return a.astype(np.float32)


def to_float_rgb(a: np.ndarray, background=None) -> np.ndarray:
    """Any uint8/uint16/float array, grey/RGB/RGBA, → float32 ``(H,W,3)`` in [0,1].

    Alpha is dropped, or, with ``background`` (an RGB triple in [0,1]), composited over that colour.
    """
    a = np.asarray(a)
    f = unit_float(a)
    if background is not None and f.ndim == 3 and f.shape[2] == 4:
        alpha = f[..., 3:4]
        f = f[..., :3] * alpha + np.asarray(background, np.float32).reshape(1, 1, 3) * (1 - alpha)
    if f.ndim == 2:
        f = np.repeat(f[..., None], 3, axis=2)
    elif f.ndim == 3 and f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    elif f.ndim == 3 and f.shape[2] == 4:
        f = f[..., :3]
    if f.ndim != 3 or f.shape[2] != 3:
        raise InputError(f"image array has shape {a.shape}, expected (H,W), (H,W,3) or (H,W,4)")
    return np.ascontiguousarray(f)


def read_image(path: str | Path, background=None) -> np.ndarray:
    """An image file → float32 ``(H,W,3)`` RGB in [0,1] (grey, RGBA and 16-bit handled; RGBA composited over
    ``background`` when given, else its alpha is dropped)."""
    path = Path(path)
    w, h = image_size(path)
    check_resolution(w, h, path)
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:  # formats OpenCV lacks: fall back to PIL
        try:
            with Image.open(path) as im:
                a = np.asarray(im.convert("RGBA") if im.mode == "P" else im)
        except Exception as e:
            raise InputError(f"cannot decode image ({e})", path=path) from e
    elif a.ndim == 3:
        a = cv2.cvtColor(a, cv2.COLOR_BGRA2RGBA if a.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return to_float_rgb(a, background)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float [0,1] (or uint8) image → uint8, NaNs as 0."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img
    return (np.clip(np.nan_to_num(img, nan=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_image(path: str | Path, img: np.ndarray, bits: int = 8) -> Path:
    """Write a float [0,1] or uint8 image (grey, RGB or RGBA) atomically; PNG may be 16-bit (``bits=16``)."""
    path = Path(path)
    img = np.asarray(img)
    if bits == 16:
        out = (np.clip(np.nan_to_num(img.astype(np.float64)), 0, 1) * 65535 + 0.5).astype(np.uint16)
    else:
        out = to_uint8(img)
    if out.ndim == 3:
        out = cv2.cvtColor(out, cv2.COLOR_RGBA2BGRA if out.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    ext = path.suffix.lower()
    if ext not in IMAGE_SUFFIXES:
        raise InputError(f"unsupported image format {ext!r}", path=path, fix="use .png or .jpg")
    ok, buf = cv2.imencode(ext, out)
    if not ok:
        raise InputError("could not encode image", path=path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path
