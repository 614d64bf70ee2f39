"""``tracks.npz`` (rows per frame): the same tracks as the dense per-Gaussian arrays, written and read back, the
dense format still read, and a clear error for what is not a tracks file."""

from __future__ import annotations

import numpy as np
import pytest

from tests.scene4d.test_gflow import _run
from vision3d.errors import InputError
from vision3d.scene4d.tracks import Tracks


@pytest.fixture(scope="module")
def scene():
    *_, scene = _run(frames=4, retire_after=1)
    return scene


def test_rows_per_frame_match_the_dense_tracks(scene, tmp_path):
    uv, front = scene.tracks2d()
    X = scene.tracks3d()
    tr = Tracks.load(Tracks.from_scene(scene, {"queries": np.zeros((1, 3), np.float32)}).save(tmp_path / "t.npz"))
    assert tr.n_frames == scene.n_frames and len(tr.moving) == len(scene.moving)
    for t in range(scene.n_frames):
        idx, u, f = tr.frame(t)
        np.testing.assert_array_equal(np.sort(idx), np.nonzero(scene.exists(t))[0])
        np.testing.assert_allclose(u, uv[t, idx], rtol=1e-6)
        np.testing.assert_array_equal(f, front[t, idx])
    duv, dX, dfront = tr.dense()
    here = np.stack([scene.exists(t) for t in range(scene.n_frames)])
    np.testing.assert_allclose(duv[here], uv[here], rtol=1e-6)
    np.testing.assert_allclose(dX[here], X[here], rtol=1e-6)
    assert np.isnan(duv[~here]).all() and not dfront[~here].any()
    # a moving Gaussian's world position changes from frame to frame; a still one's does not
    mv = np.nonzero(scene.moving & here.all(0))[0]
    assert len(mv) and np.abs(np.diff(dX[:, mv], axis=0)).max() > 0
    st = np.nonzero(~scene.moving & here.all(0))[0]
    assert np.abs(np.diff(dX[:, st], axis=0)).max() == 0
    assert "queries" in tr.extra
    # fewer rows than the dense arrays hold: Gaussians retired or not yet born are not stored
    assert (scene.death >= 0).any() and len(tr.index) < here.size


def test_dense_format_still_read(scene, tmp_path):
    uv, front = scene.tracks2d()
    death = scene.death if scene.death is not None else np.full(len(scene.moving), -1)
    np.savez(tmp_path / "old.npz", tracks2d=uv, tracks3d=scene.tracks3d(), in_front=front, moving=scene.moving,
             birth=scene.birth, death=death)
    old, new = Tracks.load(tmp_path / "old.npz"), Tracks.from_scene(scene)
    for a, b in zip(old.dense(), new.dense()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(InputError):
        old.frame(scene.n_frames)


def test_not_a_tracks_file(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read"):
        Tracks.load(tmp_path / "x.npz")
    np.savez(tmp_path / "y.npz", a=np.zeros(3))
    with pytest.raises(InputError, match="not a vision3d tracks"):
        Tracks.load(tmp_path / "y.npz")


def test_fill_with_flow_continues_tracks_exactly_and_stops_where_it_must():
    from vision3d.scene4d.tracks import fill_with_flow

    H, W, T = 40, 60, 6
    d = np.array([1.5, -0.5], np.float32)                  # a constant translation per frame: exact ground truth
    fw = np.broadcast_to(d[:, None, None], (2, H, W)).copy()
    nan = np.full(2, np.nan, np.float32)
    start = np.array([10.0, 20.0], np.float32)
    truth = start + np.arange(T)[:, None] * d
    given = np.stack([
        np.where(np.arange(T)[:, None] <= 1, truth, nan),   # carriers gone after frame 1 → forward
        np.where(np.arange(T)[:, None] >= 3, truth, nan),   # query at frame 3 → backward to frame 0
        np.where(np.arange(T)[:, None] == 0, [55.0, 5.0], nan),   # leaves the image at x > 59
    ])
    out, src = fill_with_flow(given, lambda t: fw, lambda t: -fw, W, H)
    np.testing.assert_allclose(out[0], truth, atol=1e-4)
    np.testing.assert_allclose(out[1], truth, atol=1e-4)
    np.testing.assert_array_equal(src[0], [1, 1, 2, 2, 2, 2])
    np.testing.assert_array_equal(src[1], [2, 2, 2, 1, 1, 1])
    assert np.isfinite(out[2, :3]).all() and np.isnan(out[2, 3:]).all() and (src[2, 3:] == 0).all()
    # a backward flow that disagrees (an occlusion) stops the chain
    out, src = fill_with_flow(given[:1], lambda t: fw, lambda t: np.zeros_like(fw), W, H)
    assert (src[0] == [1, 1, 0, 0, 0, 0]).all() and np.isnan(out[0, 2:]).all()
