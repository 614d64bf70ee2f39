"""ReynoldsFlow: exact-GT synthetic motion, lighting change (the RTT term), input handling, ReynoldsFlow+ RGB."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vision3d.errors import InputError
from vision3d.flow.metrics import flow_metrics
from vision3d.flow.reynolds import ReynoldsConfig, reynolds_components, reynolds_flow, reynolds_rgb, to_grey
from vision3d.synth import value_noise

H, W = 96, 128
B = 8  # border excluded from accuracy checks (pixels whose source lies outside the frame)


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    """A smooth, richly textured grey image in [0.1, 0.8] (so a ×1.2 gain never clips)."""
    rng = np.random.default_rng(0)
    big = value_noise(rng, 2 * H, 2 * W, 1, octaves=6, base_cells=4)[..., 0]
    t = cv2.resize(big, (W, H), interpolation=cv2.INTER_AREA)
    return (0.1 + 0.7 * (t - t.min()) / (t.max() - t.min())).astype(np.float32)


def _resample(img: np.ndarray, src_x: np.ndarray, src_y: np.ndarray) -> np.ndarray:
    return cv2.remap(img, src_x.astype(np.float32), src_y.astype(np.float32), cv2.INTER_CUBIC,
                     borderMode=cv2.BORDER_REFLECT)


def _epe_interior(flow: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> float:
    e = np.hypot(flow[0] - gx, flow[1] - gy)
    return float(e[B:-B, B:-B].mean())


# Tolerances: both motions are ≤ 3 px and the texture is smooth, so a dense variational method should be
# well under 0.1 px; 0.15 px (≈ 10 % of the 1.5 px shift, 5 % of the 2.8 px peak rotation) leaves room for
# the bicubic resampling that made frame 1 and for the smoothness prior, while a wrong sign, a scale error or
# a half-pixel bias would all exceed it. (Measured: 0.06 px shift, 0.04 px rotation.)
TOL = 0.15


def test_subpixel_translation(texture):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    d = (1.3, -0.7)
    f1 = _resample(texture, xx - d[0], yy - d[1])  # frame1(x) = frame0(x - d): flow is d everywhere
    flow = reynolds_flow(texture, f1)
    assert flow.shape == (2, H, W) and flow.dtype == np.float32
    assert _epe_interior(flow, np.full((H, W), d[0]), np.full((H, W), d[1])) < TOL


def test_rotation_field(texture):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    th, cx, cy = np.deg2rad(2.0), W / 2, H / 2
    qx, qy = xx - cx, yy - cy
    # p moves to R(p - c) + c, so frame1(q) = frame0(R⁻¹(q - c) + c) and the flow is (R - I)(p - c)
    f1 = _resample(texture, np.cos(th) * qx + np.sin(th) * qy + cx, -np.sin(th) * qx + np.cos(th) * qy + cy)
    gx, gy = (np.cos(th) - 1) * qx - np.sin(th) * qy, np.sin(th) * qx + (np.cos(th) - 1) * qy
    assert np.hypot(gx, gy).max() > 2.5
    assert _epe_interior(reynolds_flow(texture, f1), gx, gy) < TOL


def test_zero_motion_gives_zero_flow(texture):
    c = reynolds_components(texture, texture)
    assert np.abs(c["v_o"]).max() < 1e-3
    assert np.abs(c["v_l"]).max() < 1e-3
    assert np.abs(c["div"]).max() < 1e-4


def test_brightness_change_goes_to_the_reynolds_term(texture):
    """img1 = 1.2·img0: no motion, only lighting. The paper's claim is that the RTT (Reynolds) part absorbs
    lighting variation that breaks brightness constancy: so v_o stays ~0 while m = ∇·v_l ≈ -(1.2-1)/1.1
    (f̄ = 1.1 f0 is the mean of the two frames) and v_l, hence v_r = v_o + v_l, becomes large."""
    c = reynolds_components(texture, texture * 1.2)
    v_o = np.hypot(*c["v_o"])
    assert v_o.mean() < 0.25
    assert abs(float(c["div"].mean()) + 0.2 / 1.1) < 0.02
    v_l, v_r = np.hypot(*c["v_l"]), np.hypot(*c["v_r"])
    assert v_l.mean() > 1.0 and v_r.mean() > 4 * v_o.mean()
    # the lighting term explains the intensity change that brightness constancy leaves
    assert np.abs(c["rtt_residual"]).mean() < 0.1 * np.abs(c["residual"]).mean()
    # without the RTT term (plain brightness constancy) the same pair produces a large spurious motion
    plain = reynolds_flow(texture, texture * 1.2, lighting=False)
    assert np.hypot(*plain).mean() > 4 * v_o.mean()


def test_input_forms_agree(texture):
    rgb = np.dstack([texture] * 3)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    f1 = _resample(texture, xx - 1.0, yy)
    grey_flow = reynolds_flow(texture, f1)
    assert np.allclose(reynolds_flow(rgb, np.dstack([f1] * 3)), grey_flow, atol=1e-5)
    assert np.allclose(reynolds_flow(texture[..., None], f1[..., None]), grey_flow, atol=1e-5)
    u8 = reynolds_flow((rgb * 255 + 0.5).astype(np.uint8), (np.dstack([f1] * 3) * 255 + 0.5).astype(np.uint8))
    assert u8.dtype == np.float32 and u8.shape == (2, H, W)
    assert np.abs(u8 - grey_flow)[:, B:-B, B:-B].mean() < 0.05  # only 8-bit quantisation differs
    assert np.allclose(to_grey(rgb), texture, atol=1e-6)
    assert to_grey(np.full((4, 5, 3), 255, np.uint8)).max() == pytest.approx(1.0)


def test_output_reynolds_returns_v_r(texture):
    c = reynolds_components(texture, texture * 1.1)
    assert np.allclose(reynolds_flow(texture, texture * 1.1, output="reynolds"), c["v_r"])
    assert np.allclose(c["v_r"], c["v_o"] + c["v_l"])


def test_bad_inputs_raise_input_error(texture):
    with pytest.raises(InputError):
        reynolds_flow(texture, texture[:-1])
    with pytest.raises(InputError):
        reynolds_rgb(np.zeros((10, 12, 3)), np.zeros((10, 13, 3)))
    with pytest.raises(InputError):
        reynolds_flow(np.zeros((10, 12, 2)), np.zeros((10, 12, 2)))
    with pytest.raises(InputError):
        reynolds_flow(texture, texture, not_a_parameter=1)
    with pytest.raises(InputError):
        ReynoldsConfig(alpha=-1.0)
    with pytest.raises(InputError):
        ReynoldsConfig(output="hsv")


def test_tiny_and_flat_images_are_finite():
    for shape in [(2, 2, 3), (3, 7, 3), (9, 5)]:
        a = np.random.default_rng(1).random(shape, dtype=np.float32)
        assert np.isfinite(reynolds_flow(a, a[::-1].copy())).all()
    flat = np.zeros((16, 16, 3), np.float32)
    c = reynolds_components(flat, flat)
    assert all(np.isfinite(v).all() for v in c.values())


def test_reynoldsflow_plus_rgb_channels(texture):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    f1 = _resample(texture, xx - 1.0, yy + 0.5) * 1.05
    img0 = np.dstack([texture, texture * 0.9, texture * 0.8])
    img1 = np.dstack([f1, f1 * 0.9, f1 * 0.8])
    comps = reynolds_components(img0, img1)
    rgb = reynolds_rgb(img0, img1, components=comps)
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.float32
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0

    def minmax(f):
        m = np.hypot(*f)
        return (m - m.min()) / (m.max() - m.min())

    assert np.allclose(rgb[..., 0], minmax(comps["v_o"]), atol=1e-5)  # R = |v_o|
    assert np.allclose(rgb[..., 1], minmax(comps["v_r"]), atol=1e-5)  # G = |v_r|
    assert np.allclose(rgb[..., 2], to_grey(img0), atol=1e-6)         # B = f^n, the first frame of the pair
    assert np.allclose(reynolds_rgb(img0, img1), rgb, atol=1e-6)      # same without precomputed components
    fixed = reynolds_rgb(img0, img1, components=comps, rgb_norm="fixed", rgb_max_mag=2.0)
    assert np.allclose(fixed[..., 0], np.clip(np.hypot(*comps["v_o"]) / 2.0, 0, 1), atol=1e-6)


@pytest.mark.realdata
def test_middlebury_rubberwhale_beats_zero_flow(data_dir):
    from vision3d.io.flow import read_flow
    from vision3d.io.images import read_image

    root = data_dir / "middlebury_flow"
    img0 = root / "other-data/RubberWhale/frame10.png"
    if not img0.is_file():
        pytest.skip(f"{img0} not found")
    a, b = read_image(img0), read_image(root / "other-data/RubberWhale/frame11.png")
    gt = read_flow(root / "other-gt-flow/RubberWhale/flow10.flo")
    flow = reynolds_flow(a, b)
    ours = flow_metrics(flow, gt.flow, gt.valid)["epe"]
    zero = flow_metrics(np.zeros_like(flow), gt.flow, gt.valid)["epe"]
    assert np.isfinite(ours) and ours < zero
