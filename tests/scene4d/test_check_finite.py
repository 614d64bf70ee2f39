"""``GFlow._check_finite``: the once-per-frame NaN/inf check that replaced the per-render one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vision3d.errors import InputError
from vision3d.scene4d.config import GFlowConfig
from vision3d.scene4d.optimize import FrameInput, GFlow
from vision3d.synth import SynthConfig, make_batch

W, H = 48, 32


@pytest.fixture(scope="module")
def clip():
    b = make_batch(SynthConfig(width=W, height=H, n_frames=2, texture_source="procedural",
                               static_camera_prob=0.0), 1, 7, backward=True)
    return b, b.images[0].transpose(0, 2, 3, 1)


def _solver(clip) -> GFlow:
    b, imgs = clip
    torch.manual_seed(0)
    cfg = GFlowConfig.fast().replace(n_init=300, backend="torch").scaled(0.05)
    g = GFlow(cfg, b.K[0], W, H, "metric")
    g.step(FrameInput(imgs[0], b.depth[0, 0], b.moving[0, 0]))
    return g


def _frame1(clip) -> FrameInput:
    b, imgs = clip
    return FrameInput(imgs[1], b.depth[0, 1], b.moving[0, 1], flow_in=b.flow[0, 0],
                      occluded_in=b.valid[0, 0] < 0.5, new_content=b.valid_bw[0, 0] < 0.5)


def test_healthy_solver_passes(clip):
    g = _solver(clip)
    assert g.n > 0 and all(bool(torch.isfinite(v).all()) for v in g.p.values())
    g._check_finite()                   # no exception
    g.step(_frame1(clip))               # step() runs the check after the frame's fit: a healthy frame passes
    g._check_finite()


@pytest.mark.parametrize("key,value", [("means", float("nan")), ("log_scales", float("inf")),
                                       ("colors", float("nan"))])
def test_non_finite_gaussian_raises(clip, key, value):
    g = _solver(clip)
    g.p[key] = g.p[key].detach().clone()
    g.p[key][1, 0] = value
    with pytest.raises(InputError, match=r"1 Gaussians became NaN or inf at frame 0"):
        g._check_finite()
    g.p[key][2, 0] = value
    with pytest.raises(InputError, match=r"2 Gaussians became NaN or inf"):
        g._check_finite()


def test_render_does_not_validate(clip):
    """The solver's own renders skip the value checks (the per-frame check catches NaN instead)."""
    g = _solver(clip)
    g.p["means"] = g.p["means"].detach().clone()
    g.p["means"][0] = float("nan")
    with torch.no_grad():
        out = g.render(g.poses[0])      # would raise InputError if rasterize validated the values
    assert out.colors.shape == (1, H, W, 3)


def test_step_checks_after_the_fit(clip, monkeypatch):
    """A Gaussian that turns NaN during a frame's optimisation stops ``step`` with an InputError naming the
    frame, instead of flowing silently into pruning and the saved scene."""
    g = _solver(clip)
    fit = GFlow._gaussian_step

    def poisoned(self, *a, **kw):
        info = fit(self, *a, **kw)
        self.p["means"] = self.p["means"].detach().clone()
        self.p["means"][0, 2] = float("nan")
        return info

    monkeypatch.setattr(GFlow, "_gaussian_step", poisoned)
    with pytest.raises(InputError, match="NaN or inf at frame 1") as e:
        g.step(_frame1(clip))
    assert "NaN" in str(e.value)
    assert np.isfinite(g.poses[-1]).all()
