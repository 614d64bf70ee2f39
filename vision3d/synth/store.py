"""Save a rendered sequence as a sample clip folder, and load it back.

Layout: ``frames/00000.png`` (RGB, 8- or 16-bit), ``depth/00000.npy`` (H,W) float32 metric z,
``layer_id/00000.png`` (uint16, 0 = no layer, else id + 1), ``moving/00000.png`` and ``occ_fw|occ_bw/00000.png``
(0/255), ``flow_fw|flow_bw/00000.npy`` (2,H,W) float32 (pair t ↔ t+1), ``cameras.json`` (K, world_to_cam,
width, height) and ``meta.json``, written last, which marks the folder complete. Every file is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from vision3d.core.camera import Cameras
from vision3d.errors import InputError
from vision3d.io.atomic import atomic_path, write_json
from vision3d.synth.sequence import SynthSequence

FORMAT = "vision3d.synth.sequence/1"


def _name(i: int, suffix: str) -> str:
    return f"{i:05d}{suffix}"


def _write_png(path: Path, img: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), img):
            raise InputError("could not write PNG", path=path)


def _write_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: numpy must not append ".npy"
        np.save(fh, arr, allow_pickle=False)


def _to_png_rgb(img: np.ndarray, bit_depth: int) -> np.ndarray:
    scale = 255.0 if bit_depth == 8 else 65535.0
    q = np.rint(np.clip(img, 0.0, 1.0) * scale).astype(np.uint8 if bit_depth == 8 else np.uint16)
    return cv2.cvtColor(q, cv2.COLOR_RGB2BGR)


def save_sequence(seq: SynthSequence, folder: str | Path, bit_depth: int = 8) -> Path:
    """Write ``seq`` under ``folder`` (created); frames as ``bit_depth`` (8 or 16) bit PNGs. Returns the folder."""
    if bit_depth not in (8, 16):
        raise InputError(f"bit_depth must be 8 or 16, got {bit_depth}")
    folder = Path(folder)
    (folder / "meta.json").unlink(missing_ok=True)  # the folder is incomplete until meta.json is back
    for i in range(seq.n_frames):
        _write_png(folder / "frames" / _name(i, ".png"), _to_png_rgb(seq.images[i], bit_depth))
        _write_npy(folder / "depth" / _name(i, ".npy"), seq.depth[i].astype(np.float32))
        _write_png(folder / "layer_id" / _name(i, ".png"), (seq.layer_id[i].astype(np.int32) + 1).astype(np.uint16))
        _write_png(folder / "moving" / _name(i, ".png"), seq.moving_mask[i].astype(np.uint8) * 255)
    for i in range(seq.n_frames - 1):
        _write_npy(folder / "flow_fw" / _name(i, ".npy"), seq.flow_fw[i].astype(np.float32))
        _write_npy(folder / "flow_bw" / _name(i, ".npy"), seq.flow_bw[i].astype(np.float32))
        _write_png(folder / "occ_fw" / _name(i, ".png"), seq.occ_fw[i].astype(np.uint8) * 255)
        _write_png(folder / "occ_bw" / _name(i, ".png"), seq.occ_bw[i].astype(np.uint8) * 255)
    cams = seq.cameras
    shared_k = bool(np.allclose(cams.K, cams.K[0]))
    write_json(folder / "cameras.json", {
        "convention": "opencv",
        "width": cams.width, "height": cams.height,
        "K": cams.K[0].tolist() if shared_k else cams.K.tolist(),
        "world_to_cam": cams.world_to_cam.tolist(),
    })
    write_json(folder / "meta.json", {
        "format": FORMAT, "n_frames": seq.n_frames, "width": seq.width, "height": seq.height,
        "bit_depth": bit_depth, "depth_kind": "metric",
        "flow": "(2,H,W) float32, x first; flow_fw[t]: t -> t+1, flow_bw[t]: t+1 -> t",
        "occlusion": "255 = not visible in the other frame of the pair",
        "layer_id": "uint16 png, 0 = no layer, else layer index + 1",
        "layers": [] if seq.scene is None else [{"name": layer.name, "kind": layer.kind, "moving": layer.moving}
                                                for layer in seq.scene.layers],
    })
    return folder


def _read_png(path: Path, flags=cv2.IMREAD_UNCHANGED) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise InputError("missing or unreadable PNG", path=path)
    return img


def _read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError("missing .npy file", path=path)
    return np.load(path, allow_pickle=False)


def load_sequence(folder: str | Path) -> SynthSequence:
    """Read a folder written by ``save_sequence`` (frames come back quantised to the saved bit depth)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise InputError("not a complete synthetic sequence (meta.json missing)", path=folder,
                         fix="write it with vision3d.synth.save_sequence")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise InputError(f"unknown sequence format {meta.get('format')!r}", path=meta_path)
    cam = json.loads((folder / "cameras.json").read_text())
    n = int(meta["n_frames"])
    scale = 255.0 if int(meta.get("bit_depth", 8)) == 8 else 65535.0
    images = np.stack([cv2.cvtColor(_read_png(folder / "frames" / _name(i, ".png"), cv2.IMREAD_UNCHANGED),
                                    cv2.COLOR_BGR2RGB) for i in range(n)]).astype(np.float32) / np.float32(scale)
    depth = np.stack([_read_npy(folder / "depth" / _name(i, ".npy")) for i in range(n)]).astype(np.float32)
    lid = np.stack([_read_png(folder / "layer_id" / _name(i, ".png")).astype(np.int32) - 1 for i in range(n)])
    moving = np.stack([_read_png(folder / "moving" / _name(i, ".png")) > 127 for i in range(n)])
    h, w = images.shape[1:3]
    m = n - 1
    flow_fw = np.stack([_read_npy(folder / "flow_fw" / _name(i, ".npy")) for i in range(m)]) if m else \
        np.zeros((0, 2, h, w), np.float32)
    flow_bw = np.stack([_read_npy(folder / "flow_bw" / _name(i, ".npy")) for i in range(m)]) if m else \
        np.zeros((0, 2, h, w), np.float32)
    occ_fw = np.stack([_read_png(folder / "occ_fw" / _name(i, ".png")) > 127 for i in range(m)]) if m else \
        np.zeros((0, h, w), bool)
    occ_bw = np.stack([_read_png(folder / "occ_bw" / _name(i, ".png")) > 127 for i in range(m)]) if m else \
        np.zeros((0, h, w), bool)
    cameras = Cameras(np.asarray(cam["K"]), np.asarray(cam["world_to_cam"]), cam["width"], cam["height"])
    return SynthSequence(images, depth, lid.astype(np.int16), moving, flow_fw.astype(np.float32),
                         flow_bw.astype(np.float32), occ_fw, occ_bw, cameras)
