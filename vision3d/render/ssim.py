"""SSIM for fitting loops: the same map as ``kornia.metrics.ssim`` (11×11 Gaussian window, σ 1.5, reflect padding),
with the target's statistics computed once and a hand-written backward for the blur.

A fitting loop compares many renders with one image; kornia blurs five maps per call, the target's two among them,
and autograd's depthwise-convolution backward on the CPU costs more than the forward. Here each call blurs the
render's three maps in one grouped convolution and the blur's backward is the same cheap convolution (the window is
symmetric) with the reflected border folded back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

C1, C2 = 0.01 ** 2, 0.03 ** 2


def gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return g / g.sum()


def _conv(x: torch.Tensor, g: torch.Tensor, dim: int, pad: int) -> torch.Tensor:
    """Depthwise 1-D correlation of ``x (1,C,H,W)`` with ``g`` along ``dim`` (2: rows, 3: columns), zero padding."""
    b, c, h, w = x.shape
    if dim == 3:      # along rows: one plain 1-D convolution over all rows (4× faster than a (1,k) depthwise conv)
        return F.conv1d(x.reshape(b * c * h, 1, w), g.view(1, 1, -1), padding=pad).reshape(b, c, h, -1)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, len(g), 1), groups=c, padding=(pad, 0))


def _blur_1d(x: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    r = len(g) // 2
    pads = (0, 0, r, r) if dim == 2 else (r, r, 0, 0)
    return _conv(F.pad(x, pads, mode="reflect"), g, dim, 0)


def _blur_1d_adjoint(dy: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """Adjoint of ``_blur_1d``: full correlation (the window is symmetric), then the reflected border folded back."""
    r = len(g) // 2
    dp = _conv(dy, g, dim, 2 * r)                     # gradient w.r.t. the padded input, length n + 2r
    n = dy.shape[dim]
    dx = dp.narrow(dim, r, n).clone()
    head = dp.narrow(dim, 0, r).flip(dim)             # padded i < r came from x[r - i]
    tail = dp.narrow(dim, n + r, r).flip(dim)         # padded i ≥ n + r came from x[2(n-1) - (i - r)]
    dx.narrow(dim, 1, r).add_(head)
    dx.narrow(dim, n - 1 - r, r).add_(tail)
    return dx


class _Blur(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, g):
        ctx.save_for_backward(g)
        return _blur_1d(_blur_1d(x, g, 3), g, 2)

    @staticmethod
    def backward(ctx, dy):
        (g,) = ctx.saved_tensors
        return _blur_1d_adjoint(_blur_1d_adjoint(dy.contiguous(), g, 2), g, 3), None


def blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of ``(1,C,H,W)`` with reflect padding (differentiable, cheap backward)."""
    if min(x.shape[-2:]) <= len(g) // 2:
        raise ValueError(f"image {tuple(x.shape[-2:])} is smaller than the SSIM window")
    return _Blur.apply(x, g)


class SSIMTarget:
    """SSIM maps of renders against one target ``(H,W,C)``; ``map(pred (H,W,C)) -> (H,W,C)``, ``mean(pred)``."""

    def __init__(self, target: torch.Tensor, window: int = 11):
        self.g = gaussian_window(window, device=target.device)
        y = target.detach().permute(2, 0, 1)[None].float()
        self.y = y
        stats = blur(torch.cat([y, y * y], 1), self.g)
        c = y.shape[1]
        self.mu_y, self.var_y = stats[:, :c], stats[:, c:] - stats[:, :c] ** 2

    def map(self, pred: torch.Tensor) -> torch.Tensor:
        x = pred.permute(2, 0, 1)[None]
        c = x.shape[1]
        m = blur(torch.cat([x, x * x, x * self.y], 1), self.g)
        mu_x, var_x, cov = m[:, :c], m[:, c:2 * c] - m[:, :c] ** 2, m[:, 2 * c:] - m[:, :c] * self.mu_y
        num = (2 * mu_x * self.mu_y + C1) * (2 * cov + C2)
        den = (mu_x ** 2 + self.mu_y ** 2 + C1) * (var_x + self.var_y + C2)
        return (num / (den + 1e-12))[0].permute(1, 2, 0)

    def mean(self, pred: torch.Tensor) -> torch.Tensor:
        return self.map(pred).mean()
