"""The compiled ``cpu`` backend (numba tile kernels) against the vectorised ``torch`` backend: same images and
gradients on random scenes, several cameras, extra channels, float64 gradcheck, edge cases, fallback."""

from __future__ import annotations

import pytest
import torch

from tests.render.scenes import cameras, random_scene
from vision3d.errors import InputError
from vision3d.render import cpu_kernels, rasterize

BG = torch.tensor([0.2, 0.3, 0.4])


def _both(g, cams, W, H, **kw):
    out = {}
    for be in ("torch", "cpu"):
        leaves = {k: v.detach().clone().requires_grad_(True) for k, v in g.items()}
        r = rasterize(leaves, cams, W, H, backend=be, **kw)
        loss = r.depth.sum() * 0.1 + r.alpha.square().sum()
        if r.colors is not None:
            loss = loss + (r.colors * torch.linspace(0.5, 1.5, 3)).sum()
        for extra in (r.features, r.flow):
            if extra is not None:
                loss = loss + extra.sin().sum()
        loss.backward()
        out[be] = (r, {k: v.grad for k, v in leaves.items()})
    return out["torch"], out["cpu"]


@pytest.mark.parametrize("n,log_scale,ncam", [(150, -2.5, 1), (400, -2.0, 3), (60, -0.5, 2)])
def test_cpu_matches_torch(n, log_scale, ncam):
    W, H = 53, 37  # not multiples of the tile size
    g = random_scene(n, seed=n, log_scale=log_scale)
    (a, ga), (b, gb) = _both(g, cameras(W, H, ncam), W, H, background=BG)
    assert b.backend == "cpu" and a.backend == "torch"
    assert float(a.alpha.max()) > 0.5
    for name in ("colors", "alpha"):
        assert float((getattr(a, name) - getattr(b, name)).abs().max()) < 1e-5, name
    assert float((a.depth - b.depth).abs().max()) < 1e-4
    for k in ga:
        scale = float(ga[k].abs().max())
        assert scale > 0, k
        assert float((ga[k] - gb[k]).abs().max()) < 1e-4 * scale, k


def test_cpu_features_flow_and_depth_mode():
    W, H = 30, 22
    g = random_scene(80, seed=3)
    cams = cameras(W, H, 2)
    (a, ga), (b, gb) = _both(g, cams, W, H, features=g["means"][:, :2] * 1.0, flow_means=g["means"] + 0.05)
    assert float((a.features - b.features).abs().max()) < 1e-5
    assert float((a.flow - b.flow).abs().max()) < 1e-4
    assert float((ga["means"] - gb["means"]).abs().max()) < 1e-4 * float(ga["means"].abs().max())
    (a, _), (b, _) = _both(g, cams, W, H, mode="depth")
    assert b.colors is None and float((a.depth - b.depth).abs().max()) < 1e-4


def test_cpu_gradcheck_float64():
    dt = torch.float64
    W, H = 12, 10
    g = random_scene(6, seed=1, dtype=dt, spread=0.4, log_scale=-1.5)
    V, K = cameras(W, H, 1, dtype=dt, focal=12.0)
    params = [g[k].requires_grad_() for k in ("means", "quats", "log_scales", "opacity_logits", "colors")]

    def f(means, quats, ls, ol, col):
        out = rasterize({"means": means, "quats": quats, "log_scales": ls, "opacity_logits": ol, "colors": col},
                        (V, K), W, H, background=torch.tensor([0.1, 0.2, 0.3], dtype=dt), backend="cpu")
        return out.colors, out.depth, out.alpha

    assert torch.autograd.gradcheck(f, tuple(params), eps=1e-6, atol=1e-5)


def test_cpu_opaque_stack_stops_early_like_torch():
    """Many opaque Gaussians on one spot: pixels saturate (transmittance cut-off) identically."""
    n = 300
    g = {"means": torch.randn(n, 3) * 0.02, "quats": torch.randn(n, 4), "log_scales": torch.full((n, 3), -1.0),
         "opacity_logits": torch.full((n,), 8.0), "colors": torch.rand(n, 3)}
    (a, ga), (b, gb) = _both(g, cameras(24, 20, 1), 24, 20)
    assert float(a.alpha.max()) > 0.999
    assert float((a.colors - b.colors).abs().max()) < 1e-5
    assert float((ga["colors"] - gb["colors"]).abs().max()) < 1e-4 * float(ga["colors"].abs().max())


def test_cpu_empty_and_offscreen():
    g = random_scene(5)
    g["means"] = g["means"] + torch.tensor([0.0, 0.0, -10.0])  # all behind the cameras
    out = rasterize(g, cameras(16, 12, 1), 16, 12, background=BG, backend="cpu")
    assert torch.allclose(out.colors, BG.expand_as(out.colors))
    assert float(out.alpha.abs().max()) == 0


def test_cpu_backend_unavailable(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "AVAILABLE", False)
    monkeypatch.setattr(cpu_kernels, "WHY", "numba is not installed")
    assert rasterize(random_scene(5), cameras(16, 12, 1), 16, 12).backend == "torch"
    with pytest.raises(InputError, match="cpu backend is unavailable"):
        rasterize(random_scene(5), cameras(16, 12, 1), 16, 12, backend="cpu")
