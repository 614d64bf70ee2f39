"""Depth files: ``.npy`` float32, 16-bit ``.png`` with a scale (value = depth*scale, 0 = missing), ``.pfm``.

``.exr`` is refused: the OpenCV wheel here is built without OpenEXR, so convert EXR depth to ``.pfm``/``.npy``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from vision3d.core.depth import DepthMap
from vision3d.errors import InputError
from vision3d.io.atomic import atomic_path, write_bytes
from vision3d.io.checks import corrupt, require_file, suffix_of

DEPTH_SUFFIXES = (".npy", ".png", ".pfm")
PNG_SCALE_KEY = "vision3d_depth_scale"  # png text chunk our writer adds so a reader needs no scale argument
PNG_SCALE_HINT = "pass scale= (stored value per metre: NYU 1000, KITTI 256, TUM 5000)"


def read_pfm(path: str | Path) -> np.ndarray:
    """Read a PFM image as float32 ``(H,W)`` (``Pf``) or ``(H,W,3)`` (``PF``), top row first."""
    p = require_file(path, ".pfm file")
    data = p.read_bytes()
    tokens, pos = [], 0
    while len(tokens) < 4:  # magic, width, height, scale: whitespace separated, one whitespace before data
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        end = pos
        while end < len(data) and not data[end : end + 1].isspace() and end - pos < 32:
            end += 1
        if end == pos or end >= len(data):
            raise corrupt(p, ".pfm", "the header (PF/Pf, width height, scale) is incomplete")
        tokens.append(data[pos:end])
        pos = end
    pos += 1  # the single whitespace byte that ends the header
    magic = tokens[0]
    if magic not in (b"PF", b"Pf"):
        raise corrupt(p, ".pfm", f"header starts with {magic[:8]!r}, expected PF or Pf",
                      fix="this is not a PFM file")
    try:
        w, h, scale = int(tokens[1]), int(tokens[2]), float(tokens[3])
    except ValueError:
        raise corrupt(p, ".pfm", f"header size/scale {b' '.join(tokens[1:]).decode(errors='replace')!r} "
                      "are not numbers") from None
    channels = 3 if magic == b"PF" else 1
    if not (0 < w <= 100_000 and 0 < h <= 100_000) or scale == 0:
        raise corrupt(p, ".pfm", f"header says {w}x{h} pixels with scale {scale}, which is not plausible")
    expected = w * h * channels * 4
    if len(data) - pos != expected:
        kind = "truncated" if len(data) - pos < expected else "has extra data"
        raise corrupt(p, ".pfm", f"{kind}: {len(data) - pos} data bytes for {w}x{h}x{channels} (expected {expected})")
    dtype = "<f4" if scale < 0 else ">f4"  # negative scale = little-endian
    a = np.frombuffer(data, dtype, w * h * channels, offset=pos).reshape(h, w, channels)
    a = np.flipud(a).astype(np.float32)  # PFM rows run bottom-to-top
    return a[..., 0] if channels == 1 else a


def write_pfm(path: str | Path, image: np.ndarray) -> Path:
    """Write a float32 ``(H,W)`` or ``(H,W,3)`` array as little-endian PFM (rows bottom-to-top)."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise InputError(f"PFM holds (H,W) or (H,W,3) images, got shape {a.shape}")
    magic = "Pf" if a.ndim == 2 else "PF"
    header = f"{magic}\n{a.shape[1]} {a.shape[0]}\n-1.0\n".encode("ascii")
    return write_bytes(path, header + np.ascontiguousarray(np.flipud(a)).astype("<f4").tobytes())


def _png_scale_tag(p: Path) -> float | None:
    """The depth scale our writer stored in the png's text chunk, if any."""
    from PIL import Image

    try:
        with Image.open(p) as im:
            value = im.info.get(PNG_SCALE_KEY)
        return float(value) if value is not None else None
    except (OSError, ValueError, SyntaxError):  # PIL raises SyntaxError for some malformed chunks
        return None


