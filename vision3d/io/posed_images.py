"""Posed image datasets for scene fitting: NeRF-synthetic, nerfstudio ``transforms.json`` and COLMAP text models.

``load_posed_dataset(path)`` detects the layout, reads the images (optionally downscaled, RGBA composited over
a background), the cameras in the project's OpenCV convention, a train/test split and, where the format has
them, initial points. NeRF-synthetic uses its own ``transforms_{train,test}.json`` split (frames whose image
is missing are skipped and counted); other layouts hold out every ``test_every``-th view (the LLFF/3DGS rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vision3d.core.camera import Cameras
from vision3d.errors import InputError
from vision3d.io.cameras import read_colmap, read_colmap_points, read_transforms
from vision3d.io.checks import require_dir
from vision3d.io.images import check_resolution, image_size, read_image

WHITE = (1.0, 1.0, 1.0)


@dataclass
class PosedViews:
    """Images ``(N,H,W,3)`` float32 in [0,1] with their cameras."""

    images: np.ndarray
    cameras: Cameras
    names: list[str]
    alpha: np.ndarray | None = None  # (N,H,W) coverage when the files are RGBA (images are composited)

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class PosedDataset:
    kind: str  # nerf-synthetic | transforms | colmap
    train: PosedViews
    test: PosedViews | None
    background: tuple[float, float, float] | None  # the colour RGBA images were composited over
    points: np.ndarray | None = None  # (M,3) initial points, when the format has them
    point_colors: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @property
    def scene_extent(self) -> float:
        """1.1 × the largest camera distance from the cameras' mean centre (3DGS' ``cameras_extent``)."""
        c = self.train.cameras.centers
        return float(1.1 * max(np.linalg.norm(c - c.mean(0), axis=1).max(), 1e-6))


def _load_images(paths: list[Path], size: tuple[int, int], background) -> tuple[np.ndarray, np.ndarray | None]:
    w, h = size
    out = np.empty((len(paths), h, w, 3), np.float32)
    alphas = []
    for i, p in enumerate(paths):
        img = read_image(p, background)
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        out[i] = img
        if background is not None:
            raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if raw is not None and raw.ndim == 3 and raw.shape[2] == 4:
                a = raw[..., 3].astype(np.float32) / (65535.0 if raw.dtype == np.uint16 else 255.0)
                alphas.append(cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA) if a.shape != (h, w) else a)
    return out, (np.stack(alphas) if len(alphas) == len(paths) and alphas else None)


def _views(cameras: Cameras, paths: list[Path], downscale: float, background) -> PosedViews:
    cams = cameras.scaled(1.0 / downscale) if downscale != 1 else cameras
    images, alpha = _load_images(paths, (cams.width, cams.height), background)
    return PosedViews(images, cams, [p.name for p in paths], alpha)


def _subset(cameras: Cameras, idx: list[int]) -> Cameras:
    return Cameras(cameras.K[idx], cameras.world_to_cam[idx], cameras.width, cameras.height,
                   [cameras.names[i] for i in idx] if cameras.names else [])


def _split(n: int, test_every: int) -> tuple[list[int], list[int]]:
    if n < 2 or test_every <= 0:
        return list(range(n)), []
    test = list(range(0, n, test_every))
    return [i for i in range(n) if i % test_every], test


def _existing(cameras: Cameras) -> tuple[Cameras, list[Path], int]:
    paths = [Path(n) for n in cameras.names]
    keep = [i for i, p in enumerate(paths) if p.is_file()]
    return _subset(cameras, keep), [paths[i] for i in keep], len(paths) - len(keep)


def _nerf_synthetic(root: Path, downscale: float, background) -> PosedDataset:
    bg = WHITE if background is None else background
    views, info = {}, {}
    for split in ("train", "test"):
        f = root / f"transforms_{split}.json"
        if not f.is_file():
            continue
        cams = read_transforms(f)
        cams, paths, missing = _existing(cams)
        info[f"{split}_listed"], info[f"{split}_missing"] = len(cams) + missing, missing
        if paths:
            check_resolution(cams.width, cams.height, paths[0])
            views[split] = _views(cams, paths, downscale, bg)
    if "train" not in views:
        raise InputError("transforms_train.json lists no image that exists", path=root,
                         fix="put the train/ images beside the JSON file")
    return PosedDataset("nerf-synthetic", views["train"], views.get("test"), bg, info=info)


def _transforms(file: Path, downscale: float, background, test_every: int) -> PosedDataset:
    cams, paths, missing = _existing(read_transforms(file))
    if not paths:
        raise InputError("transforms.json lists no image that exists", path=file,
                         fix="check the frames' file_path entries")
    tr, te = _split(len(paths), test_every)
    data = json.loads(file.read_text(encoding="utf-8"))
    points = colors = None
    ply = data.get("ply_file_path") if isinstance(data, dict) else None
    if ply and (file.parent / ply).is_file():
        import trimesh

        pc = trimesh.load(file.parent / ply)
        points = np.asarray(pc.vertices, np.float32)
        if getattr(pc, "colors", None) is not None and len(pc.colors):
            colors = np.asarray(pc.colors, np.float32)[:, :3] / 255.0
        # nerfstudio stores points in its (OpenGL-axes) world, the same world as the transforms: no change needed
    bg = background
    return PosedDataset("transforms", _views(_subset(cams, tr), [paths[i] for i in tr], downscale, bg),
                        _views(_subset(cams, te), [paths[i] for i in te], downscale, bg) if te else None, bg,
                        points, colors, {"listed": len(paths) + missing, "missing": missing})


def _colmap(root: Path, downscale: float, background, test_every: int) -> PosedDataset:
    model = next((d for d in (root / "sparse" / "0", root / "sparse", root) if (d / "cameras.txt").is_file()), None)
    if model is None:
        raise InputError("no COLMAP text model (cameras.txt) found", path=root,
                         fix="convert a binary model with 'colmap model_converter --output_type TXT'")
    image_dir = next((d for d in (root / "images", model / "images", root) if d.is_dir()), root)
    cams = read_colmap(model)
    paths = [image_dir / c.name for c in cams]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"{len(missing)} images named in images.txt are missing (first: {missing[0].name})",
                         path=image_dir, fix="put the images in an images/ folder beside sparse/")
    # COLMAP may record a different image size from the files (e.g. images_4): follow the files
    w, h = image_size(paths[0])
    batch = Cameras.stack(cams)
    if (w, h) != (batch.width, batch.height):
        batch = batch.scaled(w / batch.width)
    tr, te = _split(len(paths), test_every)
    pts, cols = read_colmap_points(model)
    return PosedDataset("colmap", _views(_subset(batch, tr), [paths[i] for i in tr], downscale, background),
                        _views(_subset(batch, te), [paths[i] for i in te], downscale, background) if te else None,
                        background, pts if len(pts) else None, cols if len(pts) else None,
                        {"listed": len(paths), "missing": 0})


def load_posed_dataset(path: str | Path, downscale: float = 1.0, background=None,
                       test_every: int = 8) -> PosedDataset:
    """Read a NeRF-synthetic folder, a nerfstudio ``transforms.json`` (file or folder) or a COLMAP folder."""
    if downscale <= 0:
        raise InputError(f"downscale {downscale} must be positive")
    p = Path(path)
    if p.is_file() and p.suffix == ".json":
        return _transforms(p, downscale, background, test_every)
    root = require_dir(p, "dataset folder")
    if (root / "transforms_train.json").is_file():
        return _nerf_synthetic(root, downscale, background)
    if (root / "transforms.json").is_file():
        return _transforms(root / "transforms.json", downscale, background, test_every)
    if any((d / "cameras.txt").is_file() for d in (root / "sparse" / "0", root / "sparse", root)):
        return _colmap(root, downscale, background, test_every)
    raise InputError("not a posed image dataset", path=root,
                     fix="give a NeRF-synthetic folder (transforms_train.json), a nerfstudio transforms.json "
                         "or a COLMAP folder (sparse/0/cameras.txt + images/)")
