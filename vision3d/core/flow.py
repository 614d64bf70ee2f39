"""Optical flow fields: ``(2,H,W)`` float32 pixel displacement, x first, with an optional validity mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision3d.errors import InputError


@dataclass
class FlowField:
    """Flow from frame t to t+1: pixel ``(x,y)`` of frame t moves to ``(x+u, y+v)``.

    ``valid`` is an optional ``(H,W)`` bool mask (sparse ground truth such as KITTI, or occlusion-free pixels).
    """

    flow: np.ndarray
    valid: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.flow = np.asarray(self.flow, dtype=np.float32)
        if self.flow.ndim != 3 or self.flow.shape[0] != 2:
            raise InputError(f"flow has shape {self.flow.shape}, expected (2, H, W)")
        if self.valid is not None:
            self.valid = np.asarray(self.valid, dtype=bool)
            if self.valid.shape != self.flow.shape[1:]:
                raise InputError(f"flow valid mask {self.valid.shape} does not match flow {self.flow.shape[1:]}")

    @property
    def height(self) -> int:
        return self.flow.shape[1]

    @property
    def width(self) -> int:
        return self.flow.shape[2]

    @property
    def u(self) -> np.ndarray:
        return self.flow[0]

    @property
    def v(self) -> np.ndarray:
        return self.flow[1]

    def magnitude(self) -> np.ndarray:
        return np.hypot(self.flow[0], self.flow[1])

    def valid_mask(self) -> np.ndarray:
        """Pixels with finite flow that the mask (if any) marks valid."""
        ok = np.isfinite(self.flow).all(0)
        return ok if self.valid is None else ok & self.valid

    @classmethod
    def from_hw2(cls, flow_hw2: np.ndarray, valid=None) -> FlowField:
        """From the ``(H,W,2)`` layout OpenCV and the .flo format use."""
        return cls(np.moveaxis(np.asarray(flow_hw2), -1, 0), valid)

    def to_hw2(self) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(self.flow, 0, -1))
