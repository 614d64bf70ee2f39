"""Depth files: npy / 16-bit png with scale / pfm round trips, missing values, and the NYU/KITTI/TartanAir data."""

from __future__ import annotations

import numpy as np
import pytest

from vision3d.core.depth import DepthMap
from vision3d.errors import InputError
from vision3d.io.depth import read_depth, read_pfm, write_depth, write_pfm


@pytest.fixture
def depth() -> np.ndarray:
    rng = np.random.default_rng(1)
    d = rng.uniform(0.5, 20.0, (11, 16)).astype(np.float32)
    d[0, 0] = np.nan
    d[3, 4] = 0.0
    d[5, 6] = np.inf
    return d


@pytest.mark.parametrize("suffix", [".npy", ".pfm"])
def test_float_round_trip_and_missing(tmp_path, depth, suffix):
    back = read_depth(write_depth(tmp_path / f"d{suffix}", DepthMap(depth)))
    assert back.kind == "metric" and back.depth.dtype == np.float32 and back.shape == (11, 16)
    expect = DepthMap(depth).depth
    np.testing.assert_array_equal(back.depth, expect)  # NaN where NaN
    assert not back.valid[0, 0] and not back.valid[3, 4] and not back.valid[5, 6]  # NaN, 0, inf are missing
    assert back.valid.sum() == depth.size - 3


def test_png_round_trip_with_stored_scale(tmp_path, depth):
    p = write_depth(tmp_path / "d.png", DepthMap(depth), scale=1000.0)
    back = read_depth(p)  # our writer records the scale in the png
    ok = np.isfinite(DepthMap(depth).depth)
    np.testing.assert_array_equal(back.valid, ok)
    assert np.abs(back.depth[ok] - depth[ok]).max() <= 0.5e-3 + 1e-6
    kitti = read_depth(write_depth(tmp_path / "k.png", DepthMap(depth), scale=256.0), scale=256.0)
    assert np.abs(kitti.depth[ok] - depth[ok]).max() <= 0.5 / 256 + 1e-6


def test_png_stores_value_times_scale(tmp_path):
    import cv2

    d = np.array([[1.0, np.nan], [0.0005, 100.0]], np.float32)  # tiny stays valid, huge clips
    p = write_depth(tmp_path / "d.png", d, scale=1000.0)
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw, [[1000, 0], [1, 65535]])


def test_png_without_scale_needs_one(tmp_path):
    import cv2

    p = tmp_path / "foreign.png"
    cv2.imwrite(str(p), np.full((4, 5), 2560, np.uint16))
    with pytest.raises(InputError, match="scale") as e:
        read_depth(p)
    assert str(p) in str(e.value)
    np.testing.assert_allclose(read_depth(p, scale=256.0).depth, 10.0)


def test_pfm_bottom_to_top_and_endianness(tmp_path):
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    data = write_pfm(tmp_path / "a.pfm", img).read_bytes()
    assert data.startswith(b"Pf\n4 3\n-1.0\n")
    body = np.frombuffer(data[len(b"Pf\n4 3\n-1.0\n"):], "<f4").reshape(3, 4)
    np.testing.assert_array_equal(body, img[::-1])  # rows stored bottom-to-top
    big = tmp_path / "big.pfm"  # big-endian (positive scale) colour PFM written by hand
    rgb = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    big.write_bytes(b"PF\n4 2\n1.0\n" + np.ascontiguousarray(rgb[::-1]).astype(">f4").tobytes())
    np.testing.assert_array_equal(read_pfm(big), rgb)
    with pytest.raises(InputError, match="3 different channels"):
        read_depth(big)


@pytest.mark.parametrize("data, words", [
    (b"P6\n4 3\n255\n" + bytes(36), "PF or Pf"),
    (b"Pf\n4 3\n-1.0\n" + bytes(10), "truncated"),
    (b"Pf\n4 3\n-1.0\n" + bytes(60), "extra data"),
    (b"Pf\nfour 3\n-1.0\n" + bytes(48), "not numbers"),
    (b"Pf\n4", "incomplete"),
])
def test_corrupt_pfm(tmp_path, data, words):
    p = tmp_path / "bad.pfm"
    p.write_bytes(data)
    with pytest.raises(InputError, match=words) as e:
        read_depth(p)
    assert str(p) in str(e.value)


def test_bad_inputs(tmp_path, depth):
    with pytest.raises(InputError, match="not found") as e:
        read_depth(tmp_path / "none.npy")
    assert "none.npy" in str(e.value)
    with pytest.raises(InputError, match=r"\.npy, \.png, \.pfm"):
        read_depth(tmp_path / "d.tiff")
    with pytest.raises(InputError, match="EXR"):
        read_depth(tmp_path / "d.exr")
    p = tmp_path / "rgb.npy"
    np.save(p, np.zeros((4, 5, 3)))
    with pytest.raises(InputError, match="expected") as e:
        read_depth(p)
    assert str(p) in str(e.value)


def test_all_missing_loads_but_require_valid_raises(tmp_path):
    p = write_depth(tmp_path / "empty.npy", np.full((3, 3), np.nan, np.float32))
    d = read_depth(p)
    assert not d.valid.any()
    with pytest.raises(InputError, match="no finite positive"):
        d.require_valid(path=p)


def test_kind_and_scale_arguments(tmp_path):
    p = write_depth(tmp_path / "inv.npy", np.array([[0.5, 2.0]], np.float32))
    d = read_depth(p, kind="inverse", scale=2.0)
    assert d.kind == "inverse"
    np.testing.assert_allclose(d.depth, [[0.25, 1.0]])


# ---- real data -------------------------------------------------------------------------------------------


def test_nyu_depth_png(data_dir):
    d = read_depth(data_dir / "metric3d_depth_demo/data/nyu_demo/depth/sync_depth_00000.png", scale=1000.0)
    assert d.shape == (480, 640)
    assert 0.6 < d.valid.mean() < 0.8  # NYU 'sync' depth has holes
    v = d.depth[d.valid]
    assert 0.5 < v.min() and v.max() < 10.0 and 1.0 < np.median(v) < 5.0  # indoor metres


def test_kitti_depth_png_is_sparse(data_dir):
    d = read_depth(data_dir / "metric3d_depth_demo/data/kitti_demo/depth/0000000050.png", scale=256.0)
    assert d.shape == (375, 1242)
    assert 0.1 < d.valid.mean() < 0.3  # projected LiDAR: most pixels missing
    v = d.depth[d.valid]
    assert 3.0 < v.min() and v.max() < 90.0  # outdoor metres


def test_tartanair_npy_depth(data_dir, tmp_path):
    src = data_dir / "tartanair_seq/depth_left/000050_left_depth.npy"
    d = read_depth(src)
    assert d.shape == (480, 640) and d.valid.all()
    assert 0.3 < d.depth.min() and d.depth.max() < 15.0
    back = read_depth(write_depth(tmp_path / "t.pfm", d))
    np.testing.assert_array_equal(back.depth, d.depth)
