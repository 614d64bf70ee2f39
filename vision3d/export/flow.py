"""Flow models for export: a two-image wrapper, real parity frames with ground truth, and EPE as the metric.

Parity frames: Middlebury RubberWhale ``frame10``/``frame11`` with ``flow10.flo`` from the shared data folder
(``$VISION3D_DATA`` or ``<repo>/../shared/data``); without it, frames 0/1 of the shipped sample clip
``assets/samples/synth_clip/clip.mp4`` with its exact ground truth. Frames are resized to the export size and
the predicted flow is resized back to the ground truth's size (each component scaled by its axis' ratio)
before EPE is computed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vision3d.errors import InputError

REPO = Path(__file__).resolve().parents[2]
MIDDLEBURY_FRAMES = ("middlebury_flow/other-data/RubberWhale/frame10.png",
                     "middlebury_flow/other-data/RubberWhale/frame11.png")
MIDDLEBURY_GT = "middlebury_flow/other-gt-flow/RubberWhale/flow10.flo"
SAMPLE_CLIP = REPO / "assets" / "samples" / "synth_clip" / "clip.mp4"
SAMPLE_GT = REPO / "assets" / "samples" / "synth_clip" / "gt.npz"


class FlowExportWrapper(nn.Module):
    """``(image1, image2)`` each ``(1,3,H,W)`` in [0,1] → flow ``(1,2,H,W)`` in pixels, for a flow model whose
    ``forward(frames (B,2,3,H,W))`` returns ``(B,1,2,H,W)`` in eval mode."""

    input_names = ("image1", "image2")
    output_names = ("flow",)

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()
        self.name = getattr(model, "name", type(model).__name__)
        self.stride = int(getattr(model, "stride", 1))

    def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        return self.model(torch.stack([image1, image2], dim=1))[:, 0]


def data_dir() -> Path:
    """The shared data folder: ``$VISION3D_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("VISION3D_DATA") or REPO.parent / "shared" / "data")


@dataclass
class FlowParityCase:
    """Two frames at the export size and the ground truth at its own size."""

    image1: torch.Tensor          # (1,3,H,W) in [0,1]
    image2: torch.Tensor
    gt: np.ndarray                # (2,H0,W0)
    valid: np.ndarray | None      # (H0,W0) bool or None
    source: str

    @property
    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image1, self.image2

    def metric(self, outputs: list[tuple]) -> dict[str, float]:
        """EPE etc. (``vision3d.flow.metrics.flow_metrics``) of the first output, resized to the GT's size."""
        from vision3d.flow.metrics import flow_metrics

        flow = outputs[0][0].detach().float().cpu().numpy()
        flow = flow[0] if flow.ndim == 4 else flow
        m = flow_metrics(resize_flow(flow, self.gt.shape[1:]), self.gt, self.valid)
        return {k: m[k] for k in ("epe", "px1", "px3", "flall")}


def resize_image(img: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if height < h and width < w else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``flow (2,h,w)`` to ``size (H,W)`` bilinearly and scale u by W/w, v by H/h."""
    import cv2

    H, W = int(size[0]), int(size[1])
    h, w = flow.shape[1:]
    if (h, w) == (H, W):
        return flow.astype(np.float32)
    out = np.stack([cv2.resize(flow[i].astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR) for i in (0, 1)])
    out[0] *= W / w
    out[1] *= H / h
    return out


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))[None]


def flow_parity_case(height: int, width: int, data: str | Path | None = None) -> FlowParityCase:
    """RubberWhale frames 10/11 + GT if the data folder has them, else the shipped sample clip's frames 0/1."""
    root = Path(data) if data is not None else data_dir()
    frames = [root / f for f in MIDDLEBURY_FRAMES]
    gt_path = root / MIDDLEBURY_GT
    if all(f.is_file() for f in frames) and gt_path.is_file():
        from vision3d.io.flow import read_flow
        from vision3d.io.images import read_image

        imgs = [read_image(f) for f in frames]
        gt = read_flow(gt_path)
        source = f"Middlebury RubberWhale frame10/11 ({gt_path})"
        flow, valid = gt.flow, gt.valid
    else:
        from vision3d.io.images import to_float_rgb
        from vision3d.io.video import iter_video
        from vision3d.synth.sample import load_sample_gt

        if not SAMPLE_CLIP.is_file():
            raise InputError("no parity frames: neither the shared data folder nor the sample clip is here",
                             path=SAMPLE_CLIP, fix="set VISION3D_DATA to the shared data folder")
        imgs = [to_float_rgb(f) for _, f in iter_video(SAMPLE_CLIP, 0, 2)]
        flow, valid = load_sample_gt(SAMPLE_GT)["flow_fw"][0], None
        source = f"sample clip frames 0/1 ({SAMPLE_CLIP.relative_to(REPO)}; {root} not found)"
    im1, im2 = (_to_tensor(resize_image(i, height, width)) for i in imgs[:2])
    return FlowParityCase(im1, im2, np.asarray(flow, np.float32), valid, source)
