"""The render API (``auto`` = the compiled cpu backend here; ``torch`` where named) against a brute-force
reference, analytic cases, gradients and bad input. ``test_cpu_backend.py`` checks cpu against torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.render.reference import render_dense
from tests.render.scenes import cameras, random_scene
from vision3d.core.camera import Cameras, intrinsics
from vision3d.core.gaussians import Gaussians, rgb_to_sh0
from vision3d.errors import InputError
from vision3d.render import activated, rasterize

BG = torch.tensor([0.2, 0.3, 0.4])


def test_matches_dense_reference():
    W, H = 40, 30
    g = random_scene(80)
    V, K = cameras(W, H, 3)
    out = rasterize(g, (V, K), W, H, background=BG, backend="torch")
    a = activated(g)
    feats = torch.cat([a["colors"][None].expand(3, -1, -1), out.depths[..., None]], -1)
    ref, ref_alpha = render_dense(a, V, K, W, H, feats)
    colors = ref[..., :3] + (1 - ref_alpha)[..., None] * BG
    assert out.backend == "torch"
    assert out.colors.shape == (3, H, W, 3)
    assert float((out.colors - colors).abs().max()) < 1e-5
    assert float((out.alpha - ref_alpha).abs().max()) < 1e-5
    depth = ref[..., 3] / ref_alpha.clamp_min(1e-10)
    assert float((out.depth - depth).abs().max()) < 1e-4
    assert out.alpha.max() > 0.9  # the scene really covers pixels


def test_bands_give_the_same_image():
    W, H = 48, 40
    g = random_scene(200, seed=3)
    cams = cameras(W, H, 1)
    one = rasterize(g, cams, W, H, background=BG, backend="torch")
    banded = rasterize(g, cams, W, H, background=BG, max_pairs=500, backend="torch")
    assert float((one.colors - banded.colors).abs().max()) < 1e-6


def test_single_gaussian_centre_pixel():
    """An isotropic Gaussian straight ahead: the centre pixel is o·c + (1−o)·bg and depth is its z."""
    W = H = 21
    z, o = 2.0, 0.7
    g = {"means": torch.tensor([[0.0, 0.0, z]]), "quats": torch.tensor([[1.0, 0, 0, 0]]),
         "log_scales": torch.full((1, 3), math.log(0.05)), "opacity_logits": torch.tensor([math.log(o / (1 - o))]),
         "colors": torch.tensor([[1.0, 0.5, 0.0]])}
    V = torch.eye(4)[None]
    K = torch.tensor(intrinsics(40, 40, 10, 10), dtype=torch.float32)[None]
    out = rasterize(g, (V, K), W, H, background=BG)
    centre = out.colors[0, 10, 10]
    assert torch.allclose(centre, o * g["colors"][0] + (1 - o) * BG, atol=1e-6)
    assert abs(float(out.depth[0, 10, 10]) - z) < 1e-5
    assert torch.allclose(out.means2d[0, 0], torch.tensor([10.0, 10.0]))
    # symmetric about the centre pixel
    assert torch.allclose(out.alpha[0], out.alpha[0].flip(0), atol=1e-6)
    # σ_px² = (f·s/z)² + 0.3 (the low-pass): check one pixel away
    var = (40 * 0.05 / z) ** 2 + 0.3
    assert abs(float(out.alpha[0, 10, 11]) - o * math.exp(-0.5 / var)) < 1e-5


def test_flow_of_a_translation():
    """Gaussians moved sideways by dx at depth z: the composited flow is f·dx/z wherever alpha is 1."""
    W, H = 32, 24
    n = 400
    gen = torch.Generator().manual_seed(0)
    means = torch.cat([(torch.rand(n, 2, generator=gen) - 0.5) * torch.tensor([5.0, 4.0]), torch.full((n, 1), 4.0)], 1)
    g = {"means": means, "quats": torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
         "log_scales": torch.full((n, 3), math.log(0.3)), "opacity_logits": torch.full((n,), 5.0),
         "colors": torch.rand(n, 3, generator=gen)}
    f = 30.0
    V = torch.eye(4)[None]
    K = torch.tensor(intrinsics(f, f, 15.5, 11.5), dtype=torch.float32)[None]
    shift = torch.tensor([0.1, -0.05, 0.0])
    out = rasterize(g, (V, K), W, H, flow_means=means + shift)
    full = out.alpha > 0.99
    assert full.float().mean() > 0.5
    flow = out.flow[full] / out.alpha[full][:, None]
    expect = torch.tensor([f * 0.1 / 4.0, f * -0.05 / 4.0])
    assert float((flow - expect).abs().max()) < 1e-4
    # a camera moving instead of the Gaussians gives the opposite flow
    V2 = V.clone()
    V2[0, :3, 3] = -shift
    cam = rasterize(g, (V, K), W, H, flow_viewmats=V2)
    assert float((cam.flow[full] / cam.alpha[full][:, None] + expect).abs().max()) < 1e-4


def test_batched_cameras_equal_single_renders():
    W, H = 24, 20
    g = random_scene(60, seed=5)
    V, K = cameras(W, H, 3)
    both = rasterize(g, (V, K), W, H, background=BG)
    for i in range(3):
        one = rasterize(g, (V[i:i + 1], K[i:i + 1]), W, H, background=BG)
        assert float((one.colors[0] - both.colors[i]).abs().max()) < 1e-6


def test_sh_degree0_equals_rgb_and_view_dependence():
    W, H = 24, 20
    g = random_scene(50, seed=2)
    cams = cameras(W, H, 2)
    rgb = rasterize(g, cams, W, H)
    sh = {k: v for k, v in g.items() if k != "colors"}
    sh["sh"] = torch.as_tensor(rgb_to_sh0(g["colors"].numpy()), dtype=torch.float32)[:, None, :]
    assert float((rasterize(sh, cams, W, H).colors - rgb.colors).abs().max()) < 1e-5
    # degree 1: a view-dependent term changes the colour between the two cameras differently
    sh1 = dict(sh, sh=torch.cat([sh["sh"], torch.randn(50, 3, 3) * 0.3], 1))
    deg1 = rasterize(sh1, cams, W, H)
    deg0 = rasterize(sh1, cams, W, H, sh_degree=0)
    assert float((deg1.colors - deg0.colors).abs().max()) > 1e-3
    assert float((deg0.colors - rgb.colors).abs().max()) < 1e-5


def test_gaussians_and_cameras_objects():
    W, H = 20, 16
    g = random_scene(30, seed=7)
    V, K = cameras(W, H, 2)
    obj = Gaussians(**{k: v.numpy() for k, v in g.items()})
    cams = Cameras(K.numpy(), V.numpy(), W, H)
    a = rasterize(obj, cams)
    b = rasterize(g, (V, K), W, H)
    assert a.colors.shape == (2, H, W, 3)
    assert float((a.colors - b.colors).abs().max()) < 1e-5


def test_depth_mode_and_features():
    W, H = 20, 16
    g = random_scene(30, seed=8)
    cams = cameras(W, H, 1)
    out = rasterize(g, cams, W, H, mode="depth", features=g["means"])
    assert out.colors is None
    full = rasterize(g, cams, W, H)
    assert torch.allclose(out.depth, full.depth, atol=1e-5)
    assert out.features.shape == (1, H, W, 3)


def test_gradcheck_float64():
    dt = torch.float64
    W, H = 12, 10
    g = random_scene(6, seed=1, dtype=dt, spread=0.4, log_scale=-1.5)
    V, K = cameras(W, H, 1, dtype=dt, focal=12.0)
    V = V.requires_grad_()
    params = [g[k].requires_grad_() for k in ("means", "quats", "log_scales", "opacity_logits", "colors")]

    def f(means, quats, ls, ol, col, viewmats):
        out = rasterize({"means": means, "quats": quats, "log_scales": ls, "opacity_logits": ol, "colors": col},
                        (viewmats, K), W, H, background=torch.tensor([0.1, 0.2, 0.3], dtype=dt),
                        features=means[:, :2] * 1.0, flow_means=means + 0.1)
        return out.colors, out.depth, out.alpha, out.features, out.flow

    assert torch.autograd.gradcheck(f, (*params, V), eps=1e-6, atol=1e-5)


def test_screen_grad_for_densification():
    W, H = 24, 20
    g = {k: v.requires_grad_() for k, v in random_scene(40, seed=4).items()}
    out = rasterize(g, cameras(W, H, 2), W, H, retain_screen_grad=True)
    out.colors.sum().backward()
    grad = out.screen_grad()
    assert grad.shape == (2, 40, 2)
    assert float(grad[out.visible].abs().sum()) > 0
    assert float(grad[~out.visible].abs().sum()) == 0


# ---- bad and degenerate input ------------------------------------------------------------------------------


def test_zero_gaussians_render_the_background():
    g = {k: v[:0] for k, v in random_scene(3).items()}
    out = rasterize(g, cameras(16, 12, 1), 16, 12, background=BG)
    assert torch.allclose(out.colors, BG.expand(1, 12, 16, 3))
    assert float(out.alpha.abs().max()) == 0


def test_gaussians_behind_the_camera_are_culled():
    g = random_scene(20)
    g["means"] = g["means"] * 0.1 + torch.tensor([0.0, 0.0, -5.0])  # camera at the origin looks down +z
    V = torch.eye(4)[None]
    K = torch.tensor(intrinsics(16, 16, 7.5, 5.5), dtype=torch.float32)[None]
    out = rasterize(g, (V, K), 16, 12, background=BG)
    assert not bool(out.visible.any())
    assert torch.allclose(out.colors, BG.expand(1, 12, 16, 3))


def test_nan_parameters_are_a_clear_error():
    g = random_scene(10)
    g["means"][3, 1] = float("nan")
    with pytest.raises(InputError, match="1 Gaussians have NaN or inf means"):
        rasterize(g, cameras(16, 12, 1), 16, 12)


def test_degenerate_scales_render_finite():
    g = random_scene(10)
    g["log_scales"][:] = -float("inf")  # zero scales: the 0.3 px² low-pass keeps them renderable
    g["log_scales"] = g["log_scales"].clamp_min(-80)
    out = rasterize(g, cameras(16, 12, 1), 16, 12)
    assert bool(torch.isfinite(out.colors).all())
    g["log_scales"][:, 2] = 5.0  # flat/needle shapes
    assert bool(torch.isfinite(rasterize(g, cameras(16, 12, 1), 16, 12).colors).all())


@pytest.mark.parametrize("bad", ["zero_focal", "nan_pose", "shape"])
def test_bad_cameras(bad):
    V, K = cameras(16, 12, 1)
    if bad == "zero_focal":
        K[0, 0, 0] = 0
    elif bad == "nan_pose":
        V[0, 0, 3] = float("nan")
    else:
        V = V[:, :3]
    with pytest.raises(InputError):
        rasterize(random_scene(5), (V, K), 16, 12)


def test_bad_options():
    g, cams = random_scene(5), cameras(16, 12, 1)
    with pytest.raises(InputError, match="unknown render backend"):
        rasterize(g, cams, 16, 12, backend="vulkan")
    with pytest.raises(InputError, match="render size"):
        rasterize(g, cams, 0, 12)
    with pytest.raises(InputError, match="near/far"):
        rasterize(g, cams, 16, 12, near=2.0, far=1.0)
    with pytest.raises(InputError, match="exactly one of colors"):
        rasterize({k: v for k, v in g.items() if k != "colors"}, cams, 16, 12)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="gsplat backend is unavailable"):
            rasterize(g, cams, 16, 12, backend="gsplat")


def test_auto_backend_on_cpu_is_the_compiled_one():
    out = rasterize(random_scene(5), cameras(16, 12, 1), 16, 12, backend="auto")
    assert out.backend == "cpu"


def test_memory_stays_bounded_with_large_gaussians():
    """Huge screen-filling Gaussians go through in bands; the result matches one big band."""
    g = random_scene(50, seed=9, log_scale=-0.5)
    cams = cameras(64, 48, 1)
    a = rasterize(g, cams, 64, 48, max_pairs=20_000, backend="torch")
    b = rasterize(g, cams, 64, 48, backend="torch")
    assert a.n_pairs == b.n_pairs
    assert float((a.colors - b.colors).abs().max()) < 1e-6
    assert np.isfinite(a.colors.numpy()).all()
