"""Camera formats on synthetic cameras: TUM, COLMAP text, transforms.json, LLFF, TartanAir round trips and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vision3d.core.camera import Camera, Cameras, intrinsics, look_at
from vision3d.errors import InputError
from vision3d.io.cameras import (
    TARTANAIR_K,
    read_colmap,
    read_colmap_cameras,
    read_colmap_intrinsics,
    read_llff,
    read_tartanair_poses,
    read_transforms,
    read_tum_cameras,
    read_tum_trajectory,
    write_colmap,
    write_llff,
    write_tartanair_poses,
    write_transforms,
    write_tum_trajectory,
)


@pytest.fixture
def cams() -> Cameras:
    rng = np.random.default_rng(7)
    eyes = rng.normal(size=(6, 3)) * 3 + np.array([0, 0, -5])
    w2c = np.stack([look_at(e, rng.normal(size=3) * 0.1) for e in eyes])
    return Cameras(intrinsics(500.0, 510.0, 319.5, 239.5), w2c, 640, 480, [f"img_{i}.png" for i in range(6)])


def _same_poses(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(a, b, atol=atol)


def test_tum_round_trip(tmp_path, cams):
    ts = np.linspace(1305031102.175304, 1305031103.2, len(cams))
    p = write_tum_trajectory(tmp_path / "traj.txt", cams, ts)
    t2, c2w = read_tum_trajectory(p)
    np.testing.assert_array_equal(t2, ts)
    _same_poses(c2w, cams.cam_to_world)
    back = read_tum_cameras(p, cams.K[0], 640, 480)
    _same_poses(back.world_to_cam, cams.world_to_cam)
    assert back.names[0] == f"{ts[0]:.6f}"
    t3, c2w3 = read_tum_trajectory(write_tum_trajectory(tmp_path / "short.txt", cams.cam_to_world, ts))
    np.testing.assert_array_equal(t3, ts)
    _same_poses(c2w3, cams.cam_to_world)


def test_tum_quaternion_order(tmp_path):
    p = tmp_path / "t.txt"  # 90 deg about z: qx qy qz qw = 0 0 s s
    s = np.sqrt(0.5)
    p.write_text(f"# comment\n\n1.0 1 2 3 0 0 {s} {s}\n")
    _, c2w = read_tum_trajectory(p)
    _same_poses(c2w[0, :3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(c2w[0, :3, 3], [1, 2, 3])


def test_tum_bad_line(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("1 2 3 4 5 6 7 8\n1 2 3\n")
    with pytest.raises(InputError, match="line 2") as e:
        read_tum_trajectory(p)
    assert str(p) in str(e.value)


def test_colmap_round_trip_and_half_pixel(tmp_path, cams):
    folder = write_colmap(tmp_path / "sparse", cams)
    assert (folder / "points3D.txt").read_text().startswith("#")
    line = next(ln for ln in (folder / "cameras.txt").read_text().splitlines() if not ln.startswith("#"))
    assert line.split()[:4] == ["1", "PINHOLE", "640", "480"]
    assert float(line.split()[6]) == 320.0  # COLMAP cx = ours + 0.5
    back = read_colmap_cameras(folder)
    _same_poses(back.world_to_cam, cams.world_to_cam)
    np.testing.assert_allclose(back.K, cams.K)
    assert back.names == cams.names


def test_colmap_models_and_empty_points_lines(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "cameras.txt").write_text(
        "# Camera list\n1 SIMPLE_RADIAL 100 80 90.0 50.0 40.0 0.01\n"
        "2 OPENCV 100 80 91.0 92.0 49.0 41.0 0.1 0.2 0.003 0.004\n")
    (d / "images.txt").write_text(
        "# Image list\n"
        "1 1 0 0 0 0 0 0 1 b.jpg\n\n"  # empty POINTS2D line
        "2 0.7071067811865476 0 0.7071067811865476 0 1 2 3 2 a.jpg\n"
        "10.5 20.5 -1 30.0 40.0 7\n")
    intr = read_colmap_intrinsics(d / "cameras.txt")
    assert intr[1].model == "SIMPLE_RADIAL" and intr[1].distortion == {"k": 0.01}
    assert intr[2].distortion == {"k1": 0.1, "k2": 0.2, "p1": 0.003, "p2": 0.004}
    cams = read_colmap(d)
    assert [c.name for c in cams] == ["a.jpg", "b.jpg"]  # sorted by name
    a, b = cams
    np.testing.assert_allclose(a.K, intrinsics(91.0, 92.0, 48.5, 40.5))
    np.testing.assert_allclose(b.K, intrinsics(90.0, 90.0, 49.5, 39.5))
    _same_poses(a.world_to_cam[:3, :3], [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-12)
    np.testing.assert_array_equal(a.world_to_cam[:3, 3], [1, 2, 3])


def test_colmap_errors(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "cameras.bin").write_bytes(b"\0" * 8)
    with pytest.raises(InputError, match="binary") as e:
        read_colmap(d)
    assert "model_converter" in str(e.value)
    (d / "cameras.txt").write_text("1 OPENCV_FISHEYE 10 10 1 1 5 5 0 0 0 0\n")
    (d / "images.txt").write_text("")
    with pytest.raises(InputError, match="OPENCV_FISHEYE") as e:
        read_colmap(d)
    assert "cameras.txt" in str(e.value)
    with pytest.raises(InputError, match="not found"):
        read_colmap(tmp_path / "nothing")
    (d / "cameras.txt").write_text("1 PINHOLE 10 10 5 5 5\n")
    with pytest.raises(InputError, match="corrupt"):
        read_colmap(d)


def test_colmap_different_sizes(tmp_path):
    a = Camera(intrinsics(100, 100, 49.5, 39.5), np.eye(4), 100, 80, "a.png")
    b = Camera(intrinsics(200, 200, 99.5, 79.5), np.eye(4), 200, 160, "b.png")
    folder = write_colmap(tmp_path / "m", [a, b])
    cams = read_colmap(folder)
    assert [(c.width, c.height) for c in cams] == [(100, 80), (200, 160)]
    with pytest.raises(InputError, match="different image sizes"):
        read_colmap_cameras(folder)


def test_transforms_round_trip(tmp_path, cams):
    p = write_transforms(tmp_path / "transforms.json", cams)
    data = json.loads(p.read_text())
    assert data["cx"] == 320.0 and data["w"] == 640 and data["frames"][0]["file_path"] == "img_0.png"
    back = read_transforms(p)
    _same_poses(back.world_to_cam, cams.world_to_cam)
    np.testing.assert_allclose(back.K, cams.K)
    assert back.names[0] == str(tmp_path / "img_0.png")
    # OpenGL convention inside the file: the camera looks down its -z axis
    c2w_gl = np.array(data["frames"][0]["transform_matrix"])
    forward = -c2w_gl[:3, 2]
    np.testing.assert_allclose(forward, cams.cam_to_world[0, :3, 2], atol=1e-12)


def test_transforms_camera_angle_x_and_resize(tmp_path):
    from PIL import Image

    (tmp_path / "train").mkdir()
    Image.new("RGB", (40, 30)).save(tmp_path / "train" / "r_0.png")
    c2w = np.eye(4)
    c2w[:3, 3] = [0, 0, 4]  # OpenGL camera at +z looking at the origin
    (tmp_path / "t.json").write_text(json.dumps(
        {"camera_angle_x": 2 * np.arctan(0.5),
         "frames": [{"file_path": "./train/r_0", "transform_matrix": c2w.tolist()}]}))
    cams = read_transforms(tmp_path / "t.json")  # size from the image, suffix resolved
    assert (cams.width, cams.height) == (40, 30) and cams.names == [str(tmp_path / "train" / "r_0.png")]
    np.testing.assert_allclose(cams.K[0], intrinsics(40.0, 40.0, 19.5, 14.5))
    uv, z = cams.project(np.zeros((1, 3)))
    np.testing.assert_allclose(uv[0, 0], [19.5, 14.5])
    assert z[0, 0] == pytest.approx(4.0)
    half = read_transforms(tmp_path / "t.json", width=20, height=15)
    np.testing.assert_allclose(half.K[0], intrinsics(20.0, 20.0, 9.5, 7.0))
    (tmp_path / "train" / "r_0.png").unlink()
    with pytest.raises(InputError, match="width= and height=") as e:
        read_transforms(tmp_path / "t.json")
    assert "t.json" in str(e.value)
    assert read_transforms(tmp_path / "t.json", width=40, height=30).width == 40


def test_transforms_errors(tmp_path):
    p = tmp_path / "transforms.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="invalid JSON") as e:
        read_transforms(p)
    assert str(p) in str(e.value)
    p.write_text(json.dumps({"frames": []}))
    with pytest.raises(InputError, match="frames"):
        read_transforms(p)
    p.write_text(json.dumps({"w": 4, "h": 4, "frames": [{"file_path": "a", "transform_matrix": np.eye(4).tolist()}]}))
    with pytest.raises(InputError, match="fl_x nor camera_angle_x"):
        read_transforms(p)


def test_llff_round_trip_and_axes(tmp_path, cams):
    p = write_llff(tmp_path / "poses_bounds.npy", Cameras(intrinsics(500, 500, 319.5, 239.5), cams.world_to_cam,
                                                             640, 480), np.tile([1.0, 10.0], (len(cams), 1)))
    a = np.load(p)
    assert a.shape == (6, 17)
    pose = a[0, :15].reshape(3, 5)
    c2w = cams.cam_to_world[0]
    np.testing.assert_allclose(pose[:, 0], c2w[:3, 1])  # LLFF column 0 = down = OpenCV +y
    np.testing.assert_allclose(pose[:, 1], c2w[:3, 0])  # column 1 = right = OpenCV +x
    np.testing.assert_allclose(pose[:, 2], -c2w[:3, 2])  # column 2 = back = OpenCV -z
    np.testing.assert_allclose(pose[:, 4], [480, 640, 500])
    back, bounds = read_llff(p)
    _same_poses(back.world_to_cam, cams.world_to_cam)
    np.testing.assert_array_equal(bounds, np.tile([1.0, 10.0], (6, 1)))
    small, _ = read_llff(p, width=160)
    assert (small.width, small.height) == (160, 120)
    np.testing.assert_allclose(small.K[0], intrinsics(125, 125, 79.5, 59.5))
    with pytest.raises(InputError, match="fx != fy"):
        write_llff(tmp_path / "x.npy", cams, np.ones((6, 2)))


def test_llff_bad_file(tmp_path):
    p = tmp_path / "poses_bounds.npy"
    np.save(p, np.zeros((4, 15)))
    with pytest.raises(InputError, match=r"\(N, 17\)") as e:
        read_llff(p)
    assert str(p) in str(e.value)


def test_tartanair_axes_and_round_trip(tmp_path):
    p = tmp_path / "pose_left.txt"
    p.write_text("1 2 3 0 0 0 1\n")  # identity body pose: body x (forward) = world x (north)
    cam = read_tartanair_poses(p)
    c2w = cam.cam_to_world[0]
    np.testing.assert_allclose(c2w[:3, 2], [1, 0, 0])  # OpenCV forward = NED x
    np.testing.assert_allclose(c2w[:3, 0], [0, 1, 0])  # OpenCV right = NED y
    np.testing.assert_allclose(c2w[:3, 1], [0, 0, 1])  # OpenCV down = NED z
    np.testing.assert_allclose(cam.K[0], TARTANAIR_K)
    assert (cam.width, cam.height) == (640, 480)
    rng = np.random.default_rng(2)
    q = rng.normal(size=(5, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    p2 = tmp_path / "many.txt"
    np.savetxt(p2, np.c_[rng.normal(size=(5, 3)), q])
    cams = read_tartanair_poses(p2)
    back = read_tartanair_poses(write_tartanair_poses(tmp_path / "out.txt", cams))
    _same_poses(back.world_to_cam, cams.world_to_cam)
