"""Gaussian splat files: the 3DGS ``.ply`` layout (opens in SuperSplat, antimatter15, gsplat) and ``.splat``.

``.splat`` (antimatter15) is 32 bytes per Gaussian: xyz float32, linear scale float32×3, RGBA uint8,
quaternion wxyz uint8 (q*128+128); it is quantised and holds no SH beyond the base colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision3d.core.gaussians import Gaussians, logit, rgb_to_sh0, sh0_to_rgb, sigmoid
from vision3d.errors import InputError
from vision3d.io.atomic import write_bytes
from vision3d.io.checks import corrupt, require_file, suffix_of
from vision3d.io.ply import read_ply_vertices, read_point_cloud, write_ply_vertices

__all__ = ["read_point_cloud", "read_splat", "read_splat_ply", "read_splats", "splat_ply_properties",
           "write_splat", "write_splat_ply", "write_splats"]

SPLAT_SUFFIXES = (".ply", ".splat")
SPLAT_DTYPE = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
_REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3")


def splat_ply_properties(num_sh: int = 1) -> list[str]:
    """The standard 3DGS PLY property order for ``num_sh`` = (degree+1)² SH coefficients per channel."""
    rest = [f"f_rest_{i}" for i in range(3 * (num_sh - 1))]
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", *rest, "opacity",
             "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def write_splat_ply(path: str | Path, g: Gaussians) -> Path:
    """Write Gaussians as a 3DGS PLY (logit opacity, log scale, wxyz rot; f_rest channel-major)."""
    n = len(g)
    if g.sh is not None:
        dc, rest = g.sh[:, 0, :], g.sh[:, 1:, :]
    else:
        dc, rest = rgb_to_sh0(g.colors), np.zeros((n, 0, 3), np.float32)
    rest = np.transpose(rest, (0, 2, 1)).reshape(n, -1)  # f_rest index = channel*(K-1) + k, as in 3DGS
    zeros = np.zeros(n, np.float32)
    values = [g.means[:, 0], g.means[:, 1], g.means[:, 2], zeros, zeros, zeros, dc[:, 0], dc[:, 1], dc[:, 2],
              *rest.T, g.opacity_logits, *g.log_scales.T, *g.quats.T]
    names = splat_ply_properties(1 + rest.shape[1] // 3)
    return write_ply_vertices(path, {k: np.asarray(v, np.float32) for k, v in zip(names, values, strict=True)})


def read_splat_ply(path: str | Path) -> Gaussians:
    """Read a 3DGS PLY (ASCII or binary, any property order); ``colors`` if it has no f_rest, else ``sh``."""
    v = read_ply_vertices(path)
    missing = [k for k in _REQUIRED if k not in v]
    if missing:
        what = "a plain point cloud" if all(k in v for k in "xyz") else "a PLY without Gaussian fields"
        raise InputError(f"not a 3DGS splat file: it is {what} (missing {', '.join(missing[:4])}"
                         f"{', ...' if len(missing) > 4 else ''})", path=path,
                         fix="use vision3d.io.read_point_cloud for plain point clouds")

    def cols(*keys: str) -> np.ndarray:
        return np.stack([v[k].astype(np.float32) for k in keys], 1)

    rest_keys = sorted((k for k in v if k.startswith("f_rest_")), key=lambda k: int(k[7:]))
    m = len(rest_keys)
    if rest_keys != [f"f_rest_{i}" for i in range(m)] or m % 3 or round(np.sqrt(m // 3 + 1)) ** 2 != m // 3 + 1:
        raise corrupt(path, "3DGS PLY", f"{m} f_rest_* properties do not form 3 channels of (d+1)^2-1 SH "
                      "coefficients")
    dc = cols("f_dc_0", "f_dc_1", "f_dc_2")
    common = dict(means=cols("x", "y", "z"), quats=cols("rot_0", "rot_1", "rot_2", "rot_3"),
                  log_scales=cols("scale_0", "scale_1", "scale_2"), opacity_logits=v["opacity"].astype(np.float32))
    if m == 0:
        return Gaussians(**common, colors=sh0_to_rgb(dc))
    rest = cols(*rest_keys).reshape(len(dc), 3, m // 3).transpose(0, 2, 1)
    return Gaussians(**common, sh=np.concatenate([dc[:, None, :], rest], 1))


def write_splat(path: str | Path, g: Gaussians) -> Path:
    """Write antimatter15 ``.splat`` (32 bytes/Gaussian; base colour only, opacity and rotation in 8 bits)."""
    rows = np.zeros(len(g), SPLAT_DTYPE)
    rows["pos"] = g.means
    rows["scale"] = np.exp(g.log_scales.astype(np.float64))
    rgba = np.concatenate([np.clip(g.rgb, 0, 1), sigmoid(g.opacity_logits)[:, None]], 1)
    rows["rgba"] = np.round(np.nan_to_num(rgba) * 255).clip(0, 255)
    q = g.quats.astype(np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)  # q and -q are the same rotation; keep w >= 0
    rows["rot"] = np.round(q * 128 + 128).clip(0, 255)
    return write_bytes(path, rows.tobytes())


def read_splat(path: str | Path) -> Gaussians:
    """Read antimatter15 ``.splat``: the file size must be a non-zero multiple of 32 bytes."""
    p = require_file(path, ".splat file")
    size = p.stat().st_size
    if size == 0 or size % SPLAT_DTYPE.itemsize:
        raise corrupt(p, ".splat", f"size {size} bytes is not a non-zero multiple of {SPLAT_DTYPE.itemsize}",
                      fix="the file is truncated or not an antimatter15 .splat")
    rows = np.fromfile(p, SPLAT_DTYPE)
    rgba = rows["rgba"].astype(np.float32) / 255.0
    return Gaussians(
        means=rows["pos"], quats=(rows["rot"].astype(np.float32) - 128.0) / 128.0,
        log_scales=np.log(np.maximum(rows["scale"], np.finfo(np.float32).tiny)),
        opacity_logits=logit(rgba[:, 3]), colors=rgba[:, :3])


def read_splats(path: str | Path) -> Gaussians:
    """Read Gaussians from ``.ply`` (3DGS) or ``.splat`` (antimatter15), chosen by suffix."""
    suffix = suffix_of(path, SPLAT_SUFFIXES, "splat")
    return read_splat_ply(path) if suffix == ".ply" else read_splat(path)


def write_splats(path: str | Path, g: Gaussians) -> Path:
    """Write Gaussians as ``.ply`` (3DGS, lossless float32) or ``.splat`` (quantised), chosen by suffix."""
    suffix = suffix_of(path, SPLAT_SUFFIXES, "splat")
    return write_splat_ply(path, g) if suffix == ".ply" else write_splat(path, g)
