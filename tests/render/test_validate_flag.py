"""``rasterize(validate=False)`` skips the NaN/inf checks of the values (never the shape checks) and renders
finite input exactly as the validated call does."""

from __future__ import annotations

import pytest
import torch

from tests.render.scenes import cameras, random_scene
from vision3d.errors import InputError
from vision3d.render import activated, rasterize
from vision3d.render.api import camera_tensors

W, H = 32, 24
BG = torch.tensor([0.2, 0.3, 0.4])


def _render(g, cams, **kw):
    return rasterize(g, cams, W, H, background=BG, backend="torch", **kw)


def test_finite_input_renders_the_same_either_way():
    g = random_scene(60, seed=1)
    cams = cameras(W, H, 2)
    a = _render(g, cams)
    b = _render(g, cams, validate=False)
    assert float(a.alpha.max()) > 0.5                    # the scene covers pixels: the comparison means something
    for k in ("colors", "depth", "alpha", "means2d", "radii", "depths"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k


@pytest.mark.parametrize("key,value", [("means", float("nan")), ("means", float("inf")),
                                       ("log_scales", float("nan")), ("colors", float("nan")),
                                       ("opacity_logits", float("nan"))])
def test_non_finite_gaussians_raise_only_when_validating(key, value):
    g = random_scene(30, seed=2)
    g[key] = g[key].clone()
    g[key][3] = value
    with pytest.raises(InputError, match="NaN or inf"):
        _render(g, cameras(W, H, 1))
    out = _render(g, cameras(W, H, 1), validate=False)      # no exception; the image may hold NaN
    assert out.colors.shape == (1, H, W, 3)


def test_nan_viewmat_raises_only_when_validating():
    g = random_scene(30, seed=3)
    V, K = cameras(W, H, 1)
    V = V.clone()
    V[0, 0, 3] = float("nan")
    with pytest.raises(InputError, match="camera matrices contain NaN or inf"):
        _render(g, (V, K))
    out = _render(g, (V, K), validate=False)
    assert out.alpha.shape == (1, H, W)


def test_bad_focal_raises_only_when_validating():
    V, K = cameras(W, H, 1)
    K = K.clone()
    K[0, 0, 0] = -5.0
    with pytest.raises(InputError, match="focal length must be positive"):
        camera_tensors((V, K), torch.device("cpu"))
    V2, K2, _, _ = camera_tensors((V, K), torch.device("cpu"), validate=False)
    assert torch.equal(K2, K) and torch.equal(V2, V)


def test_activated_validate_flag():
    g = random_scene(10, seed=4)
    g["quats"] = g["quats"].clone()
    g["quats"][0, 0] = float("inf")
    with pytest.raises(InputError, match="1 Gaussians have NaN or inf quats"):
        activated(g)
    out = activated(g, validate=False)
    assert torch.isinf(out["quats"][0, 0])


def test_shape_checks_stay_without_validation():
    g = random_scene(10, seed=5)
    g["means"] = g["means"][:, :2]
    with pytest.raises(InputError, match="means has shape"):
        _render(g, cameras(W, H, 1), validate=False)
    V, K = cameras(W, H, 1)
    with pytest.raises(InputError, match="camera tensors have shapes"):
        _render(random_scene(10), (V[:, :3], K), validate=False)
