"""TartanAir ``pose_left.txt``: ``tx ty tz qx qy qz qw`` camera-to-world in NED body axes (x fwd, y right, z down).

OpenCV camera axes map to body axes as x_cv = y_ned, y_cv = z_ned, z_cv = x_ned; the world frame stays NED.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision3d.core.camera import Cameras, intrinsics, quat_to_rotmat, rotmat_to_quat
from vision3d.io.atomic import write_text
from vision3d.io.cameras.common import pose_matrices, read_number_rows, wxyz_to_xyzw, xyzw_to_wxyz

TARTANAIR_K = intrinsics(320.0, 320.0, 320.0, 240.0)  # as published; cx, cy = W/2, H/2
TARTANAIR_SIZE = (640, 480)
# Columns: the OpenCV camera axes written in NED body axes (p_body = CV_TO_NED @ p_cam).
CV_TO_NED = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def read_tartanair_poses(path: str | Path, names: list[str] | None = None) -> Cameras:
    """Read TartanAir poses as OpenCV ``Cameras`` with the standard 640×480, f=320 intrinsics."""
    rows = read_number_rows(path, 7, "TartanAir pose file")
    r_body = quat_to_rotmat(xyzw_to_wxyz(rows[:, 3:7]))
    c2w = pose_matrices(r_body @ CV_TO_NED, rows[:, :3])
    return Cameras.from_cam_to_world(TARTANAIR_K, c2w, *TARTANAIR_SIZE, names)


def write_tartanair_poses(path: str | Path, cameras: Cameras) -> Path:
    """Write ``Cameras`` as a TartanAir pose file (NED body axes; intrinsics are not stored)."""
    c2w = cameras.cam_to_world
    q = wxyz_to_xyzw(rotmat_to_quat(c2w[:, :3, :3] @ CV_TO_NED.T))
    table = np.concatenate([c2w[:, :3, 3], q], 1)
    return write_text(path, "\n".join(" ".join(f"{v:.17g}" for v in row) for row in table) + "\n")
