"""Camera file formats → ``vision3d.core.camera.Cameras`` (OpenCV axes, world-to-camera).

TUM trajectories, COLMAP text models, nerfstudio/NeRF-synthetic ``transforms.json``, LLFF ``poses_bounds.npy``
and TartanAir ``pose_left.txt``.
"""

from vision3d.io.cameras.colmap import (
    ColmapCamera,
    read_colmap,
    read_colmap_cameras,
    read_colmap_images,
    read_colmap_intrinsics,
    read_colmap_points,
    write_colmap,
)
from vision3d.io.cameras.llff import read_llff, write_llff
from vision3d.io.cameras.nerfstudio import read_transforms, resolve_image_path, write_transforms
from vision3d.io.cameras.tartanair import TARTANAIR_K, TARTANAIR_SIZE, read_tartanair_poses, write_tartanair_poses
from vision3d.io.cameras.tum import (
    read_tum_cameras,
    read_tum_trajectory,
    tum_cameras,
    write_tum_trajectory,
)

__all__ = [
    "TARTANAIR_K", "TARTANAIR_SIZE", "ColmapCamera", "read_colmap", "read_colmap_cameras", "read_colmap_images",
    "read_colmap_intrinsics", "read_colmap_points", "read_llff", "read_tartanair_poses", "read_transforms", "read_tum_cameras",
    "read_tum_trajectory", "resolve_image_path", "tum_cameras", "write_colmap", "write_llff",
    "write_tartanair_poses", "write_transforms", "write_tum_trajectory",
]
