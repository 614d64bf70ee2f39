"""Running the learned depth models on frames: checkpoints, processing resolution, temporal windows.

Images are resized so the long side is the model's ``process_size`` (rounded to its stride), predicted, and
the inverse depth resized back to the frame — the usual practice of MiDaS/Depth Anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision3d.errors import InputError

STRIDE = 8


def model_class(name: str):
    if name == "futuredepth":
        from vision3d.depth.models.futuredepth import FutureDepth

        return FutureDepth
    if name == "primedepth":
        from vision3d.depth.models.primedepth import PrimeDepth

        return PrimeDepth
    raise InputError(f"unknown learned depth model {name!r}", fix="use futuredepth or primedepth")


def load_depth_model(name: str, checkpoint: str | Path | None = None, device="cpu"):
    """Build ``name`` from its checkpoint (the shipped one by default), in eval mode."""
    from vision3d.io.checkpoint import build_from_checkpoint

    return build_from_checkpoint(name, model_class(name), checkpoint, "scripts/train_depth.py").to(device).eval()


def process_size(h: int, w: int, long_side: int) -> tuple[int, int]:
    s = long_side / max(h, w)
    return max(STRIDE, round(h * s / STRIDE) * STRIDE), max(STRIDE, round(w * s / STRIDE) * STRIDE)


def to_batch(frames: list[np.ndarray], size: tuple[int, int], device):
    """Frames ``(H,W,3)`` float → ``(T,3,h,w)`` tensor at the processing size."""
    import cv2
    import torch

    from vision3d.io.images import to_float_rgb

    h, w = size
    arr = np.stack([cv2.resize(to_float_rgb(f), (w, h), interpolation=cv2.INTER_AREA) for f in frames])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().to(device)


def resize_back(pred, shape: tuple[int, int]) -> np.ndarray:
    import torch.nn.functional as F

    return F.interpolate(pred[:, None], size=shape, mode="bilinear", align_corners=False)[:, 0].cpu().numpy()


class LearnedDepth:
    """Per-frame inverse depth from a learned model; video models see a window ending at each frame."""

    def __init__(self, name: str, checkpoint=None, device="cpu"):
        import torch

        self.name = name
        self.device = torch.device(device)
        self.model = load_depth_model(name, checkpoint, self.device)
        self.window = getattr(self.model, "frames_per_clip", 1)
        self.long_side = self.model.cfg.process_size
        self.kind = self.model.depth_kind

    def __call__(self, window: list[np.ndarray]) -> np.ndarray:
        """Depth of the last frame of ``window`` (shorter windows are padded by repeating the first frame)."""
        import torch

        frames = [window[0]] * (self.window - len(window)) + list(window[-self.window:])
        h, w = frames[-1].shape[:2]
        x = to_batch(frames, process_size(h, w, self.long_side), self.device)
        with torch.no_grad():
            pred = self.model(x[None]) if self.window > 1 else self.model(x[-1:])
        return resize_back(pred, (h, w))[0].astype(np.float32)
