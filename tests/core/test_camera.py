"""Cameras: projection/unprojection, pose algebra, OpenGL↔OpenCV, quaternions, resizing, bad values."""

from __future__ import annotations

import numpy as np
import pytest

from vision3d.core.camera import (Camera, Cameras, focal_to_fov, fov_to_focal, intrinsics, invert_pose, look_at,
                                  opencv_to_opengl, opengl_to_opencv, quat_to_rotmat, rotmat_to_quat)
from vision3d.errors import InputError


def random_rotations(n, rng):
    q = rng.normal(size=(n, 4))
    return quat_to_rotmat(q), q / np.linalg.norm(q, axis=1, keepdims=True)


def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    r, q = random_rotations(200, rng)
    assert np.allclose(r @ np.swapaxes(r, 1, 2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(r), 1)
    q2 = rotmat_to_quat(r)
    assert np.allclose(np.abs((q2 * q).sum(1)), 1, atol=1e-9)  # same rotation up to sign
    assert np.allclose(quat_to_rotmat(q2), r, atol=1e-9)
    # the four Shepperd branches: 180° turns about each axis and the identity
    for rr in [np.eye(3), np.diag([1, -1, -1.0]), np.diag([-1, 1, -1.0]), np.diag([-1, -1, 1.0])]:
        assert np.allclose(quat_to_rotmat(rotmat_to_quat(rr)), rr, atol=1e-12)


def test_invert_pose_and_project_unproject():
    rng = np.random.default_rng(1)
    r, _ = random_rotations(3, rng)
    w2c = np.tile(np.eye(4), (3, 1, 1))
    w2c[:, :3, :3] = r
    w2c[:, :3, 3] = rng.normal(size=(3, 3))
    assert np.allclose(invert_pose(w2c) @ w2c, np.eye(4), atol=1e-12)
    cams = Cameras(intrinsics(100, 110, 31.5, 23.5), w2c, 64, 48)
    px = rng.uniform(0, 60, size=(50, 2))
    z = rng.uniform(1, 5, size=50)
    pts = cams.unproject(1, px, z)
    uv, depth = cams.project(pts)
    assert np.allclose(uv[1], px, atol=1e-9) and np.allclose(depth[1], z, atol=1e-9)


def test_look_at_centres_target():
    w2c = look_at([0, -1, -4], [0.2, 0.1, 0.3])
    cam = Camera(intrinsics(50, 50, 31.5, 31.5), w2c, 64, 64)
    uv, z = cam.as_batch().project(np.array([[0.2, 0.1, 0.3]]))
    assert np.allclose(uv[0, 0], [31.5, 31.5]) and z[0, 0] > 0
    assert np.allclose(cam.center, [0, -1, -4])


def test_opengl_opencv_conversion():
    # A Blender camera at +z looking down -z sees the origin; after conversion OpenCV z must point to it.
    c2w_gl = np.eye(4)
    c2w_gl[2, 3] = 3.0
    c2w_cv = opengl_to_opencv(c2w_gl)
    assert np.allclose(c2w_cv[:3, 2], [0, 0, -1])  # forward
    assert np.allclose(c2w_cv[:3, 1], [0, -1, 0])  # down
    assert np.allclose(opencv_to_opengl(c2w_cv), c2w_gl)
    cams = Cameras.from_cam_to_world(intrinsics(10, 10, 4.5, 4.5), c2w_gl[None], 10, 10, opengl=True)
    uv, z = cams.project(np.zeros((1, 3)))
    assert np.allclose(uv[0, 0], [4.5, 4.5]) and np.isclose(z[0, 0], 3)


def test_fov_and_scaling():
    f = fov_to_focal(np.radians(90), 200)
    assert np.isclose(f, 100) and np.isclose(focal_to_fov(f, 200), np.radians(90))
    cam = Camera.from_fov(np.radians(60), 640, 480)
    small = cam.as_batch().scaled(0.5)
    assert (small.width, small.height) == (320, 240)
    # the image centre stays the image centre under the pixel-centre convention
    assert np.allclose(small.K[0, :2, 2], [159.5, 119.5])
    assert np.isclose(small[0].fov_x, cam.fov_x)


@pytest.mark.parametrize("K, w, h, msg", [
    (intrinsics(0, 0, 1, 1), 4, 4, "focal"),
    (intrinsics(np.nan, 1, 1, 1), 4, 4, "NaN"),
    (intrinsics(1, 1, 1, 1), 0, 4, "size"),
])
def test_bad_cameras(K, w, h, msg):
    with pytest.raises(InputError, match=msg):
        Camera(K, np.eye(4), w, h)


def test_stack_needs_one_size():
    a = Camera(intrinsics(1, 1, 1, 1), np.eye(4), 4, 4)
    b = Camera(intrinsics(1, 1, 1, 1), np.eye(4), 5, 4)
    assert len(Cameras.stack([a, a])) == 2
    with pytest.raises(InputError, match="different image sizes"):
        Cameras.stack([a, b])


def test_resized_intrinsics_keep_pixel_centres_per_axis():
    from vision3d.core.camera import resized_intrinsics

    K = np.array([[100.0, 0, 49.5], [0, 120.0, 29.5], [0, 0, 1]])
    R = resized_intrinsics(K, 0.5, 0.25)                     # a 100×60 image → 50×15
    assert np.allclose(R, [[50, 0, 24.5], [0, 30, 7.0], [0, 0, 1]])
    # a ray through a pixel centre of the original goes through the same point of the resized image
    x = np.array([10.0, 20.0, 1.0])
    ray = np.linalg.solve(K, x)
    u = R @ ray
    assert np.allclose(u[:2], [(10 + 0.5) * 0.5 - 0.5, (20 + 0.5) * 0.25 - 0.5])
    assert np.allclose(resized_intrinsics(K[None], 2, 2)[0], resized_intrinsics(K, 2, 2))
