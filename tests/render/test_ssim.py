"""The fitting-loop SSIM: kornia's map and gradient exactly, a blur whose hand-written backward passes gradcheck."""

from __future__ import annotations

import kornia
import pytest
import torch

from vision3d.render.ssim import SSIMTarget, blur, gaussian_window


def _kornia_map(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    return kornia.metrics.ssim(pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None], 11)[0].permute(1, 2, 0)


@pytest.mark.parametrize("shape", [(37, 53, 3), (12, 16, 3), (24, 31, 1)])
def test_ssim_matches_kornia_in_value_and_gradient(shape):
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(shape, generator=g)
    pred = (gt + 0.2 * torch.randn(shape, generator=g)).clamp(0, 1).requires_grad_(True)
    weights = torch.rand(shape, generator=g)
    ref = _kornia_map(pred, gt)
    ours = SSIMTarget(gt).map(pred)
    assert torch.allclose(ours, ref, atol=1e-5)
    (g_ref,) = torch.autograd.grad((ref * weights).sum(), pred)
    (g_ours,) = torch.autograd.grad((ours * weights).sum(), pred)
    assert torch.allclose(g_ours, g_ref, atol=1e-4, rtol=1e-4)
    assert SSIMTarget(gt).mean(gt).item() == pytest.approx(1.0, abs=1e-5)


def test_blur_backward_is_the_adjoint():
    x = torch.rand(1, 2, 13, 17, dtype=torch.float64, requires_grad=True)
    w = gaussian_window(11).double()
    assert torch.autograd.gradcheck(lambda a: blur(a, w), (x,))


def test_blur_refuses_images_smaller_than_the_window():
    with pytest.raises(ValueError, match="smaller than the SSIM window"):
        blur(torch.rand(1, 3, 4, 40), gaussian_window(11))
