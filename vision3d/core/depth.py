"""Depth maps with a declared kind: ``metric`` (z in metres), ``relative`` (affine-invariant), ``inverse``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision3d.errors import InputError

DEPTH_KINDS = ("metric", "relative", "inverse")


@dataclass
class DepthMap:
    """Float32 ``(H,W)`` depth. Missing pixels are NaN (0, NaN and ±inf in files all mean 'missing')."""

    depth: np.ndarray
    kind: str = "metric"
    scale: float = 1.0  # metres per unit for 'metric'; informative for the other kinds

    def __post_init__(self) -> None:
        if self.kind not in DEPTH_KINDS:
            raise InputError(f"unknown depth kind {self.kind!r}", fix=f"use one of {', '.join(DEPTH_KINDS)}")
        d = np.asarray(self.depth, dtype=np.float32)
        if d.ndim == 3 and d.shape[-1] == 1:
            d = d[..., 0]
        if d.ndim != 2:
            raise InputError(f"depth has shape {d.shape}, expected (H, W)")
        d = np.where(np.isfinite(d), d, np.nan).astype(np.float32)
        if self.kind in ("metric", "inverse"):
            d[d <= 0] = np.nan
        self.depth = d

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.depth)

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth.shape

    def require_valid(self, what: str = "depth", path=None) -> DepthMap:
        """Raise a clear error if no pixel holds a usable value."""
        if not self.valid.any():
            raise InputError(f"{what} has no finite positive value", path=path,
                             fix="check the file's encoding/scale (0, NaN and inf mean missing)")
        return self

    def to_metric(self, scale: float = 1.0, shift: float = 0.0) -> DepthMap:
        """Metric depth; relative/inverse maps need the alignment (``scale``, ``shift``) from the caller."""
        if self.kind == "metric":
            return DepthMap(self.depth * scale + shift, "metric")
        if self.kind == "relative":
            return DepthMap(self.depth * scale + shift, "metric")
        with np.errstate(divide="ignore"):
            return DepthMap(1.0 / (self.depth * scale + shift), "metric")
