"""The torch backend against gsplat on a CUDA GPU: images within 1e-3, gradients with cosine ≥ 0.99."""

from __future__ import annotations

import pytest
import torch

from tests.render.scenes import cameras, random_scene
from vision3d.render import rasterize

pytestmark = pytest.mark.cuda


def _scene(n, seed):
    g = random_scene(n, seed=seed, spread=0.8, log_scale=-3.0)
    return {k: v.cuda().requires_grad_() for k, v in g.items()}


@pytest.mark.parametrize("n,size", [(2000, (96, 64)), (20000, (256, 192))])
def test_torch_matches_gsplat(n, size):
    pytest.importorskip("gsplat")
    W, H = size
    V, K = (t.cuda() for t in cameras(W, H, 2))
    bg = torch.tensor([0.1, 0.2, 0.3], device="cuda")
    outs, grads = {}, {}
    for backend in ("gsplat", "torch"):
        g = _scene(n, 0)
        out = rasterize(g, (V, K), W, H, backend=backend, background=bg, features=g["means"].detach(),
                        flow_means=g["means"].detach() + 0.05)
        loss = (out.colors * torch.linspace(0, 1, W, device="cuda")[:, None]).sum() + out.depth.sum() * 0.01
        loss.backward()
        outs[backend] = out
        grads[backend] = torch.cat([g[k].grad.reshape(-1) for k in g])
        assert out.backend == backend
    a, b = outs["gsplat"], outs["torch"]
    assert float((a.colors - b.colors).abs().max()) <= 1e-3
    assert float((a.alpha - b.alpha).abs().max()) <= 1e-3
    assert float((a.flow - b.flow).abs().max()) <= 1e-2
    assert torch.equal(a.radii, b.radii) or float((a.radii != b.radii).float().mean()) < 1e-3
    cos = torch.nn.functional.cosine_similarity(grads["gsplat"], grads["torch"], dim=0)
    assert float(cos) >= 0.99


def test_auto_picks_gsplat_on_cuda():
    pytest.importorskip("gsplat")
    out = rasterize(_scene(100, 1), tuple(t.cuda() for t in cameras(32, 24, 1)), 32, 24)
    assert out.backend == "gsplat"
