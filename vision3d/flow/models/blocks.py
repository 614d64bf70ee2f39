"""Building blocks shared by the learned flow networks: MobileNetV3 pieces, a cost volume and backward warping.

Everything here uses standard, exportable ops only (ONNX opset >= 16, CoreML, ExecuTorch): no custom CUDA
kernels, no loops whose trip count depends on the input size, no data-dependent control flow.

- ``InvertedResidual``: the MobileNetV3 "bneck" (Howard et al., ICCV'19): 1x1 expansion, k x k depthwise
  conv, optional squeeze-and-excite, 1x1 linear projection, residual when shapes allow; BN after each conv,
  ReLU or hard-swish.
- ``DepthwiseSeparableConv``: k x k depthwise + 1x1 pointwise (+ activation), no normalisation.
- ``cost_volume``: PWC-Net's local correlation over a (2d+1)^2 window.
- ``backward_warp``: sample an image/feature map at ``x + flow(x)`` with ``grid_sample``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, never below 90 % of ``value``."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if out < 0.9 * value:
        out += divisor
    return out


def activation(kind: str) -> nn.Module:
    """``"RE"`` (ReLU), ``"HS"`` (hard-swish), ``"LR"`` (LeakyReLU 0.1, PWC-Net's), ``"none"``."""
    if kind == "RE":
        return nn.ReLU(inplace=True)
    if kind == "HS":
        return nn.Hardswish(inplace=True)
    if kind == "LR":
        return nn.LeakyReLU(0.1, inplace=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r} (use RE, HS, LR or none)")


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + activation, 'same' padding for odd kernels."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, act: str = "RE"):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            activation(act),
        )


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-and-excite: global mean -> 1x1 (ReLU) -> 1x1 (hard-sigmoid) -> channel gate."""

    def __init__(self, channels: int, squeeze: int | None = None):
        super().__init__()
        squeeze = squeeze or make_divisible(channels / 4)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the spatial mean as sum * (1/HW): ONNX ReduceMean changed form at opset 18 and the dynamo exporter's
        # down-conversion to opset 17 fails on it, while ReduceSum is the same from opset 13 on
        s = x.sum(dim=(2, 3), keepdim=True) * (1.0 / (x.shape[-2] * x.shape[-1]))
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    """MobileNetV3 bneck: ``cin -> exp`` (1x1, skipped when equal) -> depthwise ``kernel`` (``stride``) -> SE ->
    ``exp -> cout`` (1x1, linear); identity shortcut when ``stride == 1 and cin == cout``."""

    def __init__(self, cin: int, kernel: int, exp: int, cout: int, use_se: bool, act: str, stride: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(ConvBNAct(cin, exp, 1, act=act))
        layers.append(ConvBNAct(exp, exp, kernel, stride, groups=exp, act=act))
        if use_se:
            layers.append(SqueezeExcite(exp))
        layers.append(ConvBNAct(exp, cout, 1, act="none"))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_residual else y


class DepthwiseSeparableConv(nn.Sequential):
    """``kernel`` x ``kernel`` depthwise conv (optionally dilated) + 1x1 pointwise conv + activation; biases, no norm."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, dilation: int = 1, act: str = "LR"):
        pad = dilation * (kernel - 1) // 2
        super().__init__(
            nn.Conv2d(cin, cin, kernel, padding=pad, dilation=dilation, groups=cin),
            nn.Conv2d(cin, cout, 1),
            activation(act),
        )


class FullConv(nn.Sequential):
    """Plain ``kernel`` x ``kernel`` conv (optionally dilated) + activation, as in PWC-Net's estimator."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, dilation: int = 1, act: str = "LR"):
        super().__init__(nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation),
                         activation(act))


def zero_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Zero-pad the last two dims by ``p`` with concatenation (ONNX Concat): ``F.pad`` exports as Pad, whose
    opset-18 form the exporter cannot down-convert to opset 17."""
    if p == 0:
        return x
    b, c, h, w = x.shape
    zw = x.new_zeros(b, c, h, p)
    x = torch.cat([zw, x, zw], dim=3)
    zh = x.new_zeros(b, c, p, w + 2 * p)
    return torch.cat([zh, x, zh], dim=2)


def cost_volume(f1: torch.Tensor, f2: torch.Tensor, max_displacement: int) -> torch.Tensor:
    """Local correlation: ``out[b, k, y, x] = mean_c f1[b,c,y,x] * f2[b,c,y+dy,x+dx]`` (zero outside ``f2``).

    ``k = (dy + d) * (2d + 1) + (dx + d)`` for ``dy, dx in [-d, d]``, ``d = max_displacement`` (dy outer, as
    PWC-Net's correlation layer orders it); output ``(B, (2d+1)^2, H, W)``. The mean over channels is PWC-Net's
    normalisation (the sum divided by C). The loop runs (2d+1)^2 times whatever the input size.
    """
    d = int(max_displacement)
    h, w = f1.shape[-2], f1.shape[-1]
    f2p = zero_pad(f2, d)
    scale = 1.0 / f1.shape[1]
    out = []
    for dy in range(2 * d + 1):
        for dx in range(2 * d + 1):
            # sum * (1/C) rather than mean(): ReduceSum exports cleanly to every opset >= 13
            out.append((f1 * f2p[:, :, dy:dy + h, dx:dx + w]).sum(dim=1, keepdim=True))
    return torch.cat(out, dim=1) * scale


def pixel_grid(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """``(1, 2, h, w)`` pixel coordinates (x first) on ``like``'s device and dtype."""
    ys = torch.arange(h, device=like.device, dtype=like.dtype).view(1, 1, h, 1).expand(1, 1, h, w)
    xs = torch.arange(w, device=like.device, dtype=like.dtype).view(1, 1, 1, w).expand(1, 1, h, w)
    return torch.cat([xs, ys], dim=1)


def backward_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``x (B,C,H,W)`` at ``p + flow(p)`` (``flow (B,2,H,W)`` in pixels of ``x``, x first): bilinear,
    zeros outside. So ``backward_warp(frame1, flow01)`` aligns frame 1 to frame 0.

    Uses ``grid_sample(align_corners=True)``: normalised -1/+1 are the centres of the first/last pixel.
    """
    h, w = x.shape[-2], x.shape[-1]
    pos = pixel_grid(h, w, flow) + flow
    gx = pos[:, 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = pos[:, 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
