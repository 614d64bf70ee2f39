"""Genuinely 3D synthetic scenes for depth training: a textured room with meshes and primitives inside,
seen by a moving camera, rendered through ``vision3d.render`` with exact depth and poses.

Surfaces become flat Gaussians (discs in the surface, thin along the normal) sampled evenly over the
meshes (the shared Stanford bunny, spot, cow, teapot when present; spheres, boxes, cylinders, capsules
always), coloured by tri-planar projection of photo or procedural textures. The renderer's expected depth
is the surface depth up to the disc thickness (≈1 % of the spacing). Frames, depths, intrinsics and
world-to-camera poses come back in the project's conventions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh

from vision3d.core.camera import intrinsics, look_at
from vision3d.core.gaussians import Gaussians, logit
from vision3d.synth.textures import TexturePool


@dataclass
class Scene3DConfig:
    width: int = 128
    height: int = 96
    n_frames: int = 4
    n_objects: tuple[int, int] = (2, 6)
    room_size: tuple[float, float] = (4.0, 9.0)  # edge lengths of the room box (metres)
    fov_deg: tuple[float, float] = (50.0, 80.0)
    step_m: tuple[float, float] = (0.02, 0.12)  # camera translation per frame
    turn_deg: tuple[float, float] = (0.0, 2.0)  # camera rotation per frame (look-at target drift)
    spacing: float = 0.04  # Gaussian spacing on surfaces, metres (sets the count: area / spacing²)
    mesh_dir: str | None = None  # folder of .obj meshes (default: ../shared/data/meshes when present)


@dataclass
class Clip3D:
    images: np.ndarray  # (T,H,W,3) float32
    depth: np.ndarray  # (T,H,W) float32 metric z
    K: np.ndarray  # (3,3)
    world_to_cam: np.ndarray  # (T,4,4)
    alpha: np.ndarray  # (T,H,W) coverage (1 inside the room)


def _z_to(normals: np.ndarray) -> np.ndarray:
    """wxyz quaternions rotating +z onto each normal."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, normals)
    s = np.linalg.norm(axis, axis=1)
    half = np.arctan2(s, normals @ z) / 2
    axis = np.where(s[:, None] > 1e-9, axis / np.maximum(s, 1e-9)[:, None], [1.0, 0.0, 0.0])
    return np.c_[np.cos(half), axis * np.sin(half)[:, None]]


def _triplanar(points: np.ndarray, normals: np.ndarray, tex: np.ndarray, scale: float) -> np.ndarray:
    """Colour per point from a texture projected along the normal's dominant axis."""
    axis = np.argmax(np.abs(normals), 1)
    uv_axes = np.array([[1, 2], [0, 2], [0, 1]])[axis]
    u = np.take_along_axis(points, uv_axes[:, :1], 1)[:, 0] * scale
    v = np.take_along_axis(points, uv_axes[:, 1:], 1)[:, 0] * scale
    h, w = tex.shape[:2]
    x = np.mod(u * w, w).astype(int)
    y = np.mod(v * h, h).astype(int)
    return tex[y, x].astype(np.float32) / (255.0 if tex.dtype == np.uint8 else 1.0)


def _surface_gaussians(mesh: trimesh.Trimesh, spacing: float, tex: np.ndarray, tex_scale: float,
                       rng: np.random.Generator) -> Gaussians:
    n = int(np.clip(mesh.area / spacing ** 2, 50, 400_000))
    pts, face = trimesh.sample.sample_surface(mesh, n, seed=int(rng.integers(2 ** 31)))
    normals = mesh.face_normals[face]
    s = np.full(n, spacing * 0.75)
    return Gaussians(pts, _z_to(normals), np.log(np.c_[s, s, s * 0.02]), np.full(n, logit(0.995)),
                     colors=_triplanar(pts, normals, tex, tex_scale))


def _primitives(rng: np.random.Generator) -> trimesh.Trimesh:
    kind = rng.integers(4)
    if kind == 0:
        return trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    if kind == 1:
        return trimesh.creation.box(extents=rng.uniform(0.4, 1.0, 3))
    if kind == 2:
        return trimesh.creation.cylinder(radius=rng.uniform(0.2, 0.5), height=rng.uniform(0.5, 1.2), sections=32)
    return trimesh.creation.capsule(height=rng.uniform(0.3, 0.8), radius=rng.uniform(0.15, 0.35))


