"""StreamFlow's decoder pieces: RAFT correlation, SKFlow PCBlocks, GMA aggregation, the GTR update block, upsampling.

GTR ("Global Temporal Regressor", StreamFlow §3.3) is the official ``SKUpdateBlock_TAM_v3``: an SKFlow motion
encoder per flow, GMA global motion aggregation per flow, a per-pixel transformer block over the T-1 flows
(zero-initialised so it starts as the identity), a PCBlock "GRU" per flow, and one joint flow head that reads the
hidden states of all T-1 flows at a pixel and predicts all T-1 flow updates.

Tensors inside the decoder are ``(B·(T-1), C, h, w)`` (flows stacked into the batch, time-major within a clip).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vision3d.flow.models.streamflow_encoder import Mlp


# ----------------------------------------------------------------------------------------------- correlation
class CorrPyramid:
    """RAFT all-pairs correlation ``<f1(x), f2(y)>/√C`` with ``levels`` average-pooled levels and a radius-``r``
    bilinear lookup (``grid_sample``, zeros outside).

    ``fmap1``/``fmap2`` are ``(N, C, h, w)`` (N = B·(T-1) adjacent pairs). Calling it with pixel
    coordinates ``(N, 2, h, w)`` (x first) in frame 2 returns ``(N, levels·(2r+1)², h, w)``. Channel order
    follows RAFT (so official weights would fit): channel ``l·(2r+1)² + i·(2r+1) + j`` samples level ``l`` at
    ``(x/2^l + i - r, y/2^l + j - r)`` — the x offset runs over the slower index.
    """

    def __init__(self, fmap1: torch.Tensor, fmap2: torch.Tensor, levels: int = 4, radius: int = 4):
        N, C, h, w = fmap1.shape
        if min(h, w) < 2 ** (levels - 1):
            raise ValueError(f"a {h}x{w} feature map is too small for a {levels}-level correlation pyramid")
        self.levels, self.radius = levels, radius
        corr = torch.bmm(fmap1.flatten(2).transpose(1, 2), fmap2.flatten(2)) / C ** 0.5   # (N, h·w, h·w)
        corr = corr.reshape(N * h * w, 1, h, w)
        self.pyramid = [corr]
        for _ in range(levels - 1):
            corr = F.avg_pool2d(corr, 2, stride=2)
            self.pyramid.append(corr)
        r = torch.arange(-radius, radius + 1, dtype=fmap1.dtype, device=fmap1.device)
        di, dj = torch.meshgrid(r, r, indexing="ij")
        self.delta = torch.stack([di, dj], dim=-1).view(1, 2 * radius + 1, 2 * radius + 1, 2)  # (dx, dy)

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        N, _, h, w = coords.shape
        centre = coords.permute(0, 2, 3, 1).reshape(N * h * w, 1, 1, 2)
        out = []
        for lvl, corr in enumerate(self.pyramid):
            pts = centre / 2 ** lvl + self.delta                                 # (Nhw, 2r+1, 2r+1, 2) pixels
            hl, wl = corr.shape[-2:]
            grid = torch.stack([2 * pts[..., 0] / max(wl - 1, 1) - 1, 2 * pts[..., 1] / max(hl - 1, 1) - 1], -1)
            sampled = F.grid_sample(corr, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            out.append(sampled.view(N, h, w, -1))
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous()


# ------------------------------------------------------------------------------------------- SKFlow blocks
class _DepthwiseConvCPU(torch.autograd.Function):
    """Stride-1 "same" depthwise conv with a faster CPU backward than PyTorch's (3-5× on these sizes): the input
    gradient is a depthwise conv of the output gradient with the flipped kernel, the weight gradient a k² loop of
    shifted products (oneDNN's depthwise backward is the slow part of a CPU training step otherwise)."""

    @staticmethod
    def forward(ctx, x, weight, bias, pad: int):
        ctx.save_for_backward(x, weight)
        ctx.pad = pad
        return _depthwise(x, weight, bias, pad)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        p, k = ctx.pad, weight.shape[-1]
        grad = grad.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _depthwise(grad, weight.flip(-1, -2), None, p)
        if ctx.needs_input_grad[1]:
            H, W = x.shape[-2:]
            xp = F.pad(x, (p, p, p, p))
            gw = torch.stack([(grad * xp[:, :, i:i + H, j:j + W]).sum(dim=(0, 2, 3))
                              for i in range(k) for j in range(k)], dim=1).view_as(weight)
        if ctx.needs_input_grad[2]:
            gb = grad.sum(dim=(0, 2, 3))
        return gx, gw, gb, None


def _depthwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, pad: int) -> torch.Tensor:
    if weight.shape[-1] >= 9 and x.device.type == "cpu":        # oneDNN is ~10× faster channels-last here
        y = F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, bias, padding=pad, groups=x.shape[1])
        return y.contiguous()
    return F.conv2d(x, weight, bias, padding=pad, groups=x.shape[1])


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(c, c, k, padding=k//2, groups=c)`` (same parameters and state dict) with faster CPU paths.

    PyTorch's CPU convolution loops over the channels one by one for a 1×1 depthwise kernel (hundreds of tiny
    calls); that case is just a per-channel scale and shift. Larger kernels use ``_DepthwiseConvCPU`` when
    training on CPU, and channels-last oneDNN for k ≥ 9. Tracing/compiling and other devices use plain conv2d.
    """

    def __init__(self, channels: int, kernel: int):
        super().__init__(channels, channels, kernel, padding=kernel // 2, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0]
        if k == 1:
            return torch.addcmul(self.bias.view(1, -1, 1, 1), x, self.weight.view(1, -1, 1, 1))
        if x.device.type != "cpu" or torch.jit.is_tracing() or torch.compiler.is_compiling():
            return super().forward(x)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return _DepthwiseConvCPU.apply(x, self.weight, self.bias, k // 2)
        return _depthwise(x, self.weight, self.bias, k // 2)


class PCBlock(nn.Module):
    """SKFlow's large-kernel block (``PCBlock4_Deep_nopool_res``): residual 1×1 FFN, residual depthwise convs with
    the kernels in ``k_conv``, a residual pointwise conv, then a 1×1 FFN to ``c_out``; GELU after each residual."""

    def __init__(self, c_in: int, c_out: int, k_conv=(1, 15)):
        super().__init__()
        hid = int(1.5 * c_in)
        self.ffn1 = nn.Sequential(nn.Conv2d(c_in, hid, 1), nn.GELU(), nn.Conv2d(hid, c_in, 1))
        self.convs = nn.ModuleList(DepthwiseConv2d(c_in, k) for k in k_conv)
        self.pw = nn.Conv2d(c_in, c_in, 1)
        self.ffn2 = nn.Sequential(nn.Conv2d(c_in, hid, 1), nn.GELU(), nn.Conv2d(hid, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(x + self.ffn1(x))
        for conv in self.convs:
            x = F.gelu(x + conv(x))
        x = F.gelu(x + self.pw(x))
        return self.ffn2(x)


class MotionEncoder(nn.Module):
    """SKFlow motion encoder (``SKMotionEncoder6_Deep_nopool_res``): PCBlocks on the correlation features and on
    the flow, fused by a third PCBlock to ``out_dim - 2`` channels, then the flow itself is appended.

    ``dims = (corr1, corr2, flow1, flow2)``; the paper uses (256, 192, 128, 64) with ``out_dim`` 128.
    """

    def __init__(self, corr_planes: int, out_dim: int, dims=(256, 192, 128, 64), k_conv=(1, 15)):
        super().__init__()
        c1, c2, f1, f2 = dims
        self.convc1 = PCBlock(corr_planes, c1, k_conv)
        self.convc2 = PCBlock(c1, c2, k_conv)
        self.convf1 = nn.Conv2d(2, f1, 1)
        self.convf2 = PCBlock(f1, f2, k_conv)
        self.conv = PCBlock(c2 + f2, out_dim - 2, k_conv)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        cor = self.convc2(F.gelu(self.convc1(corr)))
        flo = self.convf2(self.convf1(flow))
        return torch.cat([self.conv(torch.cat([cor, flo], dim=1)), flow], dim=1)


# ---------------------------------------------------------------------------------------------------- GMA
class GMAAttention(nn.Module):
    """GMA's context self-attention map ``softmax(q·kᵀ/√d)`` over all pixels, computed once per clip."""

    def __init__(self, dim: int, heads: int = 1, dim_head: int | None = None):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head or dim
        self.scale = self.dim_head ** -0.5
        self.to_qk = nn.Conv2d(dim, 2 * heads * self.dim_head, 1, bias=False)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        N, _, h, w = fmap.shape
        q, k = self.to_qk(fmap).chunk(2, dim=1)
        q = q.view(N, self.heads, self.dim_head, h * w).transpose(-1, -2) * self.scale
        k = k.view(N, self.heads, self.dim_head, h * w)
        return torch.matmul(q, k).softmax(dim=-1)                                # (N, heads, hw, hw)


