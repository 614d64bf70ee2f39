"""LLFF ``poses_bounds.npy``: N×17 = camera-to-world 3×5 ``[R|t|hwf]`` (row-major) + near, far depth bounds.

LLFF rotation columns are (down, right, back); OpenCV camera axes are x = right = col1, y = down = col0,
z = forward = -col2. ``hwf`` is for the full-resolution images; the principal point is the image centre.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision3d.core.camera import Cameras, intrinsics
from vision3d.errors import InputError
from vision3d.io.atomic import atomic_path
from vision3d.io.checks import corrupt, require_file


def read_llff(path: str | Path, width: int | None = None, height: int | None = None,
              names: list[str] | None = None) -> tuple[Cameras, np.ndarray]:
    """Read ``poses_bounds.npy`` → ``(Cameras, bounds (N,2))``; give ``width``/``height`` of downsampled images.

    The focal length scales by ``width / W_full`` (e.g. 1/8 for ``images_8``); cx, cy = ((w-1)/2, (h-1)/2).
    """
    p = require_file(path, "LLFF poses_bounds.npy")
    try:
        a = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # pickles, bad headers, empty files
        raise corrupt(p, "LLFF poses_bounds.npy", str(e) or type(e).__name__) from None
    if a.ndim != 2 or a.shape[1] != 17 or len(a) == 0 or not np.isfinite(a).all():
        raise corrupt(p, "LLFF poses_bounds.npy", f"array of shape {a.shape}, expected (N, 17) finite numbers")
    poses = a[:, :15].reshape(-1, 3, 5)
    hwf = poses[:, :, 4]
    h_full, w_full = hwf[0, 0], hwf[0, 1]
    if not (np.allclose(hwf[:, 0], h_full) and np.allclose(hwf[:, 1], w_full)) or h_full <= 0 or w_full <= 0:
        raise corrupt(p, "LLFF poses_bounds.npy", "the images do not share one positive size (hwf column)")
    if width is None and height is None:
        sx = sy = 1.0
        w, h = round(w_full), round(h_full)
    else:
        sx = (width / w_full) if width else (height / h_full)
        sy = (height / h_full) if height else sx
        w, h = (width or round(w_full * sx)), (height or round(h_full * sy))
    K = np.stack([intrinsics(f * sx, f * sy, (w - 1) / 2, (h - 1) / 2) for f in hwf[:, 2]])
    c2w = np.tile(np.eye(4), (len(a), 1, 1))
    c2w[:, :3, 0] = poses[:, :, 1]  # right
    c2w[:, :3, 1] = poses[:, :, 0]  # down
    c2w[:, :3, 2] = -poses[:, :, 2]  # forward = -back
    c2w[:, :3, 3] = poses[:, :, 3]
    return Cameras.from_cam_to_world(K, c2w, w, h, names), a[:, 15:17].copy()


def write_llff(path: str | Path, cameras: Cameras, bounds: np.ndarray) -> Path:
    """Write ``Cameras`` and near/far ``bounds (N,2)`` as ``poses_bounds.npy`` (hwf at the cameras' size).

    LLFF has one focal length and a centred principal point, so fx must equal fy; cx, cy are not stored.
    """
    bounds = np.asarray(bounds, dtype=np.float64)
    if bounds.shape != (len(cameras), 2):
        raise InputError(f"bounds have shape {bounds.shape}, expected ({len(cameras)}, 2)")
    fx, fy = cameras.K[:, 0, 0], cameras.K[:, 1, 1]
    if not np.allclose(fx, fy, rtol=1e-6):
        raise InputError("LLFF stores one focal length, but fx != fy", fix="use COLMAP or transforms.json instead")
    c2w = cameras.cam_to_world
    poses = np.zeros((len(cameras), 3, 5))
    poses[:, :, 0] = c2w[:, :3, 1]  # down
    poses[:, :, 1] = c2w[:, :3, 0]  # right
    poses[:, :, 2] = -c2w[:, :3, 2]  # back
    poses[:, :, 3] = c2w[:, :3, 3]
    poses[:, :, 4] = np.stack([np.full_like(fx, cameras.height), np.full_like(fx, cameras.width), fx], 1)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.concatenate([poses.reshape(-1, 15), bounds], 1))
    return Path(path)