def _meshes(mesh_dir: str | None) -> list[Path]:
    if mesh_dir is None:
        from vision3d.flow.datasets import data_root

        mesh_dir = str(data_root() / "meshes")
    d = Path(mesh_dir)
    return sorted(d.glob("*.obj")) if d.is_dir() else []


_MESH_CACHE: dict[str, trimesh.Trimesh] = {}


def _load_mesh(p: Path) -> trimesh.Trimesh:
    if str(p) not in _MESH_CACHE:
        m = trimesh.load(p, force="mesh")
        m.apply_translation(-m.bounds.mean(0))
        m.apply_scale(1.0 / max(m.extents.max(), 1e-9))  # unit size
        _MESH_CACHE[str(p)] = m
    return _MESH_CACHE[str(p)].copy()


def sample_scene3d(cfg: Scene3DConfig, rng: np.random.Generator, textures: TexturePool) -> tuple[Gaussians, dict]:
    """A room with objects as Gaussians, and the room geometry (for camera placement)."""
    size = rng.uniform(*cfg.room_size, 3) * np.array([1.0, 0.6, 1.0])  # x, y (height), z
    room = trimesh.creation.box(extents=size)
    room.invert()  # normals point inside
    parts = [_surface_gaussians(room, cfg.spacing * 1.5, textures.sample(rng, 256, 256, as_uint8=True),
                                rng.uniform(0.2, 0.6), rng)]
    mesh_files = _meshes(cfg.mesh_dir)
    objects = []
    for _ in range(int(rng.integers(cfg.n_objects[0], cfg.n_objects[1] + 1))):
        m = _load_mesh(mesh_files[int(rng.integers(len(mesh_files)))]) if mesh_files and rng.random() < 0.5 \
            else _primitives(rng)
        m.apply_transform(trimesh.transformations.random_rotation_matrix(rng.random(3)))
        m.apply_scale(rng.uniform(0.4, 1.4))
        pos = rng.uniform(-0.35, 0.35, 3) * size
        pos[1] = size[1] / 2 - m.extents[1] / 2 - rng.uniform(0, 0.3) * size[1]  # resting low in the room (y down)
        m.apply_translation(pos - m.bounds.mean(0))
        objects.append(m)
        parts.append(_surface_gaussians(m, cfg.spacing, textures.sample(rng, 256, 256, as_uint8=True),
                                        rng.uniform(1.0, 4.0), rng))
    return Gaussians.concat(parts), {"size": size, "objects": objects}


def _camera_path(cfg: Scene3DConfig, info: dict, rng: np.random.Generator) -> np.ndarray:
    """World-to-camera poses: a start near a wall looking across the room, smooth translation and turn."""
    size = info["size"]
    start = rng.uniform(-0.35, 0.35, 3) * size
    start[1] = rng.uniform(-0.2, 0.25) * size[1]
    targets = [m.bounds.mean(0) for m in info["objects"]] or [np.zeros(3)]
    target = targets[int(rng.integers(len(targets)))] + rng.normal(0, 0.3, 3)
    if np.linalg.norm(target - start) < 1.0:
        start = target - np.r_[0.0, 0.0, 1.5]
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    step = rng.uniform(*cfg.step_m)
    drift = rng.normal(size=3)
    drift *= np.tan(np.radians(rng.uniform(*cfg.turn_deg))) * np.linalg.norm(target - start) / np.linalg.norm(drift)
    poses = []
    for t in range(cfg.n_frames):
        eye = start + direction * step * t
        poses.append(look_at(eye, target + drift * t, up=(0.0, -1.0, 0.0)))
    return np.stack(poses)


def render_clip3d(cfg: Scene3DConfig | None = None, rng=None, textures: TexturePool | None = None) -> Clip3D:
    """One clip of a random 3D scene with exact depth and poses."""
    cfg = cfg or Scene3DConfig()
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    textures = textures or TexturePool()
    from vision3d.render import rasterize

    g, info = sample_scene3d(cfg, rng, textures)
    V = _camera_path(cfg, info, rng)
    fov = np.radians(rng.uniform(*cfg.fov_deg))
    f = 0.5 * cfg.width / np.tan(fov / 2)
    K = intrinsics(f, f, (cfg.width - 1) / 2, (cfg.height - 1) / 2)
    with torch.no_grad():
        out = rasterize(g, (torch.tensor(V, dtype=torch.float32), torch.tensor(K, dtype=torch.float32)),
                        cfg.width, cfg.height, backend="torch", near=0.05)
    return Clip3D(out.colors.clamp(0, 1).numpy(), out.depth.numpy(), K, V, out.alpha.numpy())
