"""Typed containers shared by every stage: cameras, Gaussians, flow, depth, frames."""

from vision3d.core.camera import Camera, Cameras, intrinsics, invert_pose, look_at
from vision3d.core.depth import DepthMap
from vision3d.core.flow import FlowField
from vision3d.core.gaussians import Gaussians

__all__ = ["Camera", "Cameras", "DepthMap", "FlowField", "Gaussians", "intrinsics", "invert_pose", "look_at"]
