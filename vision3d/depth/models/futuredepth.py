"""FutureDepth (ECCV'24), small: video depth with future prediction and reconstruction as training signals.

- **Encoder**: a light CNN applied to each of the ``T`` frames of a window → 1/4 skips and 1/8 tokens; the
  stack over time is the multi-frame feature volume.
- **F-Net**: from the volume of frames ``1..T−1`` predicts the features of frame ``T`` (the next step);
  trained with an L2 loss against the encoder's actual features (no gradient into the target). Its hidden
  state is a motion-aware summary of the past.
- **R-Net**: adaptively masked auto-encoding of the volume: tokens are masked with probability growing with
  their temporal change (moving content is masked more), replaced by a learned token, and a small
  transformer reconstructs them (L2 on masked tokens). At inference nothing is masked.
- **Depth decoder**: F-Net and R-Net features of the current (last) frame become queries that cross-attend
  into the current frame's tokens; a convolutional decoder with the 1/4 skip and a **refinement network**
  (image + coarse depth → residual) give affine-invariant inverse depth.
Output kind ``inverse``; trained with the scale-and-shift-invariant loss on synthetic 3D video.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vision3d.depth.models.common import ResBlock


@dataclass
class FutureDepthConfig:
    frames: int = 4
    width: int = 32  # encoder width at 1/2; 2× at 1/4, 3× tokens at 1/8
    heads: int = 4
    layers: int = 2
    mask_ratio: float = 0.4
    process_size: int = 160

    @classmethod
    def small(cls) -> FutureDepthConfig:
        return cls()


class Encoder(nn.Module):
    def __init__(self, w: int):
        super().__init__()
        self.s2 = nn.Sequential(nn.Conv2d(3, w, 3, stride=2, padding=1), nn.SiLU(), ResBlock(w, w))
        self.s4 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU(), ResBlock(2 * w, 2 * w))
        self.s8 = nn.Sequential(nn.Conv2d(2 * w, 3 * w, 3, stride=2, padding=1), nn.SiLU(), ResBlock(3 * w, 3 * w),
                                ResBlock(3 * w, 3 * w))

    def forward(self, x):
        a = self.s2(x)
        b = self.s4(a)
        return b, self.s8(b)


class FNet(nn.Module):
    """Past features (T−1 frames, stacked on channels) → predicted next-frame features + hidden summary."""

    def __init__(self, c: int, past: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c * past, 2 * c, 3, padding=1), nn.SiLU(), ResBlock(2 * c, 2 * c),
                                  ResBlock(2 * c, c))
        self.head = nn.Conv2d(c, c, 1)

    def forward(self, past: torch.Tensor):  # (B,T-1,C,h,w)
        h = self.body(past.flatten(1, 2))
        return self.head(h), h


class RNet(nn.Module):
    """Masked auto-encoder over the (T·h·w) tokens of the multi-frame volume."""

    def __init__(self, c: int, frames: int, heads: int, layers: int):
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(c))
        self.time = nn.Parameter(torch.zeros(frames, c))
        self.pos = nn.Conv2d(c, c, 3, padding=1, groups=c)  # conditional positional encoding (depthwise conv)
        layer = nn.TransformerEncoderLayer(c, heads, 2 * c, dropout=0.0, batch_first=True, norm_first=True)
        self.tf = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(c, c)

    def forward(self, vol: torch.Tensor, mask: torch.Tensor | None):  # vol (B,T,C,h,w), mask (B,T,h,w)
        b, t, c, h, w = vol.shape
        x = vol
        if mask is not None:
            x = torch.where(mask[:, :, None], self.mask_token[None, None, :, None, None].expand_as(vol), vol)
        x = x + self.pos(x.flatten(0, 1)).reshape(b, t, c, h, w) + self.time[None, :t, :, None, None]
        tokens = x.permute(0, 1, 3, 4, 2).reshape(b, t * h * w, c)
        y = self.out(self.tf(tokens))
        return y.reshape(b, t, h, w, c).permute(0, 1, 4, 2, 3)


class FutureDepth(nn.Module):
    config_class = FutureDepthConfig
    depth_kind = "inverse"

    def __init__(self, cfg: FutureDepthConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or FutureDepthConfig()
        w = cfg.width
        c = 3 * w
        self.encoder = Encoder(w)
        self.fnet = FNet(c, cfg.frames - 1)
        self.rnet = RNet(c, cfg.frames, cfg.heads, cfg.layers)
        self.query = nn.Linear(2 * c, c)
        self.cross = nn.MultiheadAttention(c, cfg.heads, batch_first=True)
        self.dec8 = ResBlock(2 * c, c)
        self.dec4 = ResBlock(c + 2 * w, 2 * w)
        self.coarse = nn.Conv2d(2 * w, 1, 3, padding=1)
        self.refine = nn.Sequential(nn.Conv2d(4, w, 3, padding=1), nn.SiLU(), ResBlock(w, w),
                                    nn.Conv2d(w, 1, 3, padding=1))

    @property
    def frames_per_clip(self) -> int:
        return self.cfg.frames

    @classmethod
    def from_config(cls, config: dict) -> FutureDepth:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        return cls(FutureDepthConfig(**fields))

    def config_dict(self) -> dict:
        return asdict(self.cfg)

    def _adaptive_mask(self, vol: torch.Tensor) -> torch.Tensor:
        """Mask ``mask_ratio`` of the tokens, sampled with weights that grow with their temporal change."""
        b, t, c, h, w = vol.shape
        change = torch.zeros(b, t, h, w, device=vol.device)
        change[:, 1:] = (vol[:, 1:] - vol[:, :-1]).detach().pow(2).mean(2)
        change[:, 0] = change[:, 1] if t > 1 else 0
        weight = (change.flatten(1) / change.flatten(1).mean(1, keepdim=True).clamp_min(1e-8)).clamp(0.2, 5.0)
        n = int(self.cfg.mask_ratio * t * h * w)
        idx = torch.multinomial(weight, n, replacement=False)
        mask = torch.zeros(b, t * h * w, dtype=torch.bool, device=vol.device)
        mask.scatter_(1, idx, True)
        return mask.reshape(b, t, h, w)

    def forward(self, frames: torch.Tensor, train: bool = False):
        """``(B,T,3,H,W)`` in [0,1] → inverse depth of the last frame ``(B,H,W)``; with ``train``, also the
        F-Net and R-Net self-supervised losses."""
        b, t, _, H, W = frames.shape
        skip4, tok8 = self.encoder(frames.flatten(0, 1))
        c, h, w = tok8.shape[1:]
        vol = tok8.reshape(b, t, c, h, w)
        pred_next, f_hidden = self.fnet(vol[:, :-1])
        mask = self._adaptive_mask(vol) if train else None
        rec = self.rnet(vol, mask)
        q = self.query(torch.cat([f_hidden, rec[:, -1]], 1).flatten(2).transpose(1, 2))  # (B, h·w, C)
        kv = vol[:, -1].flatten(2).transpose(1, 2)
        att, _ = self.cross(q, kv, kv)
        x = self.dec8(torch.cat([vol[:, -1], att.transpose(1, 2).reshape(b, c, h, w)], 1))
        s4 = skip4.reshape(b, t, *skip4.shape[1:])[:, -1]
        x = F.interpolate(x, size=s4.shape[-2:], mode="bilinear", align_corners=False)
        x = self.dec4(torch.cat([x, s4], 1))
        coarse = F.interpolate(self.coarse(x), size=(H, W), mode="bilinear", align_corners=False)
        depth = (coarse + self.refine(torch.cat([frames[:, -1], coarse], 1)))[:, 0]
        if not train:
            return depth
        f_loss = F.mse_loss(pred_next, vol[:, -1].detach())
        r_loss = ((rec - vol.detach()).pow(2).mean(2) * mask).sum() / mask.sum().clamp_min(1)
        return depth, f_loss, r_loss
