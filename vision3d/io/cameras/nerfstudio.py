"""nerfstudio / NeRF-synthetic ``transforms.json``: camera-to-world in OpenGL/Blender axes → OpenCV ``Cameras``.

Intrinsics are ``fl_x fl_y cx cy w h`` (global or per frame) or only ``camera_angle_x`` (NeRF synthetic; the
image size then comes from an argument or the first image). nerfstudio's ``cx`` puts pixel centres at +0.5,
so we read ``cx - 0.5`` and write ``cx + 0.5``. Distortion keys (k1, p1, ...) are ignored.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from vision3d.core.camera import Cameras, intrinsics, opencv_to_opengl, opengl_to_opencv
from vision3d.errors import InputError
from vision3d.io.atomic import write_json
from vision3d.io.cameras.common import HALF_PIXEL, as_camera_list, require_no_skew
from vision3d.io.checks import corrupt, require_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG", ".exr")


def resolve_image_path(folder: Path, file_path: str) -> Path:
    """The image a ``file_path`` entry means; NeRF-synthetic entries like ``./train/r_0`` lack the suffix."""
    p = Path(os.path.normpath(folder / file_path))
    if p.is_file():
        return p
    for s in IMAGE_SUFFIXES:
        q = p.with_name(p.name + s)
        if q.is_file():
            return q
    return p


def _image_size(path: Path, json_path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):
        raise InputError("transforms.json gives no image size (w, h) and its first image cannot be read",
                         path=json_path, fix=f"put the images beside it ({path}) or pass width= and height=") from None


def read_transforms(path: str | Path, width: int | None = None, height: int | None = None) -> Cameras:
    """Read ``transforms.json`` as OpenCV ``Cameras`` named by resolved image path.

    ``width``/``height`` supply the size for ``camera_angle_x``-only files; if the file states another size,
    the intrinsics are rescaled to the size you give (e.g. downsampled images).
    """
    p = require_file(path, "transforms.json")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise corrupt(p, "transforms.json", f"invalid JSON ({e})") from None
    frames = data.get("frames") if isinstance(data, dict) else None
    if not frames or not isinstance(frames, list):
        raise corrupt(p, "transforms.json", "it has no 'frames' list")
    names = [resolve_image_path(p.parent, str(f.get("file_path", ""))) for f in frames]
    K, c2w, sizes, fallback = [], [], set(), []
    for i, f in enumerate(frames):
        def get(key, f=f):
            return f.get(key, data.get(key))

        try:
            m = np.asarray(f["transform_matrix"], dtype=np.float64)
            if m.shape == (3, 4):
                m = np.vstack([m, [0, 0, 0, 1]])
            if m.shape != (4, 4):
                raise ValueError(f"transform_matrix has shape {m.shape}")
            w, h = get("w"), get("h")
            if w is None or h is None:
                if not fallback:
                    fallback.append((width, height) if width and height else _image_size(names[0], p))
                w, h = fallback[0]
            w, h = int(w), int(h)
            fx, fy = get("fl_x"), get("fl_y")
            if fx is None:
                if get("camera_angle_x") is None:
                    raise ValueError("neither fl_x nor camera_angle_x is given")
                fx = 0.5 * w / math.tan(0.5 * float(get("camera_angle_x")))
            if fy is None:
                fy = 0.5 * h / math.tan(0.5 * float(get("camera_angle_y"))) if get("camera_angle_y") else fx
            cx = float(get("cx")) if get("cx") is not None else w / 2
            cy = float(get("cy")) if get("cy") is not None else h / 2
        except (KeyError, TypeError, ValueError) as e:
            raise corrupt(p, "transforms.json", f"frame {i} ({f.get('file_path')}): {e}") from None
        k = intrinsics(float(fx), float(fy), cx - HALF_PIXEL, cy - HALF_PIXEL)
        if width and height and (w, h) != (width, height):
            sx, sy = width / w, height / h
            k[0] *= sx
            k[1] *= sy
            k[0, 2] += 0.5 * sx - 0.5  # pixel-centre aware: (c + 0.5) * s - 0.5
            k[1, 2] += 0.5 * sy - 0.5
            w, h = width, height
        K.append(k)
        c2w.append(opengl_to_opencv(m))
        sizes.add((w, h))
    if len(sizes) > 1:
        raise InputError(f"frames have different image sizes {sorted(sizes)}", path=p,
                         fix="pass width= and height= to rescale them to one size")
    (w, h), = sizes
    return Cameras.from_cam_to_world(np.stack(K), np.stack(c2w), w, h, [str(n) for n in names])


def write_transforms(path: str | Path, cameras: Cameras, file_paths: list[str] | None = None) -> Path:
    """Write ``Cameras`` as a nerfstudio ``transforms.json`` (PINHOLE, OpenGL camera-to-world).

    Image paths default to the camera names made relative to the file's folder.
    """
    cams = as_camera_list(cameras)
    require_no_skew(cams, "transforms.json")
    path = Path(path)
    if file_paths is None:
        file_paths = []
        for i, c in enumerate(cams):
            name = c.name or f"images/frame_{i:05d}.png"
            if Path(name).is_absolute():
                name = os.path.relpath(name, path.parent.resolve())
            file_paths.append(Path(name).as_posix())
    if len(file_paths) != len(cams):
        raise InputError(f"{len(file_paths)} file paths for {len(cams)} cameras")

    def intr(c) -> dict:
        return {"fl_x": float(c.K[0, 0]), "fl_y": float(c.K[1, 1]), "cx": float(c.K[0, 2] + HALF_PIXEL),
                "cy": float(c.K[1, 2] + HALF_PIXEL), "w": c.width, "h": c.height}

    shared = all(intr(c) == intr(cams[0]) for c in cams)
    out: dict = {"camera_model": "PINHOLE"}
    if shared:
        out.update(intr(cams[0]))
        out["camera_angle_x"] = 2.0 * math.atan(0.5 * cams[0].width / cams[0].K[0, 0])
    frames = []
    for c, fp in zip(cams, file_paths, strict=True):
        frame = {"file_path": fp, "transform_matrix": opencv_to_opengl(c.cam_to_world).tolist()}
        if not shared:
            frame.update(intr(c))
        frames.append(frame)
    out["frames"] = frames
    return write_json(path, out)
