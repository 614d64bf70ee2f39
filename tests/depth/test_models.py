"""The learned depth networks: shapes, that they learn (overfit one batch), checkpoints, windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vision3d.depth.models.common import normalise_inverse_depth, ssi_loss
from vision3d.depth.models.diffusion_unet import Diffusion, DiffusionUNet, UNetConfig
from vision3d.depth.models.futuredepth import FutureDepth, FutureDepthConfig
from vision3d.depth.models.primedepth import PrimeDepth, PrimeDepthConfig
from vision3d.errors import InputError
from vision3d.io.checkpoint import save_checkpoint

TINY_UNET = UNetConfig(base=8, mults=(1, 2, 2, 2))
TINY_FD = FutureDepthConfig(width=8, heads=2, layers=1, frames=3, process_size=32)


def test_ssi_loss_is_scale_shift_invariant():
    t = torch.rand(2, 16, 16)
    m = torch.ones(2, 16, 16, dtype=torch.bool)
    loss, aligned = ssi_loss(3 * t - 1, t, m)
    assert float(loss) < 1e-5 and torch.allclose(aligned, t, atol=1e-4)
    n = normalise_inverse_depth(1 / (t + 0.5), m)
    assert abs(float(n[0].median())) < 1e-5


def test_denoiser_preimage_shapes():
    m = DiffusionUNet(TINY_UNET)
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    eps, f = m(x, torch.tensor([10, 500]), return_features=True)
    assert eps.shape == x.shape
    assert len(f["features"]) == 4 and f["attention"][0].shape[1] == TINY_UNET.key_grid ** 2
    with torch.no_grad():
        noisy = Diffusion().noise(x, torch.tensor([0, 999]), eps)
        assert float(torch.nn.functional.mse_loss(m(noisy, torch.tensor([0, 999])), eps)) > 0


def _overfit(model, step_fn, steps=60):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = step_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


def _scene(b, t, h=32, w=48):
    """Images whose brightness encodes inverse depth (a learnable cue) and the matching depth."""
    g = torch.Generator().manual_seed(0)
    inv = torch.rand(b, 1, 1, 1, generator=g) + torch.linspace(0, 1, w)[None, None, None, :] * torch.rand(b, 1, 1, 1, generator=g)
    inv = inv.expand(b, t, h, w)
    imgs = (inv[:, :, None] / inv.max()).expand(b, t, 3, h, w).contiguous()
    return imgs, 1 / (inv + 0.2)


def test_primedepth_learns():
    torch.manual_seed(0)
    m = PrimeDepth(PrimeDepthConfig(backbone=TINY_UNET, width=16, process_size=32))
    imgs, depth = _scene(4, 1)
    mask = torch.ones(4, 32, 48, dtype=torch.bool)
    target = normalise_inverse_depth(depth[:, 0], mask)
    losses = _overfit(m, lambda: ssi_loss(m(imgs[:, 0]), target, mask)[0])
    assert losses[-1] < 0.5 * losses[0]
    assert not any(p.grad is not None for p in m.backbone.parameters())  # the backbone stays frozen


def test_futuredepth_learns_and_has_self_supervised_losses():
    torch.manual_seed(0)
    m = FutureDepth(TINY_FD)
    imgs, depth = _scene(4, 3)
    mask = torch.ones(4, 32, 48, dtype=torch.bool)
    target = normalise_inverse_depth(depth[:, -1], mask)

    def step():
        pred, fl, rl = m(imgs, train=True)
        assert fl > 0 and rl > 0
        return ssi_loss(pred, target, mask)[0] + 0.1 * (fl + rl)

    losses = _overfit(m, step)
    assert losses[-1] < 0.5 * losses[0]
    m.eval()
    assert m(imgs).shape == (4, 32, 48)


def test_learned_estimator_checkpoint_and_windows(tmp_path, monkeypatch):
    from vision3d.depth.registry import estimate

    m = FutureDepth(TINY_FD)
    ckpt = save_checkpoint(tmp_path / "fd.safetensors", {k: v.half() for k, v in m.state_dict().items()},
                           m.config_dict(), model="futuredepth")
    frames = [np.random.default_rng(i).random((30, 44, 3)).astype(np.float32) for i in range(4)]
    res = list(estimate(frames, "futuredepth", checkpoint=ckpt))
    assert len(res) == 4 and res[0].depth.shape == (30, 44) and res[0].kind == "inverse"
    one = list(estimate(frames[:1], "futuredepth", checkpoint=ckpt))  # one frame: a static window, still works
    assert len(one) == 1 and np.isfinite(one[0].depth).all()
    p = PrimeDepth(PrimeDepthConfig(backbone=TINY_UNET, width=16, process_size=32))
    wrong = save_checkpoint(tmp_path / "pd.safetensors", p.state_dict(), p.config_dict(), model="primedepth")
    with pytest.raises(InputError):
        list(estimate(frames, "futuredepth", checkpoint=wrong))
    with pytest.raises(InputError, match="no checkpoint"):
        list(estimate(frames, "futuredepth", checkpoint=tmp_path / "missing.safetensors"))


def test_sd_backbone_needs_a_local_folder(tmp_path):
    from vision3d.depth.models.sd_backbone import SDBackbone

    with pytest.raises(InputError, match="diffusers layout"):
        SDBackbone(tmp_path)
