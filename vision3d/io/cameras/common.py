"""Helpers shared by the camera formats: numeric text tables, camera lists, pixel-centre conventions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision3d.core.camera import Camera, Cameras
from vision3d.errors import InputError
from vision3d.io.checks import corrupt, require_file

# COLMAP and nerfstudio put pixel centres at +0.5 (cx ≈ W/2); vision3d/OpenCV at integers (cx ≈ (W-1)/2).
HALF_PIXEL = 0.5


def read_number_rows(path: str | Path, ncols: int, what: str) -> np.ndarray:
    """Rows of ``ncols`` numbers from a text file, skipping blank and ``#`` lines; bad lines name their number."""
    p = require_file(path, what)
    rows = []
    for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.replace(",", " ").split()
        try:
            values = [float(x) for x in parts]
        except ValueError:
            values = []
        if len(values) != ncols:
            raise corrupt(p, what, f"line {i} is {s[:60]!r}, expected {ncols} numbers")
        rows.append(values)
    if not rows:
        raise corrupt(p, what, "it holds no poses")
    a = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(a).all():
        raise corrupt(p, what, "it contains NaN or inf")
    return a


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    """Quaternions stored ``qx qy qz qw`` (TUM, TartanAir) → the ``wxyz`` order core.camera uses."""
    return np.asarray(q)[..., [3, 0, 1, 2]]


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    """Quaternions ``wxyz`` → ``qx qy qz qw`` file order."""
    return np.asarray(q)[..., [1, 2, 3, 0]]


def pose_matrices(rotations: np.ndarray, translations: np.ndarray) -> np.ndarray:
    """Stack ``(N,3,3)`` rotations and ``(N,3)`` translations into ``(N,4,4)`` rigid transforms."""
    n = len(rotations)
    m = np.tile(np.eye(4), (n, 1, 1))
    m[:, :3, :3] = rotations
    m[:, :3, 3] = translations
    return m


def as_camera_list(cameras: Cameras | Camera | list[Camera]) -> list[Camera]:
    """Any of ``Cameras``, one ``Camera`` or a list of them → a list of ``Camera``."""
    if isinstance(cameras, Camera):
        return [cameras]
    cams = list(cameras)
    if not cams:
        raise InputError("no cameras to write")
    return cams


def require_no_skew(cams: list[Camera], fmt: str) -> None:
    """Formats without a skew term cannot store ``K[0,1] != 0``; refuse rather than drop it silently."""
    if any(abs(c.K[0, 1]) > 1e-9 * abs(c.K[0, 0]) for c in cams):
        raise InputError(f"{fmt} cannot store a skewed intrinsics matrix (K[0,1] != 0)",
                         fix="set the skew to 0 or use another format")