class GMAAggregate(nn.Module):
    """GMA aggregation ``x + γ·attn·V(x)`` (γ a learned scalar starting at 0)."""

    def __init__(self, dim: int, heads: int = 1, dim_head: int | None = None):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head or dim
        inner = heads * self.dim_head
        self.to_v = nn.Conv2d(dim, inner, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.project = nn.Conv2d(inner, dim, 1, bias=False) if inner != dim else None

    def forward(self, attn: torch.Tensor, fmap: torch.Tensor) -> torch.Tensor:
        N, _, h, w = fmap.shape
        v = self.to_v(fmap).view(N, self.heads, self.dim_head, h * w).transpose(-1, -2)
        out = torch.matmul(attn, v).transpose(-1, -2).reshape(N, -1, h, w)
        if self.project is not None:
            out = self.project(out)
        return fmap + self.gamma * out


# ------------------------------------------------------------------------------------------ temporal block
class TemporalAttention(nn.Module):
    """Multi-head self-attention over a short sequence (no qkv bias, projection with bias)."""

    def __init__(self, dim: int, num_heads: int = 1):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, L, C = x.shape
        qkv = self.qkv(x).view(N, L, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(N, L, C))


class TemporalBlock(nn.Module):
    """Per-pixel pre-norm transformer block over the T-1 flows: ``(B·(T-1), C, h, w) → same``.

    Zero-initialised so that at start it is the identity (``x + 0 + 0``) and every flow's motion features pass
    through untouched, with no mixing across time. We zero only the two output projections (attention ``proj``
    and ``mlp.fc2``): the block still starts as the identity and the output projections get gradient at once
    (their inputs are non-zero), so the block learns. The official code zeroes *every* parameter of the block
    (``zero_module``); then all inputs of every weight are zero too, only the two output biases ever get a
    gradient, and the block stays ``x + constant`` for the whole training (see the tests).
    """

    def __init__(self, dim: int, num_heads: int = 1, mlp_ratio: float = 2.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = TemporalAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        for p in (*self.attn.proj.parameters(), *self.mlp.fc2.parameters()):
            nn.init.zeros_(p)

    def forward(self, x: torch.Tensor, n_flows: int) -> torch.Tensor:
        NT, C, h, w = x.shape
        B = NT // n_flows
        seq = x.view(B, n_flows, C, h * w).permute(0, 3, 1, 2).reshape(B * h * w, n_flows, C)
        seq = seq + self.attn(self.norm1(seq))
        seq = seq + self.mlp(self.norm2(seq))
        return seq.view(B, h * w, n_flows, C).permute(0, 2, 3, 1).reshape(NT, C, h, w)


# ------------------------------------------------------------------------------------------- update block
class GTRUpdateBlock(nn.Module):
    """One refinement step for all T-1 flows of a clip (official ``SKUpdateBlock_TAM_v3``).

    motion = MotionEncoder(flow, corr); global = GMA(motion); temporal = TemporalBlock(motion);
    net ← PCBlock([net, inp, motion, global, temporal]) (replaces the ConvGRU);
    Δflow = PCBlock_joint(net of all T-1 flows stacked on channels) (128·(T-1) → 2·(T-1) in the paper);
    mask = 0.25·conv1×1(ReLU(conv3×3(net))) with 9·8·8 channels for convex upsampling.
    """

    def __init__(self, hidden_dim: int, n_flows: int, corr_planes: int, motion_dims, k_conv, update_k_conv,
                 gma_heads: int = 1, use_gma: bool = True, temporal_heads: int = 1, temporal_mlp_ratio: float = 2.0,
                 upsample: int = 8):
        super().__init__()
        d = hidden_dim
        self.n_flows = n_flows
        self.encoder = MotionEncoder(corr_planes, d, motion_dims, k_conv)
        self.aggregator = GMAAggregate(d, heads=gma_heads, dim_head=d) if use_gma else None
        self.temporal = TemporalBlock(d, temporal_heads, temporal_mlp_ratio)
        self.gru = PCBlock(d * (5 if use_gma else 4), d, update_k_conv)
        self.flow_head = PCBlock(d * n_flows, 2 * n_flows, k_conv)
        self.mask = nn.Sequential(nn.Conv2d(d, 2 * d, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(2 * d, upsample * upsample * 9, 1))

    def forward(self, net, inp, corr, flow, attention):
        """``net, inp, corr, flow``: ``(B·(T-1), ·, h, w)``; returns new net, mask ``(B·(T-1), 576, h, w)`` and
        Δflow ``(B·(T-1), 2, h, w)``."""
        NT, d, h, w = net.shape
        motion = self.encoder(flow, corr)
        temporal = self.temporal(motion, self.n_flows)
        parts = [net, inp, motion]
        if self.aggregator is not None:
            parts.append(self.aggregator(attention, motion))
        parts.append(temporal)
        net = self.gru(torch.cat(parts, dim=1))
        B = NT // self.n_flows
        delta = self.flow_head(net.reshape(B, self.n_flows * d, h, w)).reshape(NT, 2, h, w)
        mask = 0.25 * self.mask(net)
        return net, mask, delta


def convex_upsample(flow: torch.Tensor, mask: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """RAFT convex upsampling: each fine pixel is a softmax-weighted mix of the 3×3 coarse neighbours, ×factor.

    ``flow (N,2,h,w)``, ``mask (N, 9·factor², h, w)`` → ``(N, 2, factor·h, factor·w)``. Unlike RAFT we pad the
    border by replication (not zeros), so the result is a true convex combination of real flow vectors and a
    constant field upsamples to exactly ``factor×`` itself, borders included.
    """
    N, _, h, w = flow.shape
    weights = mask.view(N, 1, 9, factor, factor, h, w).softmax(dim=2)
    nb = F.unfold(F.pad(factor * flow, (1, 1, 1, 1), mode="replicate"), kernel_size=3)
    nb = nb.view(N, 2, 9, 1, 1, h, w)
    up = (weights * nb).sum(dim=2)                                              # (N, 2, f, f, h, w)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(N, 2, factor * h, factor * w)
