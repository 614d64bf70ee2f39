"""``convert(src, dst)``: one data kind between its file formats (flow, depth, splats, meshes, cameras).

The kind comes from the suffixes where they are unambiguous; ``.png``/``.npy``/``.ply`` may hold several
kinds, so the source's content decides, or the caller passes ``kind``. Outputs are written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision3d.errors import InputError

KINDS = ("flow", "depth", "splats", "mesh", "cameras")
_BY_SUFFIX = {".flo": "flow", ".pfm": "depth", ".splat": "splats", ".glb": "mesh", ".gltf": "mesh", ".obj": "mesh",
              ".stl": "mesh", ".off": "mesh", ".json": "cameras", ".txt": "cameras"}
_FORMATS = {"flow": (".flo", ".png", ".npy"), "depth": (".npy", ".pfm", ".png"), "splats": (".ply", ".splat"),
            "mesh": (".glb", ".obj", ".ply", ".stl", ".off"), "cameras": (".json", ".txt", "folder (COLMAP text)")}


def detect_kind(src: Path) -> str:
    """The data kind a source file holds, from its suffix or (for .npy/.ply/.png) its content."""
    if src.is_dir():
        return "cameras"
    ext = src.suffix.lower()
    if ext in _BY_SUFFIX:
        return _BY_SUFFIX[ext]
    if ext == ".npy":
        try:
            shape = np.load(src, mmap_mode="r", allow_pickle=False).shape
        except Exception as e:
            raise InputError(f"not a readable .npy array ({type(e).__name__})", path=src) from e
        return "flow" if len(shape) == 3 and shape[0] == 2 else "depth"
    if ext == ".ply":
        from vision3d.io.ply import read_ply_vertices

        return "splats" if "f_dc_0" in read_ply_vertices(src) else "mesh"
    if ext == ".png":
        raise InputError("a .png may hold KITTI flow or 16-bit depth", path=src, fix="pass --kind flow or --kind depth")
    raise InputError(f"cannot convert {ext or 'files without a suffix'}", path=src,
                     fix="supported: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in _FORMATS.items()))


def _convert_cameras(src: Path, dst: Path, fov_deg: float | None, width: int | None, height: int | None) -> dict:
    from vision3d.core.camera import Camera
    from vision3d.io.cameras import (read_colmap_cameras, read_transforms, read_tum_cameras,
                                     read_tum_trajectory, write_colmap, write_transforms, write_tum_trajectory)

    if src.is_dir():
        cams = read_colmap_cameras(src)
    elif src.suffix.lower() == ".json":
        cams = read_transforms(src)
    else:  # TUM: poses only; intrinsics come from the caller
        if dst.suffix.lower() == ".txt":
            stamps, c2w = read_tum_trajectory(src)
            write_tum_trajectory(dst, c2w, stamps)
            return {"kind": "cameras", "cameras": len(c2w)}
        if not (fov_deg and width and height):
            raise InputError("a TUM trajectory has no intrinsics", path=src,
                             fix="pass --fov DEGREES --width W --height H")
        K = Camera.from_fov(np.radians(fov_deg), width, height).K
        cams = read_tum_cameras(src, K, width, height)
    if dst.suffix.lower() == ".json":
        write_transforms(dst, cams)
    elif dst.suffix.lower() == ".txt":
        write_tum_trajectory(dst, cams)
    elif dst.suffix == "":
        write_colmap(dst, cams)
    else:
        raise InputError(f"cannot write cameras as {dst.suffix}", path=dst,
                         fix="use .json (nerfstudio), .txt (TUM) or a folder name (COLMAP text)")
    return {"kind": "cameras", "cameras": len(cams)}


def convert(src: str | Path, dst: str | Path, kind: str | None = None, scale: float | None = None,
            fov_deg: float | None = None, width: int | None = None, height: int | None = None) -> dict:
    """Convert ``src`` to ``dst`` (format from its suffix); returns a summary dict."""
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise InputError("does not exist", path=src, fix="check the path")
    if kind is not None and kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}", fix=f"use one of {', '.join(KINDS)}")
    if src.resolve() == dst.resolve():
        raise InputError("source and destination are the same file", path=dst)
    kind = kind or detect_kind(src)
    if kind == "flow":
        from vision3d.io.flow import read_flow, write_flow

        f = read_flow(src)
        write_flow(dst, f)
        return {"kind": kind, "width": f.width, "height": f.height}
    if kind == "depth":
        from vision3d.io.depth import read_depth, write_depth

        d = read_depth(src, scale=scale)
        d.require_valid(path=src)
        write_depth(dst, d, scale=scale or 1000.0)
        return {"kind": kind, "width": d.shape[1], "height": d.shape[0], "valid": float(d.valid.mean())}
    if kind == "splats":
        from vision3d.io.splats import read_splats, write_splats

        g = read_splats(src)
        write_splats(dst, g)
        return {"kind": kind, "count": len(g)}
    if kind == "mesh":
        from vision3d.io.mesh import read_mesh, write_mesh

        m = read_mesh(src)
        write_mesh(dst, m)
        return {"kind": kind, "vertices": len(m.vertices), "faces": len(m.faces)}
    return _convert_cameras(src, dst, fov_deg, width, height)
