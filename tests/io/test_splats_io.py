"""Splat files: 3DGS PLY (standard property order, SH layout, ASCII/extra properties), .splat, point clouds."""

from __future__ import annotations

import numpy as np
import pytest

from vision3d.core.camera import quat_to_rotmat
from vision3d.core.gaussians import SH_C0, Gaussians
from vision3d.errors import InputError
from vision3d.io.ply import read_ply_vertices, read_point_cloud, write_point_cloud
from vision3d.io.splats import read_splats, splat_ply_properties, write_splats

STANDARD_DEG3 = (
    ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    + [f"f_rest_{i}" for i in range(45)]
    + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
)


def _gaussians(n: int = 50, k: int | None = None, seed: int = 0) -> Gaussians:
    rng = np.random.default_rng(seed)
    common = dict(means=rng.normal(size=(n, 3)), quats=rng.normal(size=(n, 4)),
                  log_scales=rng.uniform(-5, 0, (n, 3)), opacity_logits=rng.normal(0, 2, n))
    if k is None:
        return Gaussians(**common, colors=rng.uniform(0, 1, (n, 3)))
    return Gaussians(**common, sh=rng.normal(0, 0.5, (n, k, 3)))


def _header(path) -> list[str]:
    data = path.read_bytes()
    return data[: data.index(b"end_header")].decode().splitlines()


def test_ply_header_has_standard_order(tmp_path):
    p = write_splats(tmp_path / "g.ply", _gaussians(k=16))
    lines = _header(p)
    assert lines[:3] == ["ply", "format binary_little_endian 1.0", "element vertex 50"]
    props = [ln.split() for ln in lines if ln.startswith("property")]
    assert all(t == "float" for _, t, _ in props)
    assert [name for _, _, name in props] == STANDARD_DEG3 == splat_ply_properties(16)
    assert p.stat().st_size == len(b"\n".join(ln.encode() for ln in lines)) + len(b"\nend_header\n") + 50 * 62 * 4


def test_sh_round_trip_exact_and_channel_major(tmp_path):
    g = _gaussians(k=9)
    p = write_splats(tmp_path / "g.ply", g)
    back = read_splats(p)
    assert back.colors is None and back.sh.shape == (50, 9, 3)
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh"):
        np.testing.assert_array_equal(getattr(back, name), getattr(g, name))
    v = read_ply_vertices(p)
    # f_rest index = channel*(K-1) + k (the original 3DGS layout): green channel, 2nd rest coefficient
    np.testing.assert_array_equal(v[f"f_rest_{1 * 8 + 1}"], g.sh[:, 2, 1])
    np.testing.assert_array_equal(v["rot_0"], g.quats[:, 0])  # w first


def test_rgb_round_trip(tmp_path):
    g = _gaussians()
    p = write_splats(tmp_path / "g.ply", g)
    v = read_ply_vertices(p)
    assert not any(k.startswith("f_rest") for k in v)
    np.testing.assert_allclose(v["f_dc_0"], (g.colors[:, 0] - 0.5) / SH_C0, rtol=1e-6, atol=1e-6)
    back = read_splats(p)
    assert back.sh is None
    np.testing.assert_allclose(back.colors, g.colors, atol=1e-6)
    np.testing.assert_array_equal(back.means, g.means)


def _ascii_ply(path, g: Gaussians) -> None:
    """A hand-written ASCII 3DGS PLY with shuffled properties and an extra one, like other tools write."""
    cols = {"x": g.means[:, 0], "y": g.means[:, 1], "z": g.means[:, 2], "opacity": g.opacity_logits}
    cols.update({f"f_dc_{i}": (g.colors[:, i] - 0.5) / SH_C0 for i in range(3)})
    cols.update({f"scale_{i}": g.log_scales[:, i] for i in range(3)})
    cols.update({f"rot_{i}": g.quats[:, i] for i in range(4)})
    cols["filter_3D"] = np.ones(len(g))
    names = list(cols)[::-1]
    head = ["ply", "format ascii 1.0", "comment made by hand", f"element vertex {len(g)}"]
    head += [f"property float {k}" for k in names] + ["element face 0", "property list uchar int vertex_indices",
                                                       "end_header"]
    rows = [" ".join(repr(float(cols[k][i])) for k in names) for i in range(len(g))]
    path.write_text("\n".join(head + rows) + "\n")


