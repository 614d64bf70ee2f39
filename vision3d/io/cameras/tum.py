"""TUM RGB-D trajectories: ``timestamp tx ty tz qx qy qz qw`` per line, camera-to-world, OpenCV camera axes.

The file holds no intrinsics; give ``K``, width and height to build ``Cameras``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision3d.core.camera import Cameras, quat_to_rotmat, rotmat_to_quat
from vision3d.errors import InputError
from vision3d.io.atomic import write_text
from vision3d.io.cameras.common import pose_matrices, read_number_rows, wxyz_to_xyzw, xyzw_to_wxyz


def read_tum_trajectory(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a TUM trajectory: ``(timestamps (N,), cam_to_world (N,4,4))``; ``#`` lines are comments."""
    rows = read_number_rows(path, 8, "TUM trajectory")
    return rows[:, 0], pose_matrices(quat_to_rotmat(xyzw_to_wxyz(rows[:, 4:8])), rows[:, 1:4])


def write_tum_trajectory(path: str | Path, poses: Cameras | np.ndarray, timestamps=None) -> Path:
    """Write camera-to-world poses (or ``Cameras``) as a TUM trajectory; timestamps default to 0, 1, 2, ..."""
    c2w = poses.cam_to_world if isinstance(poses, Cameras) else np.asarray(poses, dtype=np.float64)
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
        raise InputError(f"poses have shape {c2w.shape}, expected (N, 4, 4) camera-to-world")
    ts = np.arange(len(c2w), dtype=np.float64) if timestamps is None else np.asarray(timestamps, np.float64)
    if ts.shape != (len(c2w),):
        raise InputError(f"{ts.size} timestamps for {len(c2w)} poses")
    q = wxyz_to_xyzw(rotmat_to_quat(c2w[:, :3, :3]))
    table = np.concatenate([ts[:, None], c2w[:, :3, 3], q], 1)
    lines = ["# timestamp tx ty tz qx qy qz qw (camera-to-world)"]
    lines += [" ".join(f"{v:.17g}" for v in row) for row in table]
    return write_text(path, "\n".join(lines) + "\n")


def tum_cameras(cam_to_world: np.ndarray, K: np.ndarray, width: int, height: int,
                timestamps: np.ndarray | None = None) -> Cameras:
    """Cameras from TUM camera-to-world poses plus intrinsics; names are the timestamps (6 decimals)."""
    names = [f"{t:.6f}" for t in timestamps] if timestamps is not None else None
    return Cameras.from_cam_to_world(K, cam_to_world, width, height, names)


def read_tum_cameras(path: str | Path, K: np.ndarray, width: int, height: int) -> Cameras:
    """Read a TUM trajectory as ``Cameras`` with the given intrinsics (TUM fr1: 517.3, 516.5, 318.6, 255.3)."""
    ts, c2w = read_tum_trajectory(path)
    return tum_cameras(c2w, K, width, height, ts)

