"""Camera formats on real data: LLFF fern, NeRF-synthetic lego, TartanAir; conventions checked against the images."""

from __future__ import annotations

import numpy as np
import pytest

from vision3d.core.camera import Cameras
from vision3d.io.cameras import read_colmap_cameras, read_llff, read_tartanair_poses, read_transforms, write_colmap
from vision3d.io.depth import read_depth

cv2 = pytest.importorskip("cv2")


def _matches(path_a, path_b) -> tuple[np.ndarray, np.ndarray]:
    """SIFT matches that RANSAC keeps (chosen without our poses), as pixel arrays."""
    a, b = (cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in (path_a, path_b))
    sift = cv2.SIFT_create(1500)
    ka, da = sift.detectAndCompute(a, None)
    kb, db = sift.detectAndCompute(b, None)
    good = [m for m, n in cv2.BFMatcher().knnMatch(da, db, k=2) if m.distance < 0.7 * n.distance]
    pa = np.float64([ka[m.queryIdx].pt for m in good])
    pb = np.float64([kb[m.trainIdx].pt for m in good])
    _, inl = cv2.findFundamentalMat(pa, pb, cv2.FM_RANSAC, 1.0, 0.999)
    keep = inl.ravel() > 0
    return pa[keep], pb[keep]


def _epipolar_px(cams: Cameras, i: int, j: int, pa: np.ndarray, pb: np.ndarray) -> float:
    """Median distance (px) of matches in image j from the epipolar lines our poses predict."""
    rel = cams.world_to_cam[j] @ cams.cam_to_world[i]
    r, t = rel[:3, :3], rel[:3, 3]
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    f = np.linalg.inv(cams.K[j]).T @ tx @ r @ np.linalg.inv(cams.K[i])
    lines = np.c_[pa, np.ones(len(pa))] @ f.T
    d = np.abs(np.sum(lines * np.c_[pb, np.ones(len(pb))], 1)) / np.hypot(lines[:, 0], lines[:, 1])
    return float(np.median(d))


def test_llff_fern(data_dir):
    cams, bounds = read_llff(data_dir / "llff_fern/poses_bounds.npy", width=504, height=378)
    assert len(cams) == 20 and bounds.shape == (20, 2) and (cams.width, cams.height) == (504, 378)
    assert cams.K[0, 0, 0] == pytest.approx(3260.526 / 8, rel=1e-4)  # hwf is full resolution (4032 wide)
    z = cams.cam_to_world[:, :3, 2]
    mean = z.mean(0) / np.linalg.norm(z.mean(0))
    assert (z @ mean).min() > 0.9  # forward-facing capture: all cameras look the same way
    mid = len(cams) // 2
    for depth in (bounds[mid, 0], bounds[mid].mean(), bounds[mid, 1]):
        p = cams.centers[mid] + z[mid] * depth  # a point at scene depth straight ahead of the central camera
        uv, zz = cams.project(p[None])
        assert (zz > 0).all()
        assert (uv[:, 0, 0] > 0).all() and (uv[:, 0, 0] < 504).all() and (uv[:, 0, 1] > 0).all() \
            and (uv[:, 0, 1] < 378).all()
    images = sorted((data_dir / "llff_fern/images_8").glob("*.png"))
    pa, pb = _matches(images[0], images[5])
    assert len(pa) >= 15
    assert _epipolar_px(cams, 0, 5, pa, pb) < 1.0  # poses agree with the images
    swapped = cams.cam_to_world.copy()
    swapped[:, :3, [0, 1]] = swapped[:, :3, [1, 0]]  # the classic mistake: LLFF columns taken as (right, down)
    assert _epipolar_px(Cameras.from_cam_to_world(cams.K, swapped, 504, 378), 0, 5, pa, pb) > 5.0


def test_nerf_synthetic_lego(data_dir, tmp_path):
    cams = read_transforms(data_dir / "nerf_synthetic_lego/transforms_train_subset.json")
    assert len(cams) == 20 and (cams.width, cams.height) == (800, 800)
    assert all(n.endswith(".png") for n in cams.names)
    assert cams.K[0, 0, 0] == pytest.approx(0.5 * 800 / np.tan(0.5 * 0.6911112070083618))
    uv, z = cams.project(np.zeros((1, 3)))  # cameras on a sphere looking at the origin
    assert (z > 3).all()
    np.testing.assert_allclose(uv[:, 0], 399.5, atol=0.5)
    dirs = cams.cam_to_world[:, :3, 2]
    near = dirs @ dirs.T
    np.fill_diagonal(near, -1)
    i, j = np.unravel_index(near.argmax(), near.shape)  # the two views that overlap most
    pa, pb = _matches(cams.names[i], cams.names[j])
    assert _epipolar_px(cams, i, j, pa, pb) < 0.5
    # COLMAP round trip of real cameras keeps the projection
    back = read_colmap_cameras(write_colmap(tmp_path / "colmap", cams))
    uv2, _ = back.project(np.zeros((1, 3)))
    np.testing.assert_allclose(uv2[np.argsort(back.names)], uv[np.argsort(cams.names)], atol=1e-6)


def test_tartanair(data_dir):
    cams = read_tartanair_poses(data_dir / "tartanair_seq/pose_left.txt")
    assert len(cams) == 20 and (cams.width, cams.height) == (640, 480)
    steps = np.linalg.norm(np.diff(cams.centers, axis=0), axis=1)
    assert (steps < 0.2).all() and steps.sum() > 0.5  # moves a little each frame, ~0.9 m in all
    # This excerpt moves BACKWARD (and down) relative to where the camera looks: checked photometrically below.
    travel = np.diff(cams.centers, axis=0)
    fwd = cams.cam_to_world[:-1, :3, 2]
    cos = np.sum(travel * fwd, 1) / steps
    assert (cos < -0.4).all()
    # Depth + poses warp frame 51 onto frame 50 far better than no motion: validates NED -> OpenCV.
    i, j = 0, 1
    img = [cv2.imread(str(data_dir / f"tartanair_seq/image_left/0000{50 + k}_left.png"), cv2.IMREAD_GRAYSCALE)
           .astype(np.float32) for k in (i, j)]
    d = read_depth(data_dir / f"tartanair_seq/depth_left/0000{50 + i}_left_depth.npy").depth
    h, w = d.shape
    v, u = np.mgrid[0:h:2, 0:w:2]
    pts = cams.unproject(i, np.c_[u.ravel(), v.ravel()], d[::2, ::2].ravel())
    uv, _ = cams[j].as_batch().project(pts)
    warped = cv2.remap(img[1], uv[0, :, 0].reshape(u.shape).astype(np.float32),
                       uv[0, :, 1].reshape(u.shape).astype(np.float32), cv2.INTER_LINEAR, borderValue=-1)
    ok = warped >= 0
    err_warp = np.abs(warped - img[0][::2, ::2])[ok].mean()
    err_still = np.abs(img[1] - img[0]).mean()
    assert ok.mean() > 0.9 and err_warp < 0.5 * err_still
