"""Running learned flow models on images: checkpoint loading, padding to the network stride, batching.

Every learned flow model takes ``frames (B,T,3,H,W)`` in [0,1] and returns ``(B,T-1,2,H,W)`` in eval mode;
it declares ``name``, ``frames_per_clip`` (T) and ``stride`` (H and W must be multiples of it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision3d.errors import InputError

REPO = Path(__file__).resolve().parents[2]
from vision3d.io.checkpoint import SHIPPED_CHECKPOINTS as CHECKPOINT_DIR  # noqa: E402
from vision3d.io.checkpoint import default_checkpoint  # noqa: E402,F401


def model_class(name: str):
    """The ``nn.Module`` class of a learned flow model by registry name."""
    if name == "compactflownet":
        from vision3d.flow.models.compactflownet import CompactFlowNet

        return CompactFlowNet
    if name == "streamflow":
        from vision3d.flow.models.streamflow import StreamFlow

        return StreamFlow
    raise InputError(f"unknown learned flow model {name!r}", fix="use compactflownet or streamflow")




def load_flow_model(name: str, checkpoint: str | Path | None = None, device="cpu"):
    """Build ``name`` from its checkpoint (the shipped one by default) in eval mode on ``device``."""
    from vision3d.io.checkpoint import build_from_checkpoint

    return build_from_checkpoint(name, model_class(name), checkpoint, "scripts/train_flow.py").to(device).eval()


def pad_to_multiple(x, stride: int):
    """Replicate-pad the last two dims of ``x`` up to multiples of ``stride``; returns (padded, (h, w))."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        lead = x.shape[:-3]
        x = F.pad(x.reshape(-1, *x.shape[-3:]), (0, pw, 0, ph), mode="replicate").reshape(*lead, x.shape[-3],
                                                                                            h + ph, w + pw)
    return x, (h, w)


class LearnedFlow:
    """Callable wrapper: numpy frames in, numpy flows out; pads to the stride and crops back."""

    def __init__(self, model, device="cpu"):
        self.model = model
        self.device = device
        self.frames_per_clip = int(model.frames_per_clip)
        self.stride = int(model.stride)

    def clip(self, frames: list[np.ndarray]) -> np.ndarray:
        """Flows ``(T-1,2,H,W)`` for consecutive pairs of ``frames`` (T = ``frames_per_clip``)."""
        import torch

        if len(frames) != self.frames_per_clip:
            raise ValueError(f"{self.model.name} takes {self.frames_per_clip} frames, got {len(frames)}")
        x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[None].float().to(self.device)
        x, (h, w) = pad_to_multiple(x, self.stride)
        with torch.inference_mode():
            out = self.model(x)
        return out[0, :, :, :h, :w].float().cpu().numpy()

    def __call__(self, img0: np.ndarray, img1: np.ndarray) -> np.ndarray:
        """One pair; multi-frame models see the pair padded to T frames by repeating the last frame."""
        frames = [img0, img1] + [img1] * (self.frames_per_clip - 2)
        return self.clip(frames)[0]
