"""StreamFlow's ISC encoder: the first stages of a Twins-SVT, run on the tokens of all T frames at once.

ISC ("Integrative Spatio-temporal Coherence", StreamFlow §3.2): each patch embedding turns the T frames of a clip
into one token sequence ``b (t h w) c``; the Twins blocks then see a tall "stacked image" of size ``(T·h, w)``
(frame t occupies rows ``t·h .. t·h+h-1``). So, as in the official ``Twins_CSC`` encoder,

* global sub-sampled attention (GSA) attends from every token to a sub-sampled summary of *all* frames,
* locally-grouped attention (LSA) runs in ``ws×ws`` windows of the stacked image (a window may straddle two frames
  when ``h`` is not a multiple of ``ws``),
* the conditional position encoding (PEG: a depthwise 3×3 conv after the first block of a stage) also runs on the
  stacked image.

This costs no parameters over a per-frame Twins encoder. Blocks are our own implementation of Twins-SVT
(Chu et al. 2021; timm's ``twins.py`` layout: pre-norm blocks, LSA on even / GSA on odd block indices).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

Size = tuple[int, int]


class Mlp(nn.Module):
    """Token MLP: Linear → GELU → Linear."""

    def __init__(self, dim: int, hidden: int, out_dim: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention ``(..., Nq, d) × (..., Nk, d) → (..., Nq, d)`` with the 1/√d scale."""
    return F.scaled_dot_product_attention(q, k, v)


class LocallyGroupedAttention(nn.Module):
    """Twins LSA: full self-attention inside non-overlapping ``ws×ws`` windows of the (stacked) image.

    The image is zero-padded at the bottom/right to a multiple of ``ws`` and padded tokens take part as keys
    (timm's "padding" variant, which the pretrained Twins and StreamFlow weights were trained with).
    """

    def __init__(self, dim: int, num_heads: int, ws: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.ws = num_heads, ws
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, size: Size) -> torch.Tensor:
        B, N, C = x.shape
        H, W = size
        ws, nh = self.ws, self.num_heads
        x = x.view(B, H, W, C)
        pad_b, pad_r = (-H) % ws, (-W) % ws
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        Hp, Wp = H + pad_b, W + pad_r
        gh, gw = Hp // ws, Wp // ws
        x = x.view(B, gh, ws, gw, ws, C).transpose(2, 3).reshape(B, gh * gw, ws * ws, C)
        qkv = self.qkv(x).view(B, gh * gw, ws * ws, 3, nh, C // nh).permute(3, 0, 1, 4, 2, 5)
        out = _attend(qkv[0], qkv[1], qkv[2])                                 # (B, G, nh, ws², d)
        out = out.transpose(2, 3).reshape(B, gh, gw, ws, ws, C).transpose(2, 3).reshape(B, Hp, Wp, C)
        if pad_b or pad_r:
            out = out[:, :H, :W]
        return self.proj(out.reshape(B, N, C))


class GlobalSubsampledAttention(nn.Module):
    """Twins GSA: every token attends to keys/values from a ``sr×sr``-strided conv summary of the whole image."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)
        else:
            self.sr = None
            self.norm = None

    def forward(self, x: torch.Tensor, size: Size) -> torch.Tensor:
        B, N, C = x.shape
        nh = self.num_heads
        q = self.q(x).view(B, N, nh, C // nh).transpose(1, 2)
        if self.sr is not None:
            kv_in = self.sr(x.transpose(1, 2).reshape(B, C, *size)).flatten(2).transpose(1, 2)
            kv_in = self.norm(kv_in)
        else:
            kv_in = x
        kv = self.kv(kv_in).view(B, -1, 2, nh, C // nh).permute(2, 0, 3, 1, 4)
        out = _attend(q, kv[0], kv[1])
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class TwinsBlock(nn.Module):
    """Pre-norm transformer block with LSA (``ws > 1``) or GSA (``ws == 1``) attention."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, ws: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = (LocallyGroupedAttention(dim, num_heads, ws) if ws > 1
                     else GlobalSubsampledAttention(dim, num_heads, sr_ratio))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, size: Size) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), size)
        return x + self.mlp(self.norm2(x))


class PosConv(nn.Module):
    """PEG (conditional position encoding): ``x + depthwise3×3(x)`` on the token image."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor, size: Size) -> torch.Tensor:
        B, _, C = x.shape
        img = x.transpose(1, 2).reshape(B, C, *size)
        return (img + self.proj(img)).flatten(2).transpose(1, 2)


class ClipPatchEmbed(nn.Module):
    """Strided conv + LayerNorm per frame, tokens laid out ``b (t h w) c``; size is the stacked ``(T·h, w)``."""

    def __init__(self, patch: int, in_chans: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        B, T = x.shape[:2]
        y = self.proj(x.flatten(0, 1))
        _, C, h, w = y.shape
        tokens = y.view(B, T, C, h, w).permute(0, 1, 3, 4, 2).reshape(B, T * h * w, C)
        return self.norm(tokens), h, w


class ISCEncoder(nn.Module):
    """Twins-SVT stages 1..len(dims) (patch 4, then 2 per stage) over a clip: ``(B,T,3,H,W) → (B,T,C,H/s,W/s)``.

    With two stages the output stride is 8 and ``C = dims[-1]`` (Twins-SVT-Large: dims (128, 256), heads (4, 8),
    MLP ratio 4, depths (2, 2), sub-sampling ratios (8, 4), window 7).
    """

    def __init__(self, dims=(128, 256), heads=(4, 8), depths=(2, 2), sr_ratios=(8, 4), mlp_ratio: float = 4.0,
                 window: int = 7, in_chans: int = 3):
        super().__init__()
        n = len(dims)
        if not (len(heads) == len(depths) == len(sr_ratios) == n):
            raise ValueError("dims, heads, depths and sr_ratios need one entry per stage")
        self.out_dim = dims[-1]
        self.stride = 4 * 2 ** (n - 1)
        self.patch_embeds = nn.ModuleList()
        self.blocks = nn.ModuleList()
        self.pos_blocks = nn.ModuleList()
        prev = in_chans
        for i in range(n):
            self.patch_embeds.append(ClipPatchEmbed(4 if i == 0 else 2, prev, dims[i]))
            self.blocks.append(nn.ModuleList(
                TwinsBlock(dims[i], heads[i], mlp_ratio, sr_ratios[i], window if j % 2 == 0 else 1)
                for j in range(depths[i])))
            self.pos_blocks.append(PosConv(dims[i]))
            prev = dims[i]
        self.apply(_init_twins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T = x.shape[:2]
        for embed, blocks, peg in zip(self.patch_embeds, self.blocks, self.pos_blocks):
            tokens, h, w = embed(x)
            size = (T * h, w)
            for j, blk in enumerate(blocks):
                tokens = blk(tokens, size)
                if j == 0:
                    tokens = peg(tokens, size)
            x = tokens.view(B, T, h, w, -1).permute(0, 1, 4, 2, 3)
        return x.contiguous()


def _init_twins(m: nn.Module) -> None:
    """Twins' init: truncated-normal(0.02) linears, fan-out normal convs, unit LayerNorms."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
