"""Triangle meshes through trimesh: read GLB/GLTF/OBJ/PLY/STL/OFF (scenes merged), write atomically."""

from __future__ import annotations

from pathlib import Path

from vision3d.errors import InputError
from vision3d.io.atomic import write_bytes
from vision3d.io.checks import corrupt, require_file, suffix_of

MESH_READ_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".stl", ".off")
MESH_WRITE_SUFFIXES = (".glb", ".obj", ".ply", ".stl", ".off")


def read_mesh(path: str | Path, process: bool = True):
    """Read a mesh file as one ``trimesh.Trimesh`` (scene parts concatenated with their transforms).

    ``process`` lets trimesh merge duplicate vertices (UV seams of textured meshes are kept apart).
    """
    import trimesh

    suffix = suffix_of(path, MESH_READ_SUFFIXES, "mesh")
    p = require_file(path, "mesh file")
    try:
        mesh = trimesh.load(str(p), file_type=suffix[1:], process=process)
        if isinstance(mesh, trimesh.Scene):
            mesh = _scene_to_mesh(mesh, process)
    except Exception as e:  # noqa: BLE001 - trimesh raises many types (ValueError, KeyError, ...) on bad files
        raise corrupt(p, f"{suffix[1:].upper()} mesh", f"trimesh could not read it ({type(e).__name__}: {e})") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        n = len(getattr(mesh, "vertices", []))
        raise InputError(f"has {n} points and no faces: it is a point cloud, not a mesh", path=p,
                         fix="give a mesh with triangles (use read_point_cloud for point clouds)")
    return mesh


def _scene_to_mesh(scene, process: bool):
    """Concatenate a scene's meshes (with node transforms) into one ``Trimesh``.

    Parts sharing one texture material (common in GLB) are joined directly; trimesh's own ``to_mesh`` copies
    every texture image per part and re-packs them, which takes seconds on a 50-part GLB.
    """
    import numpy as np
    import trimesh

    parts = []
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        g = scene.geometry[name]
        if isinstance(g, trimesh.Trimesh) and len(g.faces):
            parts.append((np.asarray(transform, dtype=np.float64), g))
    if not parts:
        return trimesh.Trimesh()
    shared = parts[0][1].visual
    same_texture = all(g.visual.kind == "texture" and getattr(g.visual, "uv", None) is not None
                       and g.visual.material is shared.material for _, g in parts)
    if not same_texture:
        return scene.to_mesh()
    verts, faces, offset = [], [], 0
    for t, g in parts:
        verts.append(trimesh.transformations.transform_points(g.vertices, t))
        f = g.faces + offset
        faces.append(f[:, ::-1] if np.linalg.det(t[:3, :3]) < 0 else f)  # a mirroring transform flips winding
        offset += len(g.vertices)
    visual = trimesh.visual.TextureVisuals(uv=np.concatenate([g.visual.uv for _, g in parts]),
                                           material=shared.material)
    return trimesh.Trimesh(np.concatenate(verts), np.concatenate(faces), visual=visual, process=process)


def write_mesh(path: str | Path, mesh) -> Path:
    """Write a ``trimesh.Trimesh`` in the format of the suffix; an OBJ's .mtl/texture go beside it as ``STEM_*``."""
    suffix = suffix_of(path, MESH_WRITE_SUFFIXES, "mesh")
    path = Path(path)
    if len(getattr(mesh, "faces", [])) == 0:
        raise InputError("the mesh has no faces, nothing to write as a mesh", path=path)
    if suffix != ".obj":
        data = mesh.export(file_type=suffix[1:])
        return write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)
    from trimesh.exchange.obj import export_obj

    mtl_name = f"{path.stem}.mtl"
    text, extra = export_obj(mesh, include_texture=True, return_texture=True, mtl_name=mtl_name)
    renames = {name: f"{path.stem}_{name}" for name in extra if name != mtl_name}
    for name, data in extra.items():  # side files first, so the .obj never points at a missing file
        if name == mtl_name:
            lines = data.decode("utf-8").splitlines()
            data = "\n".join(" ".join(renames.get(t, t) for t in ln.split(" ")) for ln in lines).encode("utf-8")
        write_bytes(path.parent / renames.get(name, name), data)
    return write_bytes(path, text.encode("utf-8"))
