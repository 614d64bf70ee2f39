"""StreamFlow: shapes for T = 2/3/4, exact building blocks (convex upsampling, correlation lookup, ISC joint
attention), the zero-initialised temporal block, the sequence loss, gradients, checkpoints and a tiny overfit."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from vision3d.errors import InputError
from vision3d.flow.models.streamflow import StreamFlow, StreamFlowConfig, sequence_loss
from vision3d.flow.models.streamflow_decoder import (
    CorrPyramid,
    DepthwiseConv2d,
    GTRUpdateBlock,
    TemporalBlock,
    convex_upsample,
)
from vision3d.flow.models.streamflow_encoder import ISCEncoder


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on the shared 2-core machines OpenMP spin-waiting makes 2 threads ~30× slower here."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(T: int = 3, **kw) -> StreamFlowConfig:
    """A very small config for fast shape/gradient tests (the structure of paper(), narrower)."""
    base = {"T": T, "encoder_dims": (16, 32), "encoder_heads": (1, 2), "encoder_sr_ratios": (4, 2),
            "encoder_mlp_ratio": 2.0, "motion_dims": (32, 24, 16, 8), "k_conv": (1, 5), "update_k_conv": (1, 3),
            "corr_radius": 2, "iters": 3, "eval_iters": 4}
    return StreamFlowConfig(**{**base, **kw})


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------------ interface
def test_interface_and_default_is_small():
    m = StreamFlow()
    assert m.name == "streamflow" and m.stride == 8 and m.frames_per_clip == 3
    assert m.config == StreamFlowConfig.small() and m.config_class is StreamFlowConfig
    assert StreamFlowConfig.preset("paper") == StreamFlowConfig.paper()
    with pytest.raises(InputError):
        StreamFlowConfig.preset("huge")


@pytest.mark.parametrize("T,b,h,w", [(2, 1, 64, 64), (3, 2, 64, 96), (4, 1, 72, 64)])
def test_output_shapes(T, b, h, w):
    torch.manual_seed(0)
    m = StreamFlow(tiny(T))
    assert m.frames_per_clip == T
    x = torch.rand(b, T, 3, h, w)
    m.train()
    outs = m(x)
    assert isinstance(outs, list) and len(outs) == m.config.iters
    assert all(o.shape == (b, T - 1, 2, h, w) for o in outs)
    m.eval()
    with torch.no_grad():
        out = m(x)
        out2, low = m(x, iters=2, return_lowres=True)
        warm = m(x, iters=1, flow_init=low)
    assert isinstance(out, torch.Tensor) and out.shape == (b, T - 1, 2, h, w) and torch.isfinite(out).all()
    assert out2.shape == out.shape and low.shape == (b, T - 1, 2, h // 8, w // 8) and warm.shape == out.shape


def test_paper_forward_shape():
    torch.manual_seed(0)
    m = StreamFlow(StreamFlowConfig.paper()).eval()
    with torch.no_grad():
        out = m(torch.rand(1, 4, 3, 64, 64), iters=1)
    assert out.shape == (1, 3, 2, 64, 64) and torch.isfinite(out).all()


def test_bad_inputs_raise():
    m = StreamFlow(tiny(3)).eval()
    with pytest.raises(InputError):
        m(torch.rand(1, 2, 3, 64, 64))            # wrong T
    with pytest.raises(InputError):
        m(torch.rand(1, 3, 3, 64, 60))            # not a multiple of 8
    with pytest.raises(InputError):
        m(torch.rand(1, 3, 3, 32, 64))            # too small for the 4-level pyramid
    with pytest.raises(InputError):
        m(torch.rand(1, 3, 3, 64, 64), flow_init=torch.zeros(1, 2, 2, 4, 4))
    with pytest.raises(InputError):
        StreamFlow(tiny(1))
    with pytest.raises(InputError):
        StreamFlow.from_config({**tiny(3).to_dict(), "bogus": 1})


def test_parameter_counts():
    small, paper = n_params(StreamFlow(StreamFlowConfig.small())), n_params(StreamFlow(StreamFlowConfig.paper()))
    assert 0.5e6 < small < 1.5e6
    # Twins-SVT-L stages 1-2 ×2 (≈ 8.4 M) + GTR decoder (≈ 5.8 M) ≈ 14.2 M
    assert 12e6 < paper < 17e6


# ---------------------------------------------------------------------------------------- building blocks
def test_convex_upsampling_of_constant_is_exact():
    torch.manual_seed(0)
    flow = torch.empty(3, 2, 5, 7)
    flow[:, 0], flow[:, 1] = 1.25, -3.5
    mask = torch.randn(3, 9 * 64, 5, 7) * 5
    up = convex_upsample(flow, mask, 8)
    assert up.shape == (3, 2, 40, 56)
    assert torch.allclose(up[:, 0], torch.full_like(up[:, 0], 10.0), atol=1e-5)
    assert torch.allclose(up[:, 1], torch.full_like(up[:, 1], -28.0), atol=1e-5)


def test_correlation_lookup_matches_dot_products():
    torch.manual_seed(0)
    N, C, h, w, r = 2, 16, 8, 12, 3
    f1, f2 = torch.randn(N, C, h, w), torch.randn(N, C, h, w)
    corr = CorrPyramid(f1, f2, levels=4, radius=r)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    coords0 = torch.stack([xs, ys])[None].expand(N, -1, -1, -1)
    out = corr(coords0)
    k = 2 * r + 1
    assert out.shape == (N, 4 * k * k, h, w)
    dot = (f1 * f2).sum(1) / C ** 0.5
    assert torch.allclose(out[:, r * k + r], dot, atol=1e-5)                 # level 0, zero offset
    # level 0 at offset (dx, dy) = (1, 2): channel (dx + r)·k + (dy + r) (RAFT's order), inside pixels only
    dx, dy = 1, 2
    shifted = (f1[:, :, : h - dy, : w - dx] * f2[:, :, dy:, dx:]).sum(1) / C ** 0.5
    assert torch.allclose(out[:, (dx + r) * k + (dy + r), : h - dy, : w - dx], shifted, atol=1e-5)
    # a half-pixel lookup is the bilinear mix of its neighbours
    half = corr(coords0 + torch.tensor([0.5, 0.0]).view(1, 2, 1, 1))[:, r * k + r, :, : w - 1]
    assert torch.allclose(half, 0.5 * (dot[..., : w - 1] + out[:, (1 + r) * k + r, :, : w - 1]), atol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 9])
def test_depthwise_conv_fast_paths_match_conv2d(k):
    """Same outputs and gradients as nn.Conv2d (the 1×1 affine path, the custom CPU backward, channels-last)."""
    torch.manual_seed(0)
    dw = DepthwiseConv2d(6, k).double()
    ref = nn.Conv2d(6, 6, k, padding=k // 2, groups=6).double()
    ref.load_state_dict(dw.state_dict())
    x = torch.randn(2, 6, 9, 11, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 6, 9, 11, dtype=torch.float64)
    y, y_ref = dw(x), ref(x)
    assert torch.allclose(y, y_ref, atol=1e-10)
    grads = torch.autograd.grad(y, (x, dw.weight, dw.bias), g)
    grads_ref = torch.autograd.grad(y_ref, (x, ref.weight, ref.bias), g)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(grads, grads_ref))
    with torch.no_grad():
        assert torch.allclose(dw(x), y_ref, atol=1e-10)


def test_isc_encoder_attends_across_frames():
    """ISC: the features of frame 0 depend on frame 2 (joint attention over the T frames' tokens)."""
    torch.manual_seed(0)
    enc = ISCEncoder(dims=(16, 32), heads=(1, 2), depths=(2, 2), sr_ratios=(4, 2), mlp_ratio=2.0).eval()
    x = torch.rand(1, 3, 3, 64, 64)
    y = x.clone()
    y[:, 2] = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        fx, fy = enc(x), enc(y)
    assert fx.shape == (1, 3, 32, 8, 8)
    assert (fx[:, 0] - fy[:, 0]).abs().max() > 1e-4


# ------------------------------------------------------------------------------------------ temporal block
def test_temporal_block_is_identity_at_init():
    torch.manual_seed(0)
    blk = TemporalBlock(16, num_heads=2)
    x = torch.randn(2 * 3, 16, 4, 5)                         # B=2 clips × 3 flows
    assert torch.equal(blk(x, 3), x)


def test_zero_init_means_no_temporal_mixing_at_init_but_it_learns():
    """At init the temporal block passes each flow's motion features through untouched: the hidden state of flow
    t does not depend on flow s's correlation (only the joint flow head mixes flows). One gradient step later the
    block mixes flows."""
    torch.manual_seed(0)
    n, d, h, w = 3, 16, 4, 5
    blk = GTRUpdateBlock(hidden_dim=d, n_flows=n, corr_planes=36, motion_dims=(16, 16, 8, 8), k_conv=(1, 3),
                         update_k_conv=(1, 3))
    net, inp = torch.randn(n, d, h, w), torch.randn(n, d, h, w)
    flow = torch.randn(n, 2, h, w)
    attn = torch.softmax(torch.randn(n, 1, h * w, h * w), -1)
    corr = torch.randn(n, 36, h, w)
    corr2 = corr.clone()
    corr2[2] += torch.randn(36, h, w)                         # perturb flow 2 only
    with torch.no_grad():
        net_a, _, delta_a = blk(net, inp, corr, flow, attn)
        net_b, _, delta_b = blk(net, inp, corr2, flow, attn)
    assert torch.equal(net_a[:2], net_b[:2])                  # flows 0, 1 untouched by flow 2's motion
    assert not torch.allclose(delta_a[0], delta_b[0])         # ...but the joint flow head mixes the flows

    opt = torch.optim.SGD(blk.temporal.parameters(), lr=0.5)
    out = blk.temporal(torch.randn(n, d, h, w), n)
    (out * torch.randn_like(out)).sum().backward()
    assert blk.temporal.attn.proj.weight.grad.abs().sum() > 0 and blk.temporal.mlp.fc2.weight.grad.abs().sum() > 0
    opt.step()
    with torch.no_grad():
        m = torch.randn(n, d, h, w)
        m2 = m.clone()
        m2[2] += 1.0
        assert not torch.allclose(blk.temporal(m, n)[0], blk.temporal(m2, n)[0])   # now flow 0 sees flow 2


def test_zeroing_every_temporal_parameter_would_freeze_it():
    """The official code zeroes *all* parameters of the block (norms, qkv, fc1 too). Then every weight sees a zero
    input or a zero upstream weight, so only the two output biases ever get gradient: the block can never mix
    time steps. That is why we zero only the output projections."""
    torch.manual_seed(0)
    blk = TemporalBlock(16)
    for p in blk.parameters():
        nn.init.zeros_(p)
    x = torch.randn(6, 16, 3, 3)
    (blk(x, 3) * torch.randn(6, 16, 3, 3)).sum().backward()
    moving = {name for name, p in blk.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert moving == {"attn.proj.bias", "mlp.fc2.bias"}


# ----------------------------------------------------------------------------------------------------- loss
def test_sequence_loss_weights_and_masking():
    B, n, H, W = 2, 2, 8, 8
    gt = torch.randn(B, n, 2, H, W)
    valid = torch.ones(B, n, H, W)
    valid[0, 1, :4] = 0                                      # invalid rows of flow 1 ...
    gt_big = gt.clone()
    gt_big[1, 0, 0, 0, 0] = 500.0                            # ... and one pixel beyond MAX_FLOW
    errs = [1.0, 2.0, 4.0]
    preds = []
    for e in errs:
        p = gt_big.clone()
        p[:, :, 0] += e                                      # error e in x only → per-pixel L1 mean e / 2
        p[0, 1, 0, :4] += 1000.0                             # huge errors where invalid: must not count
        p[1, 0, 0, 0, 0] += 1000.0
        preds.append(p)
    loss = sequence_loss(preds, gt_big, valid, gamma=0.8, max_flow=400.0)
    expected = sum(0.8 ** (2 - i) * n * e / 2 for i, e in enumerate(errs))   # 0.64·1 + 0.8·2 + 4 = 6.24
    assert abs(loss.item() - expected) < 1e-4
    # one prediction (eval output) = weight 1; model.loss uses the config's gamma
    assert abs(sequence_loss(preds[-1], gt_big, valid).item() - n * errs[-1] / 2) < 1e-4
    m = StreamFlow(tiny(3))
    assert abs(m.loss(preds, gt_big, valid).item() - expected) < 1e-4
    with pytest.raises(InputError):
        sequence_loss(preds, gt_big, valid[:, :1])


# ------------------------------------------------------------------------------------------------ training
def test_gradients_reach_all_parameters():
    torch.manual_seed(0)
    m = StreamFlow(tiny(3, iters=2)).train()
    x = torch.rand(1, 3, 3, 64, 64)
    gt, valid = torch.randn(1, 2, 2, 64, 64), torch.ones(1, 2, 64, 64)
    opt = torch.optim.SGD(m.parameters(), lr=1e-2)
    m.loss(m(x), gt, valid).backward()
    assert all(p.grad is not None for p in m.parameters())
    # zero at init only behind a zero-initialised gate: GMA's γ = 0 and the temporal block's output projections
    gated = {name for name, p in m.named_parameters() if p.grad.abs().sum() == 0}
    allowed = ("att.", "update_block.aggregator.to_v", "update_block.temporal.")
    assert all(name.startswith(allowed) for name in gated), gated
    opt.step()
    opt.zero_grad()
    m.loss(m(x), gt, valid).backward()
    dead = [name for name, p in m.named_parameters() if p.grad.abs().sum() == 0]
    assert not dead, dead


def test_checkpoint_round_trip(tmp_path):
    from vision3d.io.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    m = StreamFlow(tiny(4)).eval()
    cfg = json.loads(json.dumps(m.config_dict()))
    path = save_checkpoint(tmp_path / "sf", m.state_dict(), cfg, model="streamflow")
    state, config, _ = load_checkpoint(path, model="streamflow")
    m2 = StreamFlow.from_config(config).eval()
    m2.load_state_dict(state, strict=True)
    assert m2.config == m.config and m2.frames_per_clip == 4
    x = torch.rand(1, 4, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))


def test_tiny_overfit_on_one_synthetic_batch():
    from vision3d.synth import SynthConfig, make_batch

    torch.manual_seed(0)
    batch = make_batch(SynthConfig(width=64, height=64, n_frames=3), 2, rng=0).to_torch()
    x, gt, valid = batch["images"], batch["flow"], batch["valid"]
    m = StreamFlow(StreamFlowConfig.small()).train()
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3, weight_decay=0.0)
    losses = []
    for _ in range(30):
        loss = m.loss(m(x, iters=4), gt, valid)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.5 * first, losses
