"""A small diffusion UNet (the PrimeDepth backbone when no Stable Diffusion weights are at hand).

Pre-trained by ``scripts/train_denoiser.py`` as an ε-prediction DDPM denoiser on real photos. One denoising
step at a small timestep yields the "preimage": the decoder's multi-scale features plus the self-attention
maps of its attention layers (each query's attention over an 8×8 pooled key grid → 64 channels), which is
what PrimeDepth's refiner reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vision3d.depth.models.common import ResBlock, norm, timestep_embedding

T_STEPS = 1000


@dataclass
class UNetConfig:
    base: int = 32
    mults: tuple[int, ...] = (1, 2, 4, 4)
    attn_levels: tuple[int, ...] = (3,)  # levels (0 = full res) with self-attention (plus the middle)
    key_grid: int = 8  # keys pooled to key_grid × key_grid for the attention-map features

    @classmethod
    def small(cls) -> UNetConfig:
        return cls()


class SelfAttention(nn.Module):
    """Single-head attention over all positions; keeps its attention map (queries × pooled keys) as features."""

    def __init__(self, c: int, key_grid: int):
        super().__init__()
        self.n, self.qkv, self.out = norm(c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)
        self.key_grid = key_grid
        self.last_map: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.n(x)).chunk(3, 1)
        att = torch.softmax(torch.einsum("bci,bcj->bij", q.flatten(2), k.flatten(2)) / c ** 0.5, -1)
        y = torch.einsum("bij,bcj->bci", att, v.flatten(2)).reshape(b, c, h, w)
        # attention mass per query over a coarse key grid: a fixed-size (key_grid²) map per position
        g = self.key_grid
        pooled = F.adaptive_avg_pool2d(att.reshape(b * h * w, 1, h, w), (g, g)) * (h * w / (g * g))
        self.last_map = pooled.reshape(b, h, w, g * g).permute(0, 3, 1, 2)
        return x + self.out(y)


class DiffusionUNet(nn.Module):
    config_class = UNetConfig

    def __init__(self, cfg: UNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or UNetConfig()
        e = cfg.base * 4
        self.temb = nn.Sequential(nn.Linear(cfg.base, e), nn.SiLU(), nn.Linear(e, e))
        chans = [cfg.base * m for m in cfg.mults]
        self.stem = nn.Conv2d(3, chans[0], 3, padding=1)
        self.down, self.down_attn, self.pool = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c = chans[0]
        for i, ch in enumerate(chans):
            self.down.append(ResBlock(c, ch, e))
            self.down_attn.append(SelfAttention(ch, cfg.key_grid) if i in cfg.attn_levels else nn.Identity())
            self.pool.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1) if i < len(chans) - 1 else nn.Identity())
            c = ch
        self.mid = ResBlock(c, c, e)
        self.mid_attn = SelfAttention(c, cfg.key_grid)
        self.up, self.up_attn = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(chans))):
            self.up.append(ResBlock(c + chans[i], chans[i], e))
            self.up_attn.append(SelfAttention(chans[i], cfg.key_grid) if i in cfg.attn_levels else nn.Identity())
            c = chans[i]
        self.out = nn.Sequential(norm(c), nn.SiLU(), nn.Conv2d(c, 3, 3, padding=1))

    @property
    def stride(self) -> int:
        return 2 ** (len(self.cfg.mults) - 1)

    @classmethod
    def from_config(cls, config: dict) -> DiffusionUNet:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        return cls(UNetConfig(**fields))

    def config_dict(self) -> dict:
        return asdict(self.cfg)

    def forward(self, x: torch.Tensor, t: torch.Tensor, return_features: bool = False):
        """Predict the noise in ``x`` (``(B,3,H,W)`` in [−1,1]) at timesteps ``t``; optionally the preimage."""
        e = self.temb(timestep_embedding(t, self.cfg.base))
        h = self.stem(x)
        skips = []
        for block, attn, pool in zip(self.down, self.down_attn, self.pool):
            h = attn(block(h, e))
            skips.append(h)
            h = pool(h)
        h = self.mid_attn(self.mid(h, e))
        feats, maps = [], []
        for block, attn in zip(self.up, self.up_attn):
            s = skips.pop()
            if h.shape[-2:] != s.shape[-2:]:
                h = F.interpolate(h, size=s.shape[-2:], mode="nearest")
            h = attn(block(torch.cat([h, s], 1), e))
            feats.append(h)
            if isinstance(attn, SelfAttention):
                maps.append(attn.last_map)
        eps = self.out(h)
        if not return_features:
            return eps
        return eps, {"features": feats, "attention": [self.mid_attn.last_map] + maps}


class Diffusion:
    """The DDPM forward process with the linear β schedule (1e-4 … 0.02, 1000 steps)."""

    def __init__(self, device="cpu"):
        betas = torch.linspace(1e-4, 0.02, T_STEPS, device=device)
        self.alpha_bar = torch.cumprod(1 - betas, 0)

    def noise(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bar.to(x0.device)[t][:, None, None, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps
