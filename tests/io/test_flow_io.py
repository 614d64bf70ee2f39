"""Flow files: .flo / KITTI png / .npy round trips, corrupt inputs, and the real Middlebury/Sintel/KITTI-style data."""

from __future__ import annotations

import numpy as np
import pytest

from vision3d.core.flow import FlowField
from vision3d.errors import InputError
from vision3d.io.flow import FLO_MAGIC, read_flo, read_flow, read_kitti_flow, write_flo, write_flow, write_kitti_flow


@pytest.fixture
def flow(rng) -> FlowField:
    return FlowField(rng.normal(0, 20, (2, 13, 17)).astype(np.float32))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.mark.parametrize("suffix", [".flo", ".npy"])
def test_lossless_round_trip(tmp_path, flow, suffix):
    path = write_flow(tmp_path / f"f{suffix}", flow)
    back = read_flow(path)
    assert back.flow.dtype == np.float32 and back.flow.shape == (2, 13, 17)
    np.testing.assert_array_equal(back.flow, flow.flow)
    assert back.valid is None


def test_flo_layout_is_middlebury(tmp_path, flow):
    data = write_flo(tmp_path / "f.flo", flow).read_bytes()
    assert np.frombuffer(data[:4], "<f4")[0] == FLO_MAGIC
    assert tuple(np.frombuffer(data[4:12], "<i4")) == (17, 13)  # width first
    hw2 = np.frombuffer(data[12:], "<f4").reshape(13, 17, 2)
    np.testing.assert_array_equal(hw2[..., 0], flow.u)  # u, v interleaved per pixel
    np.testing.assert_array_equal(hw2[..., 1], flow.v)


def test_flo_unknown_pixels_become_invalid_zero(tmp_path, flow):
    f = flow.flow.copy()
    f[:, 2, 3] = np.nan
    back = read_flo(write_flo(tmp_path / "f.flo", FlowField(f)))
    assert back.valid is not None and not back.valid[2, 3] and back.valid.sum() == 13 * 17 - 1
    assert np.all(back.flow[:, 2, 3] == 0) and np.isfinite(back.flow).all()


def test_kitti_png_round_trip_quantised(tmp_path, rng):
    f = rng.uniform(-300, 300, (2, 20, 31)).astype(np.float32)
    valid = rng.random((20, 31)) > 0.3
    back = read_flow(write_flow(tmp_path / "k.png", FlowField(f, valid)))
    assert back.valid is not None
    np.testing.assert_array_equal(back.valid, valid)
    assert np.abs(back.flow - f)[:, valid].max() <= 1 / 128 + 1e-6  # rounded to 1/64 px
    assert np.all(back.flow[:, ~valid] == 0)


def test_kitti_png_channel_order(tmp_path):
    import cv2

    f = np.zeros((2, 4, 5), np.float32)
    f[0] = 1.5  # u
    f[1] = -2.0  # v
    img = cv2.imread(str(write_kitti_flow(tmp_path / "k.png", FlowField(f))), cv2.IMREAD_UNCHANGED)
    b, g, r = img[0, 0]
    assert r == 1.5 * 64 + 2**15 and g == -2.0 * 64 + 2**15 and b == 1  # KITTI: R=u, G=v, B=valid


def test_kitti_png_out_of_range_is_invalid(tmp_path):
    f = np.zeros((2, 3, 3), np.float32)
    f[0, 1, 1] = 600.0  # beyond the ±512 px KITTI can store
    back = read_kitti_flow(write_kitti_flow(tmp_path / "k.png", FlowField(f)))
    assert not back.valid[1, 1] and back.valid.sum() == 8


def _flo_bytes(w: int, h: int, n_floats: int | None = None, magic: float = FLO_MAGIC) -> bytes:
    n = 2 * w * h if n_floats is None else n_floats
    return (np.array([magic], "<f4").tobytes() + np.array([w, h], "<i4").tobytes()
            + np.zeros(n, "<f4").tobytes())


@pytest.mark.parametrize("data, words", [
    (_flo_bytes(4, 3, magic=1.0), "magic"),
    (_flo_bytes(4, 3, n_floats=20), "truncated"),
    (_flo_bytes(4, 3, n_floats=30), "extra data"),
    (_flo_bytes(200_000, 3, n_floats=0), "plausible"),
    (_flo_bytes(60_000, 60_000, n_floats=0), "plausible"),
    (_flo_bytes(-4, 3, n_floats=0), "plausible"),
    (b"PIEH", "shorter"),
])
def test_corrupt_flo(tmp_path, data, words):
    p = tmp_path / "bad.flo"
    p.write_bytes(data)
    with pytest.raises(InputError, match=words) as e:
        read_flow(p)
    assert str(p) in str(e.value) and "corrupt .flo" in str(e.value)


def test_missing_and_unsupported(tmp_path, flow):
    with pytest.raises(InputError, match="not found") as e:
        read_flow(tmp_path / "nope.flo")
    assert "nope.flo" in str(e.value)
    with pytest.raises(InputError, match=r"\.flo, \.png, \.npy") as e:
        read_flow(tmp_path / "f.pfm")
    assert "f.pfm" in str(e.value)
    with pytest.raises(InputError, match="unsupported"):
        write_flow(tmp_path / "f.jpg", flow)
    assert not (tmp_path / "f.jpg").exists()


def test_8bit_png_is_not_flow(tmp_path):
    import cv2

    p = tmp_path / "pic.png"
    cv2.imwrite(str(p), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="16-bit") as e:
        read_flow(p)
    assert str(p) in str(e.value)


def test_npy_flow_rejects_pickles_and_bad_shapes(tmp_path):
    p = tmp_path / "obj.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError) as e:
        read_flow(p)
    assert str(p) in str(e.value)
    p2 = tmp_path / "shape.npy"
    np.save(p2, np.zeros((3, 4, 5), np.float32))
    with pytest.raises(InputError, match="expected"):
        read_flow(p2)


# ---- real data -------------------------------------------------------------------------------------------


def test_middlebury_rubberwhale(data_dir):
    f = read_flow(data_dir / "middlebury_flow/other-gt-flow/RubberWhale/flow10.flo")
    assert f.flow.shape == (2, 388, 584)
    assert f.valid is not None and 0.9 < f.valid.mean() < 1.0  # the GT marks some pixels unknown (1e9)
    mag = f.magnitude()[f.valid]
    assert np.isfinite(f.flow).all() and 0.1 < np.median(mag) < 5 and mag.max() < 20  # small motions


def test_sintel_alley(data_dir, tmp_path):
    f = read_flow(data_dir / "sintel_flow/training/flow/alley_1/frame_0002.flo")
    assert f.flow.shape == (2, 436, 1024) and f.valid is None and np.isfinite(f.flow).all()
    assert f.magnitude().max() < 50
    # KITTI-style png written from real flow reads back within the 1/64 px quantisation
    back = read_flow(write_flow(tmp_path / "alley.png", f))
    assert back.valid.all()
    assert np.abs(back.flow - f.flow).max() <= 1 / 128 + 1e-4
