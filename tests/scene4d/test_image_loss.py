"""GFlow's image loss terms, eager and replayed (the CUDA graph's plumbing checked on the CPU with a stand-in graph
that fills the same buffers; the real graph in the CUDA test)."""

from __future__ import annotations

import pytest
import torch

from vision3d.scene4d.image_loss import ImageLoss


def _inputs(device="cpu", seed=0, h=24, w=32):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(h, w, 3, generator=g).to(device)
    D = (1 + torch.rand(h, w, generator=g)).to(device)
    Dw = (torch.rand(h, w, generator=g) / (h * w)).to(device)
    mask = (torch.rand(h, w, generator=g) > 0.3).to(device)
    x = torch.rand(h, w, 5, generator=g).to(device).requires_grad_(True)     # stands for Gaussian parameters
    return gt, D, Dw, mask, x


def _render(x):
    """Colours, depth and alpha that depend on ``x`` (so gradients reach it through all three)."""
    return torch.sigmoid(x[..., :3]), 1 + x[..., 3].exp(), torch.sigmoid(4 * x[..., 4])


class _StandInGraph:
    """What a captured graph does on replay: recompute the loss and its gradients into the same buffers."""

    def __init__(self, loss: ImageLoss, corrupt: bool = False):
        self.loss, self.corrupt = loss, corrupt

    def replay(self):
        l = self.loss
        with torch.enable_grad():
            val = l.terms(*l._in)
            grads = l._grads(val, l._in)
        with torch.no_grad():
            l._loss.copy_(val)
            for buf, g in zip(l._out, grads):
                buf.copy_(g * (2.0 if self.corrupt else 1.0))


def _stand_in(monkeypatch, corrupt=False):
    def capture(self):
        h, w = self.gt.shape[:2]
        self._in = [torch.zeros(h, w, 3, requires_grad=True), torch.zeros(h, w, requires_grad=True),
                    torch.zeros(h, w, requires_grad=True)]
        self._loss = torch.zeros(())
        self._out = [torch.zeros(h, w, 3), torch.zeros(h, w), torch.zeros(h, w)]
        self._graph = _StandInGraph(self, corrupt)

    monkeypatch.setattr(ImageLoss, "_capture", capture)


@pytest.mark.parametrize("masked", [False, True])
def test_replayed_loss_gives_the_eager_value_and_gradients(monkeypatch, masked):
    gt, D, Dw, mask, x = _inputs()
    eager = ImageLoss(gt, D, Dw, 1.0, 0.1, mask=mask if masked else None, graph=False)
    ref = eager(*_render(x)) + x.square().mean()               # plus an eager term, as the solver adds
    ref.backward()
    g_ref, x.grad = x.grad.clone(), None
    _stand_in(monkeypatch)
    replayed = ImageLoss(gt, D, Dw, 1.0, 0.1, mask=mask if masked else None, graph=True)
    assert replayed.graphed
    for _ in range(2):                                          # the checked first replay, then a plain one
        out = replayed(*_render(x)) + x.square().mean()
        out.backward()
        assert torch.allclose(out, ref, atol=1e-6)
        assert torch.allclose(x.grad, g_ref, atol=1e-7), float((x.grad - g_ref).abs().max())
        x.grad = None
    assert replayed.graphed


def test_a_replay_that_disagrees_falls_back_to_eager(monkeypatch):
    gt, D, Dw, _, x = _inputs()
    ref = ImageLoss(gt, D, Dw, 1.0, 0.1, graph=False)(*_render(x))
    _stand_in(monkeypatch, corrupt=True)
    bad = ImageLoss(gt, D, Dw, 1.0, 0.1, graph=True)
    with pytest.warns(UserWarning, match="disagrees"):
        out = bad(*_render(x))
    assert not bad.graphed and torch.allclose(out, ref)


def test_depth_term_is_left_out_without_weights():
    gt, D, _, _, x = _inputs()
    c, d, a = _render(x)
    with_depth = ImageLoss(gt, D, torch.full_like(D, 1.0 / D.numel()), 1.0, 0.1, graph=False)(c, d, a)
    without = ImageLoss(gt, None, None, 1.0, 0.1, graph=False)(c, d, a)
    assert float(with_depth - without) > 0.05                 # depths ~e^x + 1 vs targets in [1, 2]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("masked", [False, True])
def test_cuda_graph_matches_eager(masked):
    gt, D, Dw, mask, x = _inputs("cuda", h=120, w=160)
    eager = ImageLoss(gt, D, Dw, 1.0, 0.1, mask=mask if masked else None, graph=False)
    ref = eager(*_render(x))
    ref.backward()
    g_ref, x.grad = x.grad.clone(), None
    graphed = ImageLoss(gt, D, Dw, 1.0, 0.1, mask=mask if masked else None)
    assert graphed.graphed
    for _ in range(3):
        out = graphed(*_render(x))
        out.backward()
        assert graphed.graphed and torch.allclose(out, ref, rtol=1e-5)
        assert torch.allclose(x.grad, g_ref, rtol=1e-3, atol=1e-8)
        x.grad = None
