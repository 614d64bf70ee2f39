"""Whole sequences: per-frame image/depth/layer ids/moving mask and per-pair forward/backward flow + occlusion.

``iter_sequence`` streams (two frames in memory at a time) for long sequences; ``render_sequence`` collects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vision3d.core.camera import Cameras
from vision3d.core.depth import DepthMap
from vision3d.core.flow import FlowField
from vision3d.errors import InputError
from vision3d.synth.render import RenderedFrame, flow_between, render_frame
from vision3d.synth.scene import SceneSpec


@dataclass
class PairGT:
    """Ground truth between frames t and t+1: flows ``(2,H,W)`` float32, occlusion masks ``(H,W)`` bool."""

    flow_fw: np.ndarray
    flow_bw: np.ndarray | None
    occ_fw: np.ndarray
    occ_bw: np.ndarray | None


def iter_sequence(scene: SceneSpec, backward: bool = True) -> Iterator[tuple[RenderedFrame, PairGT | None]]:
    """Yield ``(frame_t, pair)`` for t = 0..T-1, where ``pair`` relates frames t-1 and t (None for t = 0).

    ``backward=False`` skips the t → t-1 flow and occlusion (about a third faster).
    """
    prev = None
    for t in range(scene.n_frames):
        cur = render_frame(scene, t)
        pair = None
        if prev is not None:
            fw, occ_fw = flow_between(prev, cur)
            bw, occ_bw = flow_between(cur, prev) if backward else (None, None)
            pair = PairGT(fw, bw, occ_fw, occ_bw)
        yield cur, pair
        prev = cur


@dataclass
class SynthSequence:
    """A rendered clip with exact ground truth (T frames, T-1 pairs).

    ``images`` (T,H,W,3) float32 [0,1]; ``depth`` (T,H,W) float32 metric z; ``layer_id`` (T,H,W) int16;
    ``moving_mask`` (T,H,W) bool; ``flow_fw``/``flow_bw`` (T-1,2,H,W) float32 (t→t+1 / t+1→t);
    ``occ_fw``/``occ_bw`` (T-1,H,W) bool, True where the pixel is not visible in the other frame.
    """

    images: np.ndarray
    depth: np.ndarray
    layer_id: np.ndarray
    moving_mask: np.ndarray
    flow_fw: np.ndarray
    flow_bw: np.ndarray
    occ_fw: np.ndarray
    occ_bw: np.ndarray
    cameras: Cameras
    scene: SceneSpec | None = None

    def __post_init__(self) -> None:
        t, h, w = self.images.shape[:3]
        if self.images.shape != (t, h, w, 3) or len(self.cameras) != t:
            raise InputError(f"sequence images {self.images.shape} / {len(self.cameras)} cameras are inconsistent")
        for name in ("depth", "layer_id", "moving_mask"):
            if getattr(self, name).shape != (t, h, w):
                raise InputError(f"sequence {name} has shape {getattr(self, name).shape}, expected {(t, h, w)}")
        for name in ("flow_fw", "flow_bw"):
            if getattr(self, name).shape != (max(t - 1, 0), 2, h, w):
                raise InputError(f"sequence {name} has shape {getattr(self, name).shape}")
        for name in ("occ_fw", "occ_bw"):
            if getattr(self, name).shape != (max(t - 1, 0), h, w):
                raise InputError(f"sequence {name} has shape {getattr(self, name).shape}")

    @property
    def n_frames(self) -> int:
        return len(self.images)

    @property
    def height(self) -> int:
        return self.images.shape[1]

    @property
    def width(self) -> int:
        return self.images.shape[2]

    def flow_field(self, i: int, backward: bool = False) -> FlowField:
        """Pair ``i`` as a ``FlowField`` whose ``valid`` mask is the non-occluded pixels."""
        if backward:
            return FlowField(self.flow_bw[i], ~self.occ_bw[i])
        return FlowField(self.flow_fw[i], ~self.occ_fw[i])

    def depth_map(self, i: int) -> DepthMap:
        return DepthMap(self.depth[i], "metric")


def render_sequence(scene: SceneSpec, backward: bool = True) -> SynthSequence:
    """Render every frame of ``scene`` with forward (and backward) flow and occlusion between neighbours."""
    t, h, w = scene.n_frames, scene.height, scene.width
    images = np.empty((t, h, w, 3), np.float32)
    depth = np.empty((t, h, w), np.float32)
    lid = np.empty((t, h, w), np.int16)
    moving = np.empty((t, h, w), bool)
    fw = np.empty((max(t - 1, 0), 2, h, w), np.float32)
    bw = np.full_like(fw, np.nan)
    occ_fw = np.empty((max(t - 1, 0), h, w), bool)
    occ_bw = np.ones_like(occ_fw)
    for i, (frame, pair) in enumerate(iter_sequence(scene, backward)):
        images[i], depth[i], lid[i], moving[i] = frame.image, frame.depth, frame.layer_id, frame.moving_mask
        if pair is not None:
            fw[i - 1], occ_fw[i - 1] = pair.flow_fw, pair.occ_fw
            if backward:
                bw[i - 1], occ_bw[i - 1] = pair.flow_bw, pair.occ_bw
    return SynthSequence(images, depth, lid, moving, fw, bw, occ_fw, occ_bw, scene.cameras, scene)
