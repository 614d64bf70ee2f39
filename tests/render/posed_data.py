"""Tiny posed datasets with exact ground truth, written in NeRF-synthetic, transforms.json and COLMAP layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vision3d.core.camera import Cameras, intrinsics, look_at, opencv_to_opengl
from vision3d.io.cameras import write_colmap
from vision3d.io.images import write_image
from vision3d.render import rasterize


def gt_scene(n: int = 300, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"means": (torch.rand(n, 3, generator=g) - 0.5) * 1.2, "quats": torch.randn(n, 4, generator=g),
            "log_scales": torch.full((n, 3), float(np.log(0.06))) + 0.3 * torch.randn(n, 3, generator=g),
            "opacity_logits": torch.full((n,), 3.0), "colors": torch.rand(n, 3, generator=g)}


def orbit_cameras(n: int, size: int = 32) -> Cameras:
    f = 1.2 * size
    eyes = [[3 * np.sin(a), -1.0, -3 * np.cos(a)] for a in np.linspace(0, 2 * np.pi, n, endpoint=False)]
    V = np.stack([look_at(e, [0, 0, 0]) for e in eyes])
    return Cameras(intrinsics(f, f, (size - 1) / 2, (size - 1) / 2), V, size, size)


def render_views(scene: dict, cams: Cameras) -> np.ndarray:
    """RGBA float images ``(N,H,W,4)`` of the scene (premultiplied over nothing)."""
    with torch.no_grad():
        out = rasterize(scene, cams)
    rgb = out.colors / out.alpha.clamp_min(1e-6)[..., None]
    return torch.cat([rgb.clamp(0, 1), out.alpha[..., None]], -1).numpy()


def write_nerf_synthetic(root: Path, n_train: int = 8, n_test: int = 2, size: int = 32) -> Path:
    scene = gt_scene()
    cams = orbit_cameras(n_train + n_test, size)
    imgs = render_views(scene, cams)
    c2w = opencv_to_opengl(cams.cam_to_world)
    fov = 2 * np.arctan(size / 2 / cams.K[0, 0, 0])
    for split, idx in (("train", range(n_train)), ("test", range(n_train, n_train + n_test))):
        (root / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for i in idx:
            write_image(root / split / f"r_{i}.png", imgs[i])
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": c2w[i].tolist()})
        (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": float(fov), "frames": frames}))
    return root


def write_colmap_dataset(root: Path, n: int = 9, size: int = 32) -> Path:
    scene = gt_scene(seed=1)
    cams = orbit_cameras(n, size)
    imgs = render_views(scene, cams)
    (root / "images").mkdir(parents=True, exist_ok=True)
    names = [f"{i:03d}.png" for i in range(n)]
    for i, name in enumerate(names):
        write_image(root / "images" / name, imgs[i][..., :3] * imgs[i][..., 3:] + (1 - imgs[i][..., 3:]))
    write_colmap(root / "sparse" / "0", cams, names)
    pts = scene["means"].numpy()[::3]
    lines = [f"{j + 1} {p[0]} {p[1]} {p[2]} 128 128 128 0.1" for j, p in enumerate(pts)]
    (root / "sparse" / "0" / "points3D.txt").write_text("# points\n" + "\n".join(lines) + "\n")
    return root
