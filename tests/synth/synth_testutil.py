"""Helpers shared by the synthetic-engine tests: hand-built scenes and warping."""

from __future__ import annotations

import cv2
import numpy as np

from vision3d.core.camera import intrinsics, invert_pose
from vision3d.synth import LayerSpec, RigidMotion, SceneSpec


def backward_warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``img`` (H,W[,C]) at ``(x+u, y+v)``: bilinear, pixel centres at integers (OpenCV remap)."""
    h, w = flow.shape[1:]
    mx = np.arange(w, dtype=np.float32)[None, :] + flow[0]
    my = np.arange(h, dtype=np.float32)[:, None] + flow[1]
    return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def boundary_band(layer_id: np.ndarray, radius: int = 2) -> np.ndarray:
    """Pixels within ``radius`` of a layer-id change."""
    lid = layer_id.astype(np.int32)
    edge = np.zeros(lid.shape, bool)
    edge[:, 1:] |= lid[:, 1:] != lid[:, :-1]
    edge[:, :-1] |= lid[:, 1:] != lid[:, :-1]
    edge[1:] |= lid[1:] != lid[:-1]
    edge[:-1] |= lid[1:] != lid[:-1]
    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(edge.astype(np.uint8), k) > 0


def fronto_plane(depth: float, half: float, texture: np.ndarray, mask=None, velocity=(0.0, 0.0, 0.0),
                 bounded: bool = True, name: str = "") -> LayerSpec:
    """A fronto-parallel patch centred on the optical axis at ``depth`` (local axes = world x, y)."""
    pose = np.eye(4)
    pose[2, 3] = depth
    motion = RigidMotion(pose, velocity=np.asarray(velocity, float))
    return LayerSpec(motion, (half, half), texture, mask, bounded=bounded, name=name,
                     kind="foreground" if bounded else "background")


def hand_scene(layers, n_frames: int = 2, size: int = 64, focal: float = 100.0, cam_velocity=(0.0, 0.0, 0.0),
               precision: str = "float32") -> SceneSpec:
    """A scene with a fixed pinhole camera at the origin (optionally translating at ``cam_velocity``/frame)."""
    K = intrinsics(focal, focal, (size - 1) / 2, (size - 1) / 2)
    motion = RigidMotion(np.eye(4), velocity=np.asarray(cam_velocity, float))
    w2c = invert_pose(motion.poses(n_frames))
    return SceneSpec(list(layers), K, size, size, w2c, camera_motion=motion, precision=precision)


def random_texture(seed: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)
