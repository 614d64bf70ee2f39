"""CompactFlowNet: shapes, exact building blocks (warp, cost volume), loss, gradients, checkpoints, a tiny overfit,
and ONNX export parity (when onnx/onnxruntime are installed)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from vision3d.errors import InputError
from vision3d.flow.models.blocks import backward_warp, cost_volume
from vision3d.flow.models.compactflownet import CompactFlowNet, CompactFlowNetConfig, count_parameters


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP spinning with 2 threads made steps 20-50x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model() -> CompactFlowNet:
    torch.manual_seed(0)
    return CompactFlowNet()


def test_interface_attributes(model):
    assert model.name == "compactflownet" and model.frames_per_clip == 2
    assert model.stride == 32 and isinstance(model.config, CompactFlowNetConfig)
    assert CompactFlowNet.config_class is CompactFlowNetConfig   # scripts/train_flow.py picks presets through it


@pytest.mark.parametrize("b,h,w", [(1, 32, 32), (2, 64, 96), (1, 96, 64)])
def test_eval_output_shape(model, b, h, w):
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(b, 2, 3, h, w))
    assert out.shape == (b, 1, 2, h, w) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_train_outputs_coarse_to_fine(model):
    model.train()
    outs = model(torch.rand(2, 2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 2, 2, 3), (2, 2, 4, 6), (2, 2, 8, 12), (2, 2, 16, 24)]
    model.eval()


def test_input_checks(model):
    with pytest.raises(InputError, match="multiples of 32"):
        model(torch.rand(1, 2, 3, 48, 64))
    with pytest.raises(InputError, match=r"\(B,2,3,H,W\)"):
        model(torch.rand(1, 3, 3, 64, 64))


def test_backward_warp_integer_shift_is_exact():
    torch.manual_seed(1)
    img = torch.rand(2, 3, 9, 11)
    dx, dy = 2, -1
    flow = torch.empty(2, 2, 9, 11)
    flow[:, 0], flow[:, 1] = dx, dy
    out = backward_warp(img, flow)
    # out[y, x] = img[y + dy, x + dx] where that is inside, else 0
    torch.testing.assert_close(out[:, :, 1:, :-2], img[:, :, :-1, 2:], atol=1e-6, rtol=0)
    assert out[:, :, :1].abs().max() == 0 and out[:, :, :, -2:].abs().max() == 0
    # zero flow is the identity
    torch.testing.assert_close(backward_warp(img, torch.zeros(2, 2, 9, 11)), img, atol=1e-6, rtol=0)


def test_cost_volume_matches_explicit_dot_products():
    torch.manual_seed(2)
    f1, f2 = torch.randn(2, 5, 6, 7), torch.randn(2, 5, 6, 7)
    d = 2
    cv = cost_volume(f1, f2, d)
    assert cv.shape == (2, (2 * d + 1) ** 2, 6, 7)
    ref = torch.zeros_like(cv)
    for iy, dy in enumerate(range(-d, d + 1)):
        for ix, dx in enumerate(range(-d, d + 1)):
            k = iy * (2 * d + 1) + ix
            for y in range(6):
                for x in range(7):
                    if 0 <= y + dy < 6 and 0 <= x + dx < 7:
                        ref[:, k, y, x] = (f1[:, :, y, x] * f2[:, :, y + dy, x + dx]).sum(1) / 5
    torch.testing.assert_close(cv, ref, atol=1e-5, rtol=1e-5)


def _gt(b=2, h=64, w=96, seed=3):
    g = torch.Generator().manual_seed(seed)
    flow = torch.randn(b, 1, 2, h, w, generator=g) * 4
    valid = (torch.rand(b, 1, h, w, generator=g) > 0.2).float()
    return flow, valid


@pytest.mark.parametrize("loss_type", ["l2", "robust"])
def test_loss_zero_at_gt_and_positive_otherwise(loss_type):
    m = CompactFlowNet(CompactFlowNetConfig(loss_type=loss_type))
    flow, valid = _gt()
    sizes = [(64 // 2 ** lv, 96 // 2 ** lv) for lv in m.config.levels]
    perfect = [t for t, _ in m.multiscale_targets(flow, valid, sizes)]
    assert m.loss(perfect, flow, valid).abs().item() < 1e-6
    off = [p.clone() for p in perfect]
    off[-1] = off[-1] + 0.5
    assert m.loss(off, flow, valid).item() > 1e-3
    # an error only where the ground truth is invalid costs nothing (full-resolution eval-style prediction)
    full = flow.clone() + 3.0 * (1 - valid).unsqueeze(2)
    assert m.loss(full, flow, valid).abs().item() < 1e-6


def test_loss_is_batch_size_insensitive(model):
    model.train()
    torch.manual_seed(4)
    frames = torch.rand(2, 2, 3, 64, 96)
    flow, valid = _gt()
    with torch.no_grad():
        outs = model(frames)
        one = model.loss(outs, flow, valid)
        two = model.loss([torch.cat([o, o]) for o in outs], torch.cat([flow, flow]), torch.cat([valid, valid]))
    model.eval()
    torch.testing.assert_close(one, two)


def test_gradients_reach_every_parameter():
    torch.manual_seed(5)
    m = CompactFlowNet().train()
    flow, valid = _gt(h=64, w=64)
    loss = m.loss(m(torch.rand(2, 2, 3, 64, 64)), flow, valid)
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_parameter_counts_and_paper_preset():
    assert 400_000 <= count_parameters(CompactFlowNet()) <= 1_500_000
    paper = CompactFlowNet(CompactFlowNetConfig.paper()).eval()
    assert 2_000_000 <= count_parameters(paper) <= 6_000_000
    assert paper.encoder.channels[1:] == [24, 40, 112, 160]   # MobileNetV3-Large's pyramid
    with torch.no_grad():
        assert paper(torch.rand(1, 2, 3, 32, 64)).shape == (1, 1, 2, 32, 64)


def test_config_round_trip_and_checkpoint(tmp_path, model):
    from vision3d.io.checkpoint import load_checkpoint, save_checkpoint

    cfg = CompactFlowNetConfig.paper(num_levels=5, context_channels=(), context_dilations=())
    assert CompactFlowNetConfig.from_dict(cfg.to_dict()) == cfg
    assert CompactFlowNet.from_config({}).config == CompactFlowNetConfig()
    assert CompactFlowNet.from_config({"size": "paper"}).config == CompactFlowNetConfig.paper()
    with pytest.raises(InputError, match="unknown CompactFlowNet config keys"):
        CompactFlowNet.from_config({"chanels": 3})
    path = save_checkpoint(tmp_path / "cfn", model.state_dict(), model.config_dict(), model.name)
    state, config, _ = load_checkpoint(path, model="compactflownet")
    again = CompactFlowNet.from_config(config).eval()
    again.load_state_dict(state, strict=True)
    x = torch.rand(1, 2, 3, 32, 64)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def test_tiny_overfit_reduces_loss():
    from vision3d.synth import SynthConfig, make_batch

    batch = make_batch(SynthConfig(width=64, height=64, n_frames=2), 2, rng=0).to_torch()
    torch.manual_seed(0)
    m = CompactFlowNet().train()
    with torch.no_grad():   # the loss of predicting zero flow everywhere
        zero = m.loss([torch.zeros_like(o) for o in m(batch["images"])], batch["flow"], batch["valid"]).item()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):
        loss = m.loss(m(batch["images"]), batch["flow"], batch["valid"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert min(losses[-5:]) < 0.7 * losses[0], losses
    assert min(losses[-5:]) < 0.8 * zero, (zero, losses)   # it learned flow, not just to shrink its output


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
                    reason="onnx/onnxruntime not installed (the `export` extra)")
def test_onnx_export_matches_torch(tmp_path, model):
    import onnxruntime as ort

    model.eval()
    x = torch.rand(1, 2, 3, 64, 96)
    path = tmp_path / "cfn.onnx"
    # the TorchScript-based exporter: seconds here; the dynamo exporter gives the same graph ops but takes minutes
    torch.onnx.export(model, (x,), str(path), opset_version=17, input_names=["frames"], output_names=["flow"],
                      dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"frames": x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    assert got.shape == ref.shape == (1, 1, 2, 64, 96)
    assert np.abs(got - ref).max() < 1e-4