def _read_png_depth(p: Path, scale: float | None) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(p.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise corrupt(p, "depth png", "the image could not be decoded")
    if img.ndim != 2 or img.dtype != np.uint16:
        raise corrupt(p, "depth png", f"got a {img.dtype} image of shape {img.shape}, expected 16-bit single-channel",
                      fix="depth pngs are 16-bit grayscale; an 8-bit or colour png is a visualisation, not depth")
    stored = _png_scale_tag(p)
    if scale is None:
        scale = stored
        if scale is None:
            raise InputError("16-bit depth png without a known scale", path=p, fix=PNG_SCALE_HINT)
    elif stored is not None and abs(scale - stored) > 1e-6 * stored:
        raise InputError(f"depth png records its scale {stored:g} but scale {scale:g} was declared", path=p,
                         fix="drop the scale: this file says how to read it")
    if not scale > 0:
        raise InputError(f"depth png scale must be positive, got {scale}", path=p, fix=PNG_SCALE_HINT)
    d = img.astype(np.float32) / np.float32(scale)
    d[img == 0] = np.nan
    return d


def _read_npy_depth(p: Path) -> np.ndarray:
    try:
        a = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # pickles, bad headers, empty files
        raise corrupt(p, "depth .npy", str(e) or type(e).__name__) from None
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
        raise corrupt(p, "depth .npy", f"array of {a.dtype} with shape {a.shape}, expected (H, W) numbers")
    return a.astype(np.float32)


def read_depth(path: str | Path, kind: str = "metric", scale: float | None = None) -> DepthMap:
    """Read a depth map (``.npy``, 16-bit ``.png``, ``.pfm``); 0, NaN and inf become missing (NaN).

    ``scale`` divides the stored values: required for pngs not written by vision3d (NYU 1000, KITTI 256);
    for ``.npy``/``.pfm`` it defaults to 1.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".exr":
        raise InputError("EXR depth is not supported (OpenCV here has no OpenEXR)", path=path,
                         fix="convert it to .pfm or .npy first")
    suffix = suffix_of(path, DEPTH_SUFFIXES, "depth")
    p = require_file(path, "depth file")
    if suffix == ".png":
        d = _read_png_depth(p, scale)
    else:
        d = _read_npy_depth(p) if suffix == ".npy" else read_pfm(p)
        if d.ndim == 3:
            if not np.array_equal(d[..., 0], d[..., 1], equal_nan=True) or \
                    not np.array_equal(d[..., 0], d[..., 2], equal_nan=True):
                raise corrupt(p, "depth .pfm", "it has 3 different channels (a colour PFM), depth needs one",
                              fix="save depth as a single-channel 'Pf' PFM")
            d = d[..., 0]
        if scale is not None:
            d = d / np.float32(scale)
    return DepthMap(d, kind)


def _depth_array(depth: DepthMap | np.ndarray) -> np.ndarray:
    return depth.depth if isinstance(depth, DepthMap) else DepthMap(depth, "relative").depth


def write_depth(path: str | Path, depth: DepthMap | np.ndarray, scale: float = 1000.0) -> Path:
    """Write a depth map; the format comes from the suffix (``.npy``, 16-bit ``.png``, ``.pfm``).

    Missing pixels are NaN in ``.npy``/``.pfm`` and 0 in png. A png stores ``round(depth*scale)`` clipped to
    1..65535 (so valid pixels stay valid; values ≤ 0 become missing) and records ``scale`` in a text chunk
    for ``read_depth``.
    """
    suffix = suffix_of(path, DEPTH_SUFFIXES, "depth")
    d = _depth_array(depth)
    if suffix == ".pfm":
        return write_pfm(path, d)
    if suffix == ".npy":
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, d.astype(np.float32))
        return Path(path)
    if not scale > 0:
        raise InputError(f"depth png scale must be positive, got {scale}", fix=PNG_SCALE_HINT)
    from PIL import Image, PngImagePlugin

    valid = np.isfinite(d) & (np.nan_to_num(d) > 0)  # 0 means missing in a png; negatives cannot be stored
    stored = np.where(valid, np.clip(np.round(np.where(valid, d, 0) * scale), 1, 65535), 0).astype(np.uint16)
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_SCALE_KEY, repr(float(scale)))
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="PNG", pnginfo=info)
    return write_bytes(path, buf.getvalue())
