"""``describe(path)``: what a file or folder holds, for ``v3d inspect`` and for checking inputs early.

Each reader does the real parsing, so a corrupt file fails here with the same clear error it would give
in a job.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vision3d.errors import InputError

MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".stl", ".off")


def _stats(a: np.ndarray) -> dict:
    ok = np.isfinite(a)
    if not ok.any():
        return {"finite": 0.0}
    v = a[ok]
    return {"finite": round(float(ok.mean()), 4), "min": float(v.min()), "max": float(v.max()),
            "mean": float(v.mean())}


def _describe_flow(path: Path) -> dict:
    from vision3d.io.flow import read_flow

    f = read_flow(path)
    mag = f.magnitude()
    mag[~f.valid_mask()] = np.nan
    return {"kind": "flow", "width": f.width, "height": f.height, "valid": round(float(f.valid_mask().mean()), 4),
            "max_magnitude_px": float(np.nanmax(mag)) if np.isfinite(mag).any() else 0.0}


def _describe_depth(path: Path, scale: float | None) -> dict:
    from vision3d.io.depth import read_depth

    d = read_depth(path, scale=scale)
    return {"kind": "depth", "depth_kind": d.kind, "width": d.shape[1], "height": d.shape[0],
            **_stats(d.depth)}


def _describe_ply(path: Path) -> dict:
    from vision3d.io.ply import read_ply_vertices

    cols = read_ply_vertices(path)
    if "f_dc_0" in cols and "opacity" in cols:
        from vision3d.io.splats import read_splats

        g = read_splats(path)
        return _gaussians(g)
    try:
        from vision3d.io.mesh import read_mesh

        m = read_mesh(path)
        return _mesh(m)
    except InputError:
        n = len(next(iter(cols.values()))) if cols else 0
        return {"kind": "point cloud", "points": n, "properties": sorted(cols)}


def _gaussians(g) -> dict:
    lo, hi = g.means.min(0), g.means.max(0)
    return {"kind": "gaussians", "count": len(g), "sh_degree": g.sh_degree,
            "bbox_min": lo.round(4).tolist(), "bbox_max": hi.round(4).tolist(),
            "non_finite": int((~g.finite_mask()).sum())}


def _mesh(m) -> dict:
    return {"kind": "mesh", "vertices": len(m.vertices), "faces": len(m.faces), "watertight": bool(m.is_watertight),
            "bbox_min": np.round(m.bounds[0], 4).tolist(), "bbox_max": np.round(m.bounds[1], 4).tolist()}


def _describe_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not valid JSON ({e})", path=path) from e
    if isinstance(data, dict) and "frames" in data:
        from vision3d.io.cameras import read_transforms

        cams = read_transforms(path)
        return {"kind": "cameras (transforms.json)", "cameras": len(cams), "width": cams.width,
                "height": cams.height}
    if isinstance(data, dict) and "stages" in data:
        return _describe_run(path.parent)
    raise InputError("JSON file is neither a transforms.json nor a vision3d manifest", path=path)


def _describe_run(folder: Path) -> dict:
    from vision3d.runner import load_manifest

    m = load_manifest(folder)
    return {"kind": "run", "job": m.get("job"), "stages": {k: v.get("status") for k, v in m["stages"].items()},
            "metrics": m.get("metrics", {})}


def _describe_npy(path: Path, scale: float | None) -> dict:
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:
        raise InputError(f"not a readable .npy array ({type(e).__name__})", path=path) from e
    if a.ndim == 3 and a.shape[0] == 2:
        return _describe_flow(path)
    if a.ndim == 2:
        return _describe_depth(path, scale)
    return {"kind": "array", "shape": list(a.shape), "dtype": str(a.dtype)}


def describe(path: str | Path, scale: float | None = None) -> dict:
    """A dict of facts about ``path`` (its kind, size, counts, value ranges); raises on unreadable input."""
    path = Path(path)
    if not path.exists():
        raise InputError("does not exist", path=path, fix="check the path")
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return _describe_run(path)
        if (path / "cameras.txt").is_file() and (path / "images.txt").is_file():
            from vision3d.io.cameras import read_colmap

            cams = read_colmap(path)
            return {"kind": "cameras (COLMAP text)", "cameras": len(cams)}
        from vision3d.core.frames import open_frames

        return {"kind": "image folder", **open_frames(path).describe()}
    ext = path.suffix.lower()
    from vision3d.io.images import IMAGE_SUFFIXES
    from vision3d.io.video import VIDEO_SUFFIXES, probe_video

    if ext in VIDEO_SUFFIXES:
        v = probe_video(path)
        return {"kind": "video", "width": v.width, "height": v.height, "frames": v.n_frames, "fps": round(v.fps, 3),
                "codec": v.codec}
    if ext == ".flo":
        return _describe_flow(path)
    if ext == ".pfm":
        return _describe_depth(path, scale)
    if ext == ".npy":
        return _describe_npy(path, scale)
    if ext == ".ply":
        return _describe_ply(path)
    if ext == ".splat":
        from vision3d.io.splats import read_splats

        return _gaussians(read_splats(path))
    if ext in MESH_SUFFIXES:
        from vision3d.io.mesh import read_mesh

        return _mesh(read_mesh(path))
    if ext == ".json":
        return _describe_json(path)
    if ext == ".txt":
        from vision3d.io.cameras import read_tum_trajectory

        stamps, c2w = read_tum_trajectory(path)
        steps = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1)
        return {"kind": "trajectory (TUM)", "poses": len(stamps), "path_length": float(steps.sum())}
    if ext == ".safetensors":
        from vision3d.io.checkpoint import load_checkpoint

        sd, cfg, meta = load_checkpoint(path)
        return {"kind": "checkpoint", "model": meta.get("model"), "tensors": len(sd),
                "parameters": int(sum(int(np.prod(t.shape)) for t in sd.values())), "config": cfg}
    if ext in IMAGE_SUFFIXES:
        from vision3d.io.images import check_resolution, image_size

        w, h = image_size(path)
        check_resolution(w, h, path)
        from PIL import Image

        with Image.open(path) as im:
            mode = im.mode
        return {"kind": "image", "width": w, "height": h, "mode": mode}
    raise InputError(f"unsupported file type {ext or '(no extension)'!r}", path=path,
                     fix="see `v3d inspect --help` for the formats vision3d reads")
