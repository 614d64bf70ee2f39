"""Optical flow files: Middlebury ``.flo``, KITTI 16-bit ``.png`` and ``.npy`` ``(2,H,W)`` float32.

Pixels a file marks unknown (``.flo`` values ≥ 1e9, KITTI valid bit 0) read as flow 0 with ``valid`` False,
so ``loss * valid`` stays finite; ``FlowField.valid`` is ``None`` when every pixel is known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision3d.core.flow import FlowField
from vision3d.io.atomic import atomic_path, write_bytes
from vision3d.io.checks import corrupt, require_file, suffix_of

FLO_MAGIC = 202021.25
FLO_UNKNOWN = 1e10  # written for invalid pixels; Middlebury treats |value| >= 1e9 as unknown
FLO_UNKNOWN_THRESH = 1e9
FLO_MAX_SIDE = 100_000
FLO_MAX_PIXELS = 2**28
KITTI_SCALE = 64.0
KITTI_OFFSET = 2.0**15
FLOW_SUFFIXES = (".flo", ".png", ".npy")


def _as_flow(flow: FlowField | np.ndarray) -> FlowField:
    return flow if isinstance(flow, FlowField) else FlowField(flow)


def _known(flow: FlowField) -> np.ndarray:
    """Pixels a writer can store as known flow: finite and, if there is a mask, marked valid."""
    return flow.valid_mask()


def _with_unknown(flow: np.ndarray, known: np.ndarray) -> FlowField:
    """Zero the unknown pixels and attach the mask only when some pixel is unknown."""
    if known.all():
        return FlowField(flow)
    flow = np.where(known[None], flow, 0.0).astype(np.float32)
    return FlowField(flow, known)


def read_flo(path: str | Path) -> FlowField:
    """Read a Middlebury ``.flo`` file, checking the magic number and that the size matches the header."""
    p = require_file(path, ".flo file")
    data = p.read_bytes()
    if len(data) < 12:
        raise corrupt(p, ".flo", f"file is {len(data)} bytes, shorter than the 12-byte header")
    magic = float(np.frombuffer(data, "<f4", 1)[0])
    if magic != FLO_MAGIC:
        raise corrupt(p, ".flo", f"magic number is {magic!r}, expected {FLO_MAGIC}",
                      fix="this is not a Middlebury .flo file")
    w, h = (int(x) for x in np.frombuffer(data, "<i4", 2, offset=4))
    if not (0 < w <= FLO_MAX_SIDE and 0 < h <= FLO_MAX_SIDE and w * h <= FLO_MAX_PIXELS):
        raise corrupt(p, ".flo", f"header says {w}x{h} pixels, which is not a plausible image size")
    expected = 12 + 8 * w * h
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has extra data"
        raise corrupt(p, ".flo", f"{kind}: {len(data)} bytes for a {w}x{h} flow field (expected {expected})")
    hw2 = np.frombuffer(data, "<f4", 2 * w * h, offset=12).reshape(h, w, 2).astype(np.float32)
    flow = np.moveaxis(hw2, -1, 0)
    known = (np.abs(flow) < FLO_UNKNOWN_THRESH).all(0) & np.isfinite(flow).all(0)
    return _with_unknown(flow, known)


def write_flo(path: str | Path, flow: FlowField | np.ndarray) -> Path:
    """Write a Middlebury ``.flo`` file; non-finite or masked-invalid pixels are stored as unknown (1e10)."""
    f = _as_flow(flow)
    hw2 = f.to_hw2().astype("<f4")
    hw2[~_known(f)] = FLO_UNKNOWN
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([f.width, f.height], "<i4").tobytes()
    return write_bytes(path, header + hw2.tobytes())


def read_kitti_flow(path: str | Path) -> FlowField:
    """Read a KITTI flow png (uint16 RGB: R=u, G=v as value*64+2^15, B=valid) with its valid mask."""
    import cv2

    p = require_file(path, "KITTI flow png")
    img = cv2.imdecode(np.frombuffer(p.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise corrupt(p, "KITTI flow png", "the image could not be decoded")
    if img.dtype != np.uint16 or img.ndim != 3 or img.shape[2] != 3:
        raise corrupt(p, "KITTI flow png", f"got a {img.dtype} image of shape {img.shape}, expected 16-bit RGB",
                      fix="KITTI flow is a 3-channel 16-bit png; an 8-bit png is a picture, not flow")
    b, g, r = (img[..., i].astype(np.float32) for i in range(3))  # cv2 decodes to BGR
    flow = np.stack([(r - KITTI_OFFSET) / KITTI_SCALE, (g - KITTI_OFFSET) / KITTI_SCALE])
    known = b > 0
    out = _with_unknown(flow, known)
    if out.valid is None:
        out.valid = known  # KITTI flow is sparse by nature: always carry the mask
    return out


def write_kitti_flow(path: str | Path, flow: FlowField | np.ndarray) -> Path:
    """Write a KITTI flow png; invalid pixels and flow beyond ±512 px (not representable) get valid=0."""
    import cv2

    f = _as_flow(flow)
    known = _known(f)
    enc = np.where(known[None], f.flow, 0.0) * KITTI_SCALE + KITTI_OFFSET
    known &= ((enc >= 0) & (enc <= 65535)).all(0)
    enc = np.where(known[None], np.round(np.clip(enc, 0, 65535)), 0).astype(np.uint16)
    bgr = np.stack([known.astype(np.uint16), enc[1], enc[0]], -1)
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:  # pragma: no cover - cv2 only fails here on exotic sizes
        raise corrupt(path, "KITTI flow png", "OpenCV could not encode the flow")
    return write_bytes(path, buf.tobytes())


def read_flow_npy(path: str | Path) -> FlowField:
    """Read flow saved as a ``(2,H,W)`` (or ``(H,W,2)``) numpy array; pickled objects are refused."""
    p = require_file(path, "flow .npy file")
    try:
        a = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # pickles, bad headers, empty files
        raise corrupt(p, "flow .npy", str(e) or type(e).__name__) from None
    if a.ndim == 3 and a.shape[0] != 2 and a.shape[-1] == 2:
        a = np.moveaxis(a, -1, 0)
    if a.ndim != 3 or a.shape[0] != 2 or not np.issubdtype(a.dtype, np.number):
        raise corrupt(p, "flow .npy", f"array of {a.dtype} with shape {a.shape}, expected (2, H, W) floats")
    return FlowField(a.astype(np.float32))


def write_flow_npy(path: str | Path, flow: FlowField | np.ndarray) -> Path:
    """Write flow as a ``(2,H,W)`` float32 ``.npy`` (lossless; the valid mask is not stored)."""
    f = _as_flow(flow)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, f.flow.astype(np.float32))
    return Path(path)


_READERS = {".flo": read_flo, ".png": read_kitti_flow, ".npy": read_flow_npy}
_WRITERS = {".flo": write_flo, ".png": write_kitti_flow, ".npy": write_flow_npy}


def read_flow(path: str | Path) -> FlowField:
    """Read a flow file, choosing the format from the suffix (``.flo``, KITTI ``.png``, ``.npy``)."""
    return _READERS[suffix_of(path, FLOW_SUFFIXES, "flow")](path)


def write_flow(path: str | Path, flow: FlowField | np.ndarray) -> Path:
    """Write a flow file, choosing the format from the suffix (``.flo``, KITTI ``.png``, ``.npy``)."""
    return _WRITERS[suffix_of(path, FLOW_SUFFIXES, "flow")](path, flow)
