"""Gaussians, FlowField and DepthMap: shapes, activations, validity and bad values."""

from __future__ import annotations

import numpy as np
import pytest

from vision3d.core import DepthMap, FlowField, Gaussians
from vision3d.core.gaussians import rgb_to_sh0, sh0_to_rgb
from vision3d.errors import InputError


def test_gaussians_from_points_and_covariance():
    rng = np.random.default_rng(0)
    g = Gaussians.from_points(rng.normal(size=(10, 3)), rng.uniform(size=(10, 3)), scale=0.1, opacity=0.3)
    assert len(g) == 10 and g.sh_degree == 0
    assert np.allclose(g.opacities, 0.3, atol=1e-5) and np.allclose(g.scales, 0.1, atol=1e-6)
    assert np.allclose(g.covariances(), np.eye(3) * 0.01, atol=1e-6)
    both = Gaussians.concat([g, g.subset(slice(0, 3))])
    assert len(both) == 13


def test_gaussians_sh_and_finite_mask():
    n = 4
    sh = np.zeros((n, 16, 3), np.float32)
    sh[:, 0] = rgb_to_sh0(np.full((n, 3), 0.25))
    g = Gaussians(np.zeros((n, 3)), np.tile([1, 0, 0, 0], (n, 1)), np.zeros((n, 3)), np.zeros(n), sh=sh)
    assert g.sh_degree == 3 and np.allclose(g.rgb, 0.25)
    assert np.allclose(sh0_to_rgb(rgb_to_sh0(0.7)), 0.7)
    g.means[1, 0] = np.nan
    g.quats[2] = 0
    assert g.finite_mask().tolist() == [True, False, False, True]


def test_gaussians_torch_round_trip():
    g = Gaussians.from_points(np.ones((3, 3)), np.zeros((3, 3)))
    t = g.to_torch(requires_grad=True)
    assert t["means"].requires_grad and t["means"].dtype.is_floating_point
    assert np.allclose(Gaussians.from_torch(t).means, g.means)


@pytest.mark.parametrize("kw, msg", [
    ({"means": np.zeros((2, 2))}, "means"),
    ({"colors": None}, "exactly one"),
    ({"sh": np.zeros((2, 5, 3))}, "exactly one"),
])
def test_gaussians_bad_shapes(kw, msg):
    base = dict(means=np.zeros((2, 3)), quats=np.zeros((2, 4)), log_scales=np.zeros((2, 3)),
                opacity_logits=np.zeros(2), colors=np.zeros((2, 3)))
    base.update(kw)
    with pytest.raises(InputError, match=msg):
        Gaussians(**base)


def test_flowfield():
    f = np.zeros((2, 4, 5), np.float32)
    f[0] = 3
    f[1] = 4
    f[:, 0, 0] = np.nan
    ff = FlowField(f)
    assert (ff.height, ff.width) == (4, 5)
    assert np.nanmax(ff.magnitude()) == 5
    assert ff.valid_mask().sum() == 19
    assert np.allclose(FlowField.from_hw2(ff.to_hw2()).flow, f, equal_nan=True)
    with pytest.raises(InputError, match="expected"):
        FlowField(np.zeros((4, 5, 2)))


def test_depthmap_invalid_values_become_missing():
    d = np.array([[1.0, 0.0], [np.nan, np.inf]], np.float32)
    dm = DepthMap(d, "metric")
    assert dm.valid.tolist() == [[True, False], [False, False]]
    with pytest.raises(InputError, match="no finite positive"):
        DepthMap(np.full((2, 2), np.nan)).require_valid()
    with pytest.raises(InputError, match="unknown depth kind"):
        DepthMap(d, "disparityish")
    inv = DepthMap(np.array([[0.5, 0.25]]), "inverse").to_metric()
    assert np.allclose(inv.depth, [[2, 4]])
    rel = DepthMap(np.array([[-1.0, 1.0]]), "relative")  # relative depth may be negative before alignment
    assert rel.valid.all()
