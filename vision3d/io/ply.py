"""PLY vertex data (ASCII and binary) with numpy, plus plain point clouds (x y z + optional colours).

Only the ``vertex`` element is read; faces and other elements are skipped. 3DGS splat PLYs live in ``splats``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision3d.errors import InputError
from vision3d.io.atomic import atomic_path
from vision3d.io.checks import corrupt, require_file

PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_NUMPY_TO_PLY = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint",
                 "f4": "float", "f8": "double"}
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
_MAX_HEADER = 1 << 20


@dataclass
class PlyElement:
    """One ``element`` of a PLY header: its name, row count and ``(property, numpy type)`` list."""

    name: str
    count: int
    props: list[tuple[str, str]]
    has_list: bool = False


def _read_header(p: Path) -> tuple[str, list[PlyElement], int]:
    """Parse the header: returns (format, elements, byte offset of the body)."""
    with open(p, "rb") as fh:
        head = fh.read(_MAX_HEADER)
    if not head.startswith(b"ply"):
        raise corrupt(p, "PLY", "it does not start with 'ply'", fix="this is not a PLY file")
    end = head.find(b"end_header")
    if end < 0:
        raise corrupt(p, "PLY", "no 'end_header' line in the header")
    body = head.find(b"\n", end) + 1
    if body == 0:
        raise corrupt(p, "PLY", "the header is not terminated by a newline")
    fmt, elements = None, []
    for raw in head[:end].decode("latin-1").splitlines()[1:]:
        parts = raw.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        try:
            if parts[0] == "format":
                fmt = parts[1]
                if fmt not in _FORMATS:
                    raise corrupt(p, "PLY", f"unknown format {fmt!r}")
            elif parts[0] == "element":
                elements.append(PlyElement(parts[1], int(parts[2]), []))
            elif parts[0] == "property":
                if not elements:
                    raise corrupt(p, "PLY", "a property comes before any element")
                if parts[1] == "list":
                    elements[-1].has_list = True
                    elements[-1].props.append((parts[4], "list"))
                else:
                    elements[-1].props.append((parts[2], PLY_TYPES[parts[1]]))
        except InputError:
            raise
        except (IndexError, KeyError, ValueError):
            raise corrupt(p, "PLY", f"bad header line {raw.strip()!r}") from None
    if fmt is None:
        raise corrupt(p, "PLY", "the header has no 'format' line")
    return fmt, elements, body


def read_ply_vertices(path: str | Path) -> dict[str, np.ndarray]:
    """Read the ``vertex`` element of a PLY file as ``{property name: (N,) array}`` (any property order)."""
    p = require_file(path, "PLY file")
    fmt, elements, offset = _read_header(p)
    names = [e.name for e in elements]
    if "vertex" not in names:
        raise corrupt(p, "PLY", "it has no 'vertex' element")
    vi = names.index("vertex")
    vertex = elements[vi]
    if vertex.has_list:
        raise InputError("PLY vertex element has list properties, which are not supported", path=p)
    before = elements[:vi]
    if _FORMATS[fmt] is None:
        return _read_ascii_vertices(p, offset, vertex, sum(e.count for e in before))
    endian = _FORMATS[fmt]
    for e in before:
        if e.has_list:
            raise InputError(f"binary PLY with list element '{e.name}' before the vertices is not supported",
                             path=p, fix="re-export the PLY with the vertex element first")
        offset += e.count * np.dtype([(n, endian + t) for n, t in e.props]).itemsize
    dtype = np.dtype([(n, endian + t) for n, t in vertex.props])
    need = offset + vertex.count * dtype.itemsize
    size = p.stat().st_size
    if size < need:
        raise corrupt(p, "PLY", f"truncated: {size} bytes, the header promises at least {need}")
    rows = np.fromfile(p, dtype=dtype, count=vertex.count, offset=offset)
    return {n: rows[n].astype(rows[n].dtype.newbyteorder("=")) for n, _ in vertex.props}


def _read_ascii_vertices(p: Path, offset: int, vertex: PlyElement, skip: int) -> dict[str, np.ndarray]:
    with open(p, "rb") as fh:
        fh.seek(offset)
        lines = fh.read().decode("latin-1").splitlines()
    lines = [ln for ln in lines if ln.strip()][skip : skip + vertex.count]
    if len(lines) < vertex.count:
        raise corrupt(p, "PLY", f"truncated: {len(lines)} vertex lines, the header promises {vertex.count}")
    try:
        table = np.array(" ".join(lines).split(), dtype=np.float64).reshape(vertex.count, len(vertex.props))
    except ValueError:
        raise corrupt(p, "PLY", f"vertex lines do not hold {len(vertex.props)} numbers each") from None
    return {n: table[:, i].astype(t) for i, (n, t) in enumerate(vertex.props)}


def write_ply_vertices(path: str | Path, columns: dict[str, np.ndarray], comment: str | None = None) -> Path:
    """Write ``{property: (N,) array}`` as a binary little-endian PLY vertex element, in the given order."""
    columns = {k: np.asarray(v) for k, v in columns.items()}
    n = len(next(iter(columns.values()))) if columns else 0
    dtype = np.dtype([(k, "<" + v.dtype.str[1:]) for k, v in columns.items()])
    rows = np.empty(n, dtype=dtype)
    for k, v in columns.items():
        if v.shape != (n,):
            raise ValueError(f"PLY column {k} has shape {v.shape}, expected ({n},)")
        rows[k] = v
    lines = ["ply", "format binary_little_endian 1.0"]
    if comment:
        lines.append(f"comment {comment}")
    lines.append(f"element vertex {n}")
    lines += [f"property {_NUMPY_TO_PLY[dtype[k].str[1:]]} {k}" for k in columns]
    lines.append("end_header")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(("\n".join(lines) + "\n").encode("ascii"))
        fh.write(rows.tobytes())
    return Path(path)


def _colors_from(v: dict[str, np.ndarray]) -> np.ndarray | None:
    """RGB in [0,1] from red/green/blue (integers scaled by their type's maximum) or from 3DGS f_dc_*."""
    for keys in (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue")):
        if all(k in v for k in keys):
            c = np.stack([v[k] for k in keys], 1)
            if np.issubdtype(c.dtype, np.integer):
                return (c / np.iinfo(c.dtype).max).astype(np.float32)
            c = c.astype(np.float32)
            return c / 255.0 if c.size and c.max() > 1.0 else c  # float colours stored as 0..255
    if all(f"f_dc_{i}" in v for i in range(3)):
        from vision3d.core.gaussians import sh0_to_rgb

        return np.clip(sh0_to_rgb(np.stack([v[f"f_dc_{i}"] for i in range(3)], 1)), 0, 1).astype(np.float32)
    return None


def read_point_cloud(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a PLY point cloud: points ``(N,3)`` float32 and colours ``(N,3)`` in [0,1] or ``None``."""
    v = read_ply_vertices(path)
    if not all(k in v for k in "xyz"):
        raise corrupt(path, "PLY point cloud", "the vertices have no x, y, z properties")
    points = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float32)
    return points, _colors_from(v)


def write_point_cloud(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """Write points ``(N,3)`` and optional RGB ``(N,3)`` in [0,1] as a binary PLY (float xyz, uchar colour)."""
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InputError(f"points have shape {pts.shape}, expected (N, 3)")
    cols = {"x": pts[:, 0], "y": pts[:, 1], "z": pts[:, 2]}
    if colors is not None:
        c = np.asarray(colors, dtype=np.float64)
        if c.shape != pts.shape:
            raise InputError(f"colours have shape {c.shape}, expected {pts.shape}")
        c8 = np.round(np.clip(np.nan_to_num(c), 0, 1) * 255).astype(np.uint8)
        cols.update(red=c8[:, 0], green=c8[:, 1], blue=c8[:, 2])
    return write_ply_vertices(path, cols)
