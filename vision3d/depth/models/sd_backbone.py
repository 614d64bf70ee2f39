"""Stable Diffusion as PrimeDepth's backbone, from a local folder in the diffusers layout (never downloaded).

PrimeDepth runs a frozen SD 2.1 UNet for one denoising step on the image latent with the empty prompt and
reads the decoder's multi-scale features. This adapter does the same with whatever SD checkpoint the user
has on disk (``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``), using ``diffusers``/``transformers``
when installed. Its features have other widths than the small backbone's, so the refiner must be trained
for it: ``python scripts/train_depth.py --model primedepth --backbone sd:/path/to/sd``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vision3d.errors import InputError


class SDBackbone(nn.Module):
    """Frozen SD UNet (+ VAE encoder, empty-prompt embedding); ``forward`` returns the decoder features."""

    def __init__(self, path: str | Path, timestep: int = 50):
        super().__init__()
        p = Path(path)
        if not (p / "unet").is_dir() or not (p / "vae").is_dir():
            raise InputError("not a Stable Diffusion folder in the diffusers layout (needs unet/ and vae/)", path=p,
                             fix="point to a local copy of e.g. stable-diffusion-2-1 (nothing is downloaded)")
        try:
            from diffusers import AutoencoderKL, UNet2DConditionModel
            from transformers import CLIPTextModel, CLIPTokenizer
        except ImportError:
            raise InputError("a Stable Diffusion backbone needs diffusers and transformers",
                             fix="pip install diffusers transformers") from None
        self.unet = UNet2DConditionModel.from_pretrained(p, subfolder="unet", local_files_only=True)
        self.vae = AutoencoderKL.from_pretrained(p, subfolder="vae", local_files_only=True)
        tok = CLIPTokenizer.from_pretrained(p, subfolder="tokenizer", local_files_only=True)
        text = CLIPTextModel.from_pretrained(p, subfolder="text_encoder", local_files_only=True)
        ids = tok([""], padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
        with torch.no_grad():
            self.register_buffer("empty", text(ids)[0])
        self.requires_grad_(False)
        self.timestep = timestep
        self._feats: list[torch.Tensor] = []
        for block in self.unet.up_blocks:
            block.register_forward_hook(lambda _m, _i, out: self._feats.append(out))

    @property
    def channels(self) -> int:
        return sum(b.resnets[-1].out_channels for b in self.unet.up_blocks)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``(B,3,H,W)`` in [0,1] (H, W multiples of 64) → the up-blocks' outputs, coarse to fine."""
        self._feats = []
        with torch.no_grad():
            latent = self.vae.encode(images * 2 - 1).latent_dist.mean * self.vae.config.scaling_factor
            t = torch.full((len(images),), self.timestep, device=images.device, dtype=torch.long)
            self.unet(latent, t, encoder_hidden_states=self.empty.expand(len(images), -1, -1))
        return list(self._feats)
