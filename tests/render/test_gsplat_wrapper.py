"""The gsplat wrapper's bookkeeping (K shift, channels, background, depth, flow) against a stand-in for
``gsplat.rasterization`` that follows gsplat's documented conventions, so it runs without CUDA."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from tests.render.scenes import cameras, random_scene
from vision3d.render import activated, rasterize
from vision3d.render import gsplat_backend
from vision3d.render.composite import composite
from vision3d.render.projection import project_gaussians
from vision3d.render.sh import eval_sh


def fake_rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane=0.01,
                       far_plane=1e10, eps2d=0.3, render_mode="RGB", backgrounds=None, packed=True, sh_degree=None):
    """gsplat's contract: K with pixel centres at +0.5, colours (N,D)/(C,N,D) or SH with sh_degree, RGB+ED
    appends the expected depth, backgrounds (C,D), meta with means2d in gsplat pixels."""
    K = Ks.clone()
    K[:, :2, 2] -= 0.5  # back to integer pixel centres for our projection
    p = project_gaussians(means, quats, scales, opacities, viewmats, K, width, height, near_plane, far_plane, eps2d)
    C = len(viewmats)
    if sh_degree is not None:
        centers = -(viewmats[:, :3, :3].transpose(-1, -2) @ viewmats[:, :3, 3:])[..., 0]
        colors = eval_sh(sh_degree, colors, means[None] - centers[:, None])
    elif colors.dim() == 2:
        colors = colors[None].expand(C, -1, -1)
    if render_mode == "ED":
        colors = p.depths[..., None]
    else:
        colors = torch.cat([colors, p.depths[..., None]], -1)
    img, alpha, _ = composite(p, colors, width, height)
    if backgrounds is not None:
        bg = torch.cat([backgrounds, backgrounds.new_zeros(C, colors.shape[-1] - backgrounds.shape[-1])], -1)
        img = img + (1 - alpha)[..., None] * bg[:, None, None]
    img = torch.cat([img[..., :-1], img[..., -1:] / alpha[..., None].clamp_min(1e-10)], -1)
    return img, alpha[..., None], {"means2d": p.means2d + 0.5, "radii": p.radii, "depths": p.depths}


def _fake(monkeypatch):
    monkeypatch.setattr(gsplat_backend, "_import_gsplat", lambda: SimpleNamespace(rasterization=fake_rasterization))


def _call(g, V, K, W, H, **kw):
    a = activated(g)
    opts = dict(mode="rgb", background=None, features=None, flow_uv=None, sh_degree=None, near=0.01, far=1e10,
                eps2d=0.3, retain_screen_grad=False, max_pairs=4_000_000)
    opts.update(kw)
    return gsplat_backend.render_gsplat(a, V, K, W, H, **opts)


def test_wrapper_matches_torch_backend(monkeypatch):
    _fake(monkeypatch)
    W, H = 32, 24
    g = random_scene(60, seed=11)
    V, K = cameras(W, H, 2)
    bg = torch.tensor([0.2, 0.3, 0.4])
    from vision3d.render.projection import project_points

    moved = g["means"] + 0.05
    ref = rasterize(g, (V, K), W, H, background=bg, features=g["means"], flow_means=moved, backend="torch")
    out = _call(g, V, K, W, H, background=bg.expand(2, 3), features=g["means"], flow_uv=project_points(moved, V, K))
    assert out.backend == "gsplat"
    for name in ("colors", "alpha", "depth", "features", "flow", "means2d"):
        assert float((getattr(out, name) - getattr(ref, name)).abs().max()) < 1e-5, name
    assert torch.equal(out.radii, ref.radii)


def test_wrapper_sh_and_depth_mode(monkeypatch):
    _fake(monkeypatch)
    W, H = 24, 20
    g = random_scene(40, seed=12)
    g = {k: v for k, v in g.items() if k != "colors"}
    g["sh"] = torch.randn(40, 4, 3) * 0.3
    V, K = cameras(W, H, 1)
    ref = rasterize(g, (V, K), W, H, backend="torch")
    out = _call(g, V, K, W, H, sh_degree=1)
    assert float((out.colors - ref.colors).abs().max()) < 1e-5
    d = _call(g, V, K, W, H, mode="depth")
    assert d.colors is None and float((d.depth - ref.depth).abs().max()) < 1e-4
