"""``geometric_depths`` processes frames in threads with a random stream per frame: the depth and confidence
maps do not depend on the number of workers."""

from __future__ import annotations

import numpy as np
import pytest

import vision3d.depth.geometric as geo
from vision3d.depth.geometric import GeometricConfig, geometric_depths
from vision3d.synth import SynthConfig, render_sequence, sample_scene


@pytest.fixture(scope="module")
def video():
    cfg = SynthConfig(width=96, height=64, n_frames=6, moving_fraction=0.0, static_camera_prob=0.0,
                      camera_translation_px=(3.0, 5.0), camera_rotation_deg=(0.0, 0.3), texture_source="procedural")
    return render_sequence(sample_scene(cfg, np.random.default_rng(3)))


def test_workers_do_not_change_the_result(video, monkeypatch):
    frames, K = list(video.images), video.cameras.K[0]
    asked = []
    real = geo.ordered_map

    def spy(fn, items, workers=None, ahead=None, **kw):
        asked.append(workers)
        return real(fn, items, workers, ahead, **kw)

    monkeypatch.setattr(geo, "ordered_map", spy)
    one = geometric_depths(frames, K, GeometricConfig(workers=1), seed=5)
    three = geometric_depths(frames, K, GeometricConfig(workers=3), seed=5)
    assert asked == [1, 3]              # the setting reaches the thread pool
    assert len(one) == len(three) == len(frames)
    for t, ((d1, c1), (d3, c3)) in enumerate(zip(one, three)):
        # the maps are real measurements, not empty ones that would agree trivially
        assert np.isfinite(d1).all() and (d1 > 0).all(), t
        assert (c1 > 0).mean() > 0.2, (t, (c1 > 0).mean())
        np.testing.assert_array_equal(d1, d3, err_msg=f"depth of frame {t}")
        np.testing.assert_array_equal(c1, c3, err_msg=f"confidence of frame {t}")


def test_seed_matters(video):
    """The per-frame random streams come from ``seed`` (RANSAC sampling): another seed gives other maps, so the
    equality above is not an accident of a computation that ignores its randomness."""
    frames, K = list(video.images), video.cameras.K[0]
    a = geometric_depths(frames, K, GeometricConfig(workers=2), seed=0)
    b = geometric_depths(frames, K, GeometricConfig(workers=2), seed=1)
    assert any(not np.array_equal(da, db) for (da, _), (db, _) in zip(a, b))


def test_worker_processes_give_the_same_result(video):
    """Large videos on many cores run in spawned worker processes (the grey frames sent once to each)."""
    frames, K = list(video.images), video.cameras.K[0]
    one = geometric_depths(frames, K, GeometricConfig(workers=1), seed=5)
    procs = geometric_depths(frames, K, GeometricConfig(workers=4, process_pixels=0), seed=5)
    for (d1, c1), (d2, c2) in zip(one, procs):
        np.testing.assert_array_equal(d1, d2)
        np.testing.assert_array_equal(c1, c2)
