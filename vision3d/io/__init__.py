"""File formats in and out: flow, depth, splats and point clouds, meshes, cameras, checkpoints; writes are atomic."""

from vision3d.io.cameras import (
    read_colmap,
    read_colmap_cameras,
    read_llff,
    read_tartanair_poses,
    read_transforms,
    read_tum_cameras,
    read_tum_trajectory,
    write_colmap,
    write_llff,
    write_transforms,
    write_tum_trajectory,
)
from vision3d.io.checkpoint import load_checkpoint, save_checkpoint
from vision3d.io.depth import read_depth, read_pfm, write_depth, write_pfm
from vision3d.io.flow import read_flow, write_flow
from vision3d.io.mesh import read_mesh, write_mesh
from vision3d.io.ply import read_point_cloud, write_point_cloud
from vision3d.io.splats import read_splats, write_splats

__all__ = [
    "load_checkpoint", "read_colmap", "read_colmap_cameras", "read_depth", "read_flow", "read_llff", "read_mesh",
    "read_pfm", "read_point_cloud", "read_splats", "read_tartanair_poses", "read_transforms", "read_tum_cameras",
    "read_tum_trajectory", "save_checkpoint", "write_colmap", "write_depth", "write_flow", "write_llff",
    "write_mesh", "write_pfm", "write_point_cloud", "write_splats", "write_transforms", "write_tum_trajectory",
]
