"""PrimeDepth (ACCV'24): one denoising step of a frozen diffusion UNet gives a multi-scale "preimage"
(decoder features + self-attention maps); a refiner UNet with a depth head predicts affine-invariant
inverse depth.

The backbone is pluggable: ``DiffusionUNet`` (pre-trained here as a denoiser on photos) by default, or a
local Stable Diffusion folder (diffusers layout, ``backbone="sd:/path"``) when the user has one. The image
is processed at ``process_size`` (long side) and the depth resized back, as MiDaS-style models do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vision3d.depth.models.common import ResBlock
from vision3d.depth.models.diffusion_unet import DiffusionUNet, UNetConfig


@dataclass
class PrimeDepthConfig:
    backbone: UNetConfig = None  # type: ignore[assignment]
    timestep: int = 50  # the single denoising step's t (a lightly noised input, as in the paper)
    width: int = 48  # refiner base width
    process_size: int = 160

    def __post_init__(self):
        if self.backbone is None:
            self.backbone = UNetConfig()
        elif isinstance(self.backbone, dict):
            self.backbone = UNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.backbone.items()})

    @classmethod
    def small(cls) -> PrimeDepthConfig:
        return cls()


class Refiner(nn.Module):
    """Fuses the preimage (all scales brought to 1/4 resolution) with the image; predicts inverse depth."""

    def __init__(self, in_ch: int, width: int):
        super().__init__()
        self.img = nn.Sequential(nn.Conv2d(3, width // 2, 3, padding=1), nn.SiLU(),
                                 nn.Conv2d(width // 2, width // 2, 3, stride=2, padding=1), nn.SiLU())
        self.fuse = nn.Conv2d(in_ch, width * 2, 1)
        self.b1 = ResBlock(width * 2, width * 2)
        self.b2 = ResBlock(width * 2, width * 2)
        self.up1 = ResBlock(width * 2 + width // 2, width)
        self.head = nn.Sequential(nn.Conv2d(width, width // 2, 3, padding=1), nn.SiLU(), nn.Conv2d(width // 2, 1, 1))

    def forward(self, image: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        h = self.b2(self.b1(self.fuse(pre)))
        i2 = self.img(image)  # 1/2
        h = F.interpolate(h, size=i2.shape[-2:], mode="bilinear", align_corners=False)
        h = self.up1(torch.cat([h, i2], 1))
        out = self.head(h)
        return F.interpolate(out, size=image.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


class PrimeDepth(nn.Module):
    config_class = PrimeDepthConfig
    frames_per_clip = 1
    depth_kind = "inverse"

    def __init__(self, cfg: PrimeDepthConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or PrimeDepthConfig()
        self.backbone = DiffusionUNet(cfg.backbone)
        self.backbone.requires_grad_(False)
        b = cfg.backbone
        feat_ch = sum(b.base * m for m in b.mults)  # decoder features, one per level
        n_maps = 1 + len(b.attn_levels)  # mid + decoder attention layers
        self.refiner = Refiner(feat_ch + n_maps * b.key_grid ** 2, cfg.width)

    @classmethod
    def from_config(cls, config: dict) -> PrimeDepth:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        return cls(PrimeDepthConfig(**fields))

    def config_dict(self) -> dict:
        d = asdict(self.cfg)
        return d

    def use_sd_backbone(self, path: str) -> None:
        """Swap in a local Stable Diffusion UNet (features only; the refiner is rebuilt for its widths)."""
        from vision3d.depth.models.sd_backbone import SDBackbone

        self.backbone = SDBackbone(path, self.cfg.timestep)
        self.refiner = Refiner(self.backbone.channels, self.cfg.width)

    def preimage(self, x: torch.Tensor) -> torch.Tensor:
        """One denoising step at ``t`` (noise-free input: the deterministic preimage) → 1/4-res features."""
        size = (x.shape[-2] // 4, x.shape[-1] // 4)
        if not isinstance(self.backbone, DiffusionUNet):  # a Stable Diffusion backbone: decoder features
            return torch.cat([F.interpolate(a.float(), size=size, mode="bilinear", align_corners=False)
                              for a in self.backbone(x)], 1)
        t = torch.full((len(x),), self.cfg.timestep, device=x.device, dtype=torch.long)
        with torch.no_grad():
            _, f = self.backbone(x * 2 - 1, t, return_features=True)
        parts = [F.interpolate(a, size=size, mode="bilinear", align_corners=False) for a in f["features"]]
        parts += [F.interpolate(a, size=size, mode="bilinear", align_corners=False) for a in f["attention"]]
        return torch.cat(parts, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B,3,H,W)`` in [0,1] (H, W multiples of the backbone stride) → inverse depth ``(B,H,W)``."""
        return self.refiner(images, self.preimage(images))
