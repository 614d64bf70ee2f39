"""COLMAP text models (``cameras.txt``, ``images.txt``, ``points3D.txt``) ↔ OpenCV ``Camera`` objects.

COLMAP poses are world-to-camera with OpenCV axes, quaternion ``QW QX QY QZ``. COLMAP puts pixel centres at
+0.5 (cx ≈ W/2), vision3d at integers (cx ≈ (W-1)/2): we read ``cx - 0.5`` and write ``cx + 0.5``.
Distortion parameters are returned by ``read_colmap_intrinsics`` but not applied (cameras are pinhole).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vision3d.core.camera import Camera, Cameras, intrinsics, quat_to_rotmat, rotmat_to_quat
from vision3d.errors import InputError
from vision3d.io.atomic import write_text
from vision3d.io.cameras.common import HALF_PIXEL, as_camera_list, require_no_skew
from vision3d.io.checks import corrupt, require_dir, require_file

# Parameter names per model, in COLMAP's order (fisheye models are not pinhole and are refused).
COLMAP_MODELS = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
    "FULL_OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"),
}
_BINARY_FIX = "convert it: colmap model_converter --input_path SPARSE --output_path SPARSE --output_type TXT"


@dataclass
class ColmapCamera:
    """One ``cameras.txt`` entry: ``K`` in vision3d's pixel convention plus the distortion COLMAP stores."""

    camera_id: int
    model: str
    width: int
    height: int
    K: np.ndarray
    distortion: dict[str, float] = field(default_factory=dict)


def _lines(p: Path) -> list[tuple[int, str]]:
    """(line number, text) of every non-comment line, blank lines kept (images.txt needs them)."""
    return [(i, ln.strip()) for i, ln in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if not ln.lstrip().startswith("#")]


def read_colmap_intrinsics(path: str | Path) -> dict[int, ColmapCamera]:
    """Read ``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS...`` → ``{camera_id: ColmapCamera}``."""
    p = require_file(path, "COLMAP cameras.txt")
    cams = {}
    for i, s in _lines(p):
        if not s:
            continue
        parts = s.split()
        model = parts[1] if len(parts) > 1 else ""
        if model not in COLMAP_MODELS:
            raise InputError(f"line {i}: camera model {model!r} is not supported", path=p,
                             fix=f"undistort to PINHOLE (colmap image_undistorter) or use {', '.join(COLMAP_MODELS)}")
        names = COLMAP_MODELS[model]
        try:
            cid, w, h = int(parts[0]), int(parts[2]), int(parts[3])
            values = dict(zip(names, (float(x) for x in parts[4:]), strict=True))
        except ValueError:
            raise corrupt(p, "COLMAP cameras.txt", f"line {i} is not 'ID {model} W H' + {len(names)} numbers") from None
        fx = values.get("fx", values.get("f"))
        fy = values.get("fy", values.get("f"))
        K = intrinsics(fx, fy, values["cx"] - HALF_PIXEL, values["cy"] - HALF_PIXEL)
        dist = {k: v for k, v in values.items() if k not in ("f", "fx", "fy", "cx", "cy")}
        cams[cid] = ColmapCamera(cid, model, w, h, K, dist)
    if not cams:
        raise corrupt(p, "COLMAP cameras.txt", "it lists no cameras")
    return cams


def _looks_like_image_line(s: str) -> bool:
    """True for 'ID QW QX QY QZ TX TY TZ CAM NAME' (a POINTS2D line has a number where NAME would be)."""
    parts = s.split()
    if len(parts) < 10 or not parts[0].isdigit() or not parts[8].isdigit():
        return False
    try:
        float(parts[9])
        return False
    except ValueError:
        return True


def read_colmap_images(path: str | Path) -> list[tuple[int, np.ndarray, int, str]]:
    """Read ``images.txt`` → ``[(image_id, world_to_cam (4,4), camera_id, name)]`` in file order."""
    p = require_file(path, "COLMAP images.txt")
    lines = _lines(p)
    out, k = [], 0
    while k < len(lines):
        i, s = lines[k]
        k += 1
        if not s:
            continue
        parts = s.split()
        try:
            image_id, q, t, cam_id = int(parts[0]), [float(x) for x in parts[1:5]], [float(x) for x in parts[5:8]], \
                int(parts[8])
            name = " ".join(parts[9:])
        except (ValueError, IndexError):
            raise corrupt(p, "COLMAP images.txt", f"line {i} is not 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME'") \
                from None
        if not name:
            raise corrupt(p, "COLMAP images.txt", f"line {i} has no image name")
        w2c = np.eye(4)
        w2c[:3, :3] = quat_to_rotmat(np.array(q))
        w2c[:3, 3] = t
        out.append((image_id, w2c, cam_id, name))
        if k < len(lines) and not _looks_like_image_line(lines[k][1]):
            k += 1  # the POINTS2D line that follows every image line (it may be empty)
    return out


def _model_files(folder: str | Path) -> tuple[Path, Path]:
    d = require_dir(folder, "COLMAP model folder")
    if not (d / "cameras.txt").exists() and (d / "cameras.bin").exists():
        raise InputError("COLMAP model is binary (cameras.bin); only the text format is read", path=d,
                         fix=_BINARY_FIX.replace("SPARSE", str(d)))
    return d / "cameras.txt", d / "images.txt"


def read_colmap(folder: str | Path) -> list[Camera]:
    """Read a COLMAP text model folder as OpenCV ``Camera`` objects named by image, sorted by name."""
    cam_file, img_file = _model_files(folder)
    intr = read_colmap_intrinsics(cam_file)
    out = []
    for _, w2c, cid, name in read_colmap_images(img_file):
        if cid not in intr:
            raise corrupt(img_file, "COLMAP images.txt", f"image {name} uses camera {cid}, which cameras.txt lacks")
        c = intr[cid]
        out.append(Camera(c.K, w2c, c.width, c.height, name))
    if not out:
        raise corrupt(img_file, "COLMAP images.txt", "it lists no images")
    return sorted(out, key=lambda c: c.name)


def read_colmap_cameras(folder: str | Path) -> Cameras:
    """Read a COLMAP text model as one ``Cameras`` batch (all images must share one size)."""
    return Cameras.stack(read_colmap(folder))


def write_colmap(folder: str | Path, cameras: Cameras | list[Camera], names: list[str] | None = None) -> Path:
    """Write a COLMAP text model (PINHOLE cameras, empty ``points3D.txt``) into ``folder``, one file at a time.

    Identical intrinsics share one camera id; images without a name become ``frame_00000.png``, ...
    """
    cams = as_camera_list(cameras)
    require_no_skew(cams, "COLMAP PINHOLE")
    if names is not None and len(names) != len(cams):
        raise InputError(f"{len(names)} names for {len(cams)} cameras")
    folder = Path(folder)
    ids: dict[tuple, int] = {}
    cam_lines = ["# Camera list with one line of data per camera:",
                 "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]", "# Number of cameras: {n}"]
    img_lines = ["# Image list with two lines of data per image:",
                 "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
                 "#   POINTS2D[] as (X, Y, POINT3D_ID)",
                 f"# Number of images: {len(cams)}, mean observations per image: 0"]
    for i, c in enumerate(cams):
        params = (c.K[0, 0], c.K[1, 1], c.K[0, 2] + HALF_PIXEL, c.K[1, 2] + HALF_PIXEL)
        key = (c.width, c.height, *params)
        if key not in ids:
            ids[key] = len(ids) + 1
            cam_lines.append(f"{ids[key]} PINHOLE {c.width} {c.height} " + " ".join(f"{v:.17g}" for v in params))
        q = rotmat_to_quat(c.world_to_cam[:3, :3])
        name = names[i] if names is not None else (c.name or f"frame_{i:05d}.png")
        values = " ".join(f"{v:.17g}" for v in (*q, *c.world_to_cam[:3, 3]))
        img_lines += [f"{i + 1} {values} {ids[key]} {name}", ""]
    cam_lines[2] = cam_lines[2].format(n=len(ids))
    write_text(folder / "cameras.txt", "\n".join(cam_lines) + "\n")
    write_text(folder / "images.txt", "\n".join(img_lines) + "\n")
    write_text(folder / "points3D.txt", "# 3D point list with one line of data per point:\n"
               "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
               "# Number of points: 0, mean track length: 0\n")
    return folder


def read_colmap_points(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``points3D.txt`` → world points ``(M,3)`` and RGB colours ``(M,3)`` in [0,1] (empty arrays if absent)."""
    p = Path(folder) / "points3D.txt"
    if not p.is_file():
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    xyz, rgb = [], []
    for i, line in _lines(p):
        parts = line.split()
        if not parts:
            continue
        try:
            xyz.append([float(v) for v in parts[1:4]])
            rgb.append([int(v) / 255.0 for v in parts[4:7]])
        except (ValueError, IndexError):
            raise corrupt(p, "COLMAP points3D.txt", f"line {i} is not 'ID X Y Z R G B ERROR TRACK...'") from None
    return np.asarray(xyz, np.float32).reshape(-1, 3), np.asarray(rgb, np.float32).reshape(-1, 3)
