"""Depth evaluation data in ``../shared/data``: NYU and KITTI samples (Metric3D's demo sets), the TartanAir
video (metric depth + poses) and any folder with ``rgb/`` and ``depth/`` side by side.

Each sample carries the image, metric GT (NaN = missing), intrinsics, the camera-to-world pose when known,
the dataset's depth cap and its evaluation crop (Eigen crop for NYU, Garg crop for KITTI).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision3d.errors import InputError
from vision3d.flow.datasets import data_root
from vision3d.io.cameras import read_tartanair_poses
from vision3d.io.checks import require_dir
from vision3d.io.depth import read_depth
from vision3d.io.images import list_images, read_image

DEPTH_DATASETS = ("nyu", "kitti", "tartanair")
CAPS = {"nyu": 10.0, "kitti": 80.0, "tartanair": 80.0}


@dataclass
class DepthSample:
    name: str
    image: np.ndarray  # (H,W,3) float32
    depth: np.ndarray  # (H,W) float32 metres, NaN = missing
    K: np.ndarray | None
    cam_to_world: np.ndarray | None  # (4,4) OpenCV axes, when the dataset has poses
    cap: float | None
    crop: tuple[int, int, int, int] | None  # (top, bottom, left, right) evaluation window

    def eval_mask(self) -> np.ndarray:
        m = np.zeros(self.depth.shape, bool)
        if self.crop is None:
            m[:] = True
        else:
            t, b, left, r = self.crop
            m[t:b, left:r] = True
        return m


def _metric3d(name: str) -> Iterator[DepthSample]:
    root = data_root() / "metric3d_depth_demo"
    ann = json.loads((root / "data" / f"{name}_demo" / "test_annotations.json").read_text())
    for f in ann["files"]:
        img = read_image(root / f["rgb"])
        depth = read_depth(root / f["depth"], scale=float(f["depth_scale"])).depth
        fx, fy, cx, cy = f["cam_in"]
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
        h, w = depth.shape
        crop = (45, 471, 41, 601) if name == "nyu" else (int(0.40810811 * h), int(0.99189189 * h),
                                                         int(0.03594771 * w), int(0.96405229 * w))
        yield DepthSample(Path(f["rgb"]).stem, img, depth, K, None, CAPS[name], crop)


def _tartanair() -> Iterator[DepthSample]:
    root = data_root() / "tartanair_seq"
    images = list_images(root / "image_left")
    cams = read_tartanair_poses(root / "pose_left.txt")
    if len(cams) < len(images):
        raise InputError(f"{len(images)} TartanAir images but {len(cams)} poses", path=root)
    for i, p in enumerate(images):
        depth = read_depth(root / "depth_left" / f"{p.stem}_depth.npy").depth
        yield DepthSample(p.stem, read_image(p), depth, cams.K[i], cams.cam_to_world[i], CAPS["tartanair"], None)


def _folder(path: Path) -> Iterator[DepthSample]:
    """``rgb/`` and ``depth/`` with matching stems; ``dataset.json`` may give depth_scale, cap, K (fx fy cx cy)."""
    root = require_dir(path, "depth dataset folder")
    meta = json.loads((root / "dataset.json").read_text()) if (root / "dataset.json").is_file() else {}
    rgb = list_images(root / "rgb") if (root / "rgb").is_dir() else []
    if not rgb or not (root / "depth").is_dir():
        raise InputError("a depth dataset folder needs rgb/ and depth/ with matching file names", path=root)
    depth_files = {p.stem: p for p in (root / "depth").iterdir() if p.is_file()}
    K = None
    if "K" in meta:
        fx, fy, cx, cy = meta["K"]
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
    for p in rgb:
        if p.stem not in depth_files:
            raise InputError(f"no depth file for {p.name}", path=root / "depth", fix="name depth files like the images")
        d = read_depth(depth_files[p.stem], scale=meta.get("depth_scale")).depth
        yield DepthSample(p.stem, read_image(p), d, K, None, meta.get("cap"), None)


def iter_depth_dataset(name: str) -> Iterator[DepthSample]:
    """Samples of ``nyu``, ``kitti``, ``tartanair`` (in ``../shared/data``) or a folder path."""
    if name in ("nyu", "kitti"):
        return _metric3d(name)
    if name == "tartanair":
        return _tartanair()
    if Path(name).is_dir():
        return _folder(Path(name))
    raise InputError(f"unknown depth dataset {name!r}", fix=f"use one of {', '.join(DEPTH_DATASETS)} or a folder")
