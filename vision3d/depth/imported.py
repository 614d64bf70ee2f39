"""The ``import`` method: depth maps made by any other tool, read from a folder with a declared kind and scale."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vision3d.core.depth import DEPTH_KINDS
from vision3d.errors import InputError
from vision3d.io.checks import require_dir
from vision3d.io.depth import read_depth
from vision3d.io.images import natural_key

IMPORT_SUFFIXES = (".npy", ".png", ".pfm", ".exr")


PLAUSIBLE_METRIC = (1e-3, 1e3)  # metres: a median outside this means the scale is wrong (mm read as m…)


class ImportedDepth:
    """Frame ``t`` ↔ the ``t``-th depth file (natural order) in ``folder``; resized to the frame if needed.

    ``kind`` says what the files hold (metric / relative / inverse); ``scale`` divides stored values (png16
    from NYU-style tools: 1000, KITTI: 256; vision3d's own pngs record their scale).
    """

    def __init__(self, folder: str | Path, kind: str = "metric", scale: float | None = None):
        if kind not in DEPTH_KINDS:
            raise InputError(f"unknown depth kind {kind!r}", fix=f"declare one of {', '.join(DEPTH_KINDS)}")
        if scale is not None and not (np.isfinite(scale) and scale > 0):
            raise InputError(f"depth scale {scale} must be a positive number")
        root = require_dir(folder, "depth folder")
        self.files = sorted((p for p in root.iterdir() if p.suffix.lower() in IMPORT_SUFFIXES
                             and not p.name.startswith(".")), key=natural_key)
        if not self.files:
            raise InputError("folder holds no depth maps (.npy, .png, .pfm)", path=root)
        self.kind, self.scale = kind, scale

    def __len__(self) -> int:
        return len(self.files)

    def __call__(self, t: int, size: tuple[int, int]) -> np.ndarray:
        if t >= len(self.files):
            raise InputError(f"the video has more frames than the {len(self.files)} imported depth maps",
                             path=self.files[0].parent, fix="give one depth map per frame")
        d = read_depth(self.files[t], self.kind, self.scale).require_valid("imported depth", self.files[t]).depth
        if self.kind == "metric":
            med = float(np.nanmedian(np.where(d > 0, d, np.nan)))
            if not PLAUSIBLE_METRIC[0] <= med <= PLAUSIBLE_METRIC[1]:
                raise InputError(f"imported metric depth has a median of {med:g} m, which is not plausible",
                                 path=self.files[t], fix="check the declared scale (stored value per metre: NYU "
                                 "1000, KITTI 256, TUM 5000) or declare --kind relative")
        w, h = size
        if d.shape != (h, w):  # nearest keeps depth edges sharp and missing pixels missing
            d = cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST)
        return d