def test_ascii_ply_with_extra_properties(tmp_path):
    g = _gaussians(n=7)
    p = tmp_path / "ascii.ply"
    _ascii_ply(p, g)
    back = read_splats(p)
    np.testing.assert_allclose(back.means, g.means, rtol=1e-6)
    np.testing.assert_allclose(back.colors, g.colors, atol=1e-6)
    np.testing.assert_allclose(back.quats, g.quats, rtol=1e-6)


def test_plain_point_cloud_is_not_a_splat(tmp_path):
    rng = np.random.default_rng(3)
    pts, cols = rng.normal(size=(20, 3)).astype(np.float32), rng.uniform(0, 1, (20, 3))
    p = write_point_cloud(tmp_path / "cloud.ply", pts, cols)
    with pytest.raises(InputError, match="not a 3DGS splat file.*point cloud") as e:
        read_splats(p)
    assert str(p) in str(e.value) and "read_point_cloud" in str(e.value)
    back_pts, back_cols = read_point_cloud(p)
    np.testing.assert_array_equal(back_pts, pts)
    assert np.abs(back_cols - cols).max() <= 0.5 / 255 + 1e-6
    # a splat file also reads as a point cloud (means + base colour)
    g = _gaussians(n=5)
    sp, sc = read_point_cloud(write_splats(tmp_path / "g.ply", g))
    np.testing.assert_array_equal(sp, g.means)
    np.testing.assert_allclose(sc, g.colors, atol=1e-6)
    nc = read_point_cloud(write_point_cloud(tmp_path / "nocol.ply", pts))[1]
    assert nc is None


def test_splat_round_trip_quantised(tmp_path):
    g = _gaussians(n=200)
    p = write_splats(tmp_path / "g.splat", g)
    assert p.stat().st_size == 200 * 32
    back = read_splats(p)
    np.testing.assert_array_equal(back.means, g.means)
    np.testing.assert_allclose(back.log_scales, g.log_scales, atol=1e-5)
    assert np.abs(back.colors - g.colors).max() <= 0.5 / 255 + 1e-6
    assert np.abs(back.opacities - g.opacities).max() <= 0.5 / 255 + 1e-6
    # rotations survive 8-bit quantisation to within a few degrees
    r0, r1 = quat_to_rotmat(g.quats), quat_to_rotmat(back.quats)
    cos = (np.einsum("nij,nij->n", r0, r1) - 1) / 2
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 3.0


def test_splat_wrong_size_and_suffix(tmp_path):
    p = tmp_path / "bad.splat"
    p.write_bytes(bytes(32 * 3 + 5))
    with pytest.raises(InputError, match="multiple of 32") as e:
        read_splats(p)
    assert str(p) in str(e.value)
    (tmp_path / "empty.splat").write_bytes(b"")
    with pytest.raises(InputError, match="multiple of 32"):
        read_splats(tmp_path / "empty.splat")
    with pytest.raises(InputError, match=r"\.ply, \.splat"):
        write_splats(tmp_path / "g.ksplat", _gaussians(n=2))
    with pytest.raises(InputError, match="not found") as e:
        read_splats(tmp_path / "missing.ply")
    assert "missing.ply" in str(e.value)


@pytest.mark.parametrize("data, words", [
    (b"not a ply at all", "does not start with 'ply'"),
    (b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\n", "end_header"),
    (b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nend_header\n" + bytes(8),
     "truncated"),
    (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1\n2\n", "truncated"),
    (b"ply\nformat weird 1.0\nelement vertex 1\nproperty float x\nend_header\n", "unknown format"),
    (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty quad x\nend_header\n1\n", "bad header line"),
])
def test_corrupt_ply(tmp_path, data, words):
    p = tmp_path / "bad.ply"
    p.write_bytes(data)
    with pytest.raises(InputError, match=words) as e:
        read_splats(p)
    assert str(p) in str(e.value)


def test_big_endian_binary_ply(tmp_path):
    pts = np.arange(12, dtype=np.float64).reshape(4, 3)
    rgb = np.array([[255, 0, 0]] * 4, np.uint8)
    rows = np.empty(4, [("x", ">f8"), ("y", ">f8"), ("z", ">f8"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for i, k in enumerate("xyz"):
        rows[k] = pts[:, i]
    rows["red"], rows["green"], rows["blue"] = rgb.T
    head = ("ply\nformat binary_big_endian 1.0\nelement vertex 4\nproperty double x\nproperty double y\n"
            "property double z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    p = tmp_path / "be.ply"
    p.write_bytes(head.encode() + rows.tobytes())
    got, col = read_point_cloud(p)
    np.testing.assert_array_equal(got, pts)
    np.testing.assert_array_equal(col, np.tile([1.0, 0, 0], (4, 1)))
