"""Determinism, occlusion sanity, moving masks, depth validity, textures (procedural and real photos)."""

from __future__ import annotations

import numpy as np
import pytest
from synth_testutil import fronto_plane, hand_scene, random_texture

from vision3d.synth import SynthConfig, TexturePool, procedural_texture, random_mask, render_sequence, sample_scene


def _arrays(seq):
    return [seq.images, seq.depth, seq.layer_id, seq.moving_mask, seq.flow_fw, seq.flow_bw, seq.occ_fw, seq.occ_bw,
            seq.cameras.K, seq.cameras.world_to_cam]


def test_same_seed_gives_identical_sequences():
    cfg = SynthConfig(width=96, height=64, n_frames=3, motion="large")
    a = render_sequence(sample_scene(cfg, rng=11))
    b = render_sequence(sample_scene(cfg, rng=np.random.default_rng(11)))
    for x, y in zip(_arrays(a), _arrays(b)):
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
    c = render_sequence(sample_scene(cfg, rng=12))
    assert not np.array_equal(a.images, c.images)
    assert not np.array_equal(a.flow_fw, c.flow_fw)


def test_default_rng_is_config_seed():
    cfg = SynthConfig(width=64, height=48, seed=3)
    a = render_sequence(sample_scene(cfg))
    b = render_sequence(sample_scene(cfg, rng=3))
    assert np.array_equal(a.images, b.images)


def test_static_scene_static_camera_has_zero_flow_and_no_occlusion():
    cfg = SynthConfig(width=96, height=64, n_frames=3, static_camera_prob=1.0, moving_fraction=0.0)
    for seed in range(3):
        seq = render_sequence(sample_scene(cfg, rng=seed))
        assert np.abs(seq.flow_fw).max() < 1e-5 and np.abs(seq.flow_bw).max() < 1e-5
        assert not seq.occ_fw.any() and not seq.occ_bw.any()
        assert not seq.moving_mask.any()
        assert np.array_equal(seq.images[0], seq.images[1])


def test_object_moving_right_occludes_its_leading_edge():
    bg = fronto_plane(8.0, 4.0, random_texture(1, 100, 100), bounded=False)
    mask = np.zeros((50, 50), np.float32)
    mask[2:-2, 2:-2] = 1
    fg = fronto_plane(4.0, 1.0, random_texture(2, 50, 50), mask=mask, velocity=(0.2, 0.0, 0.0))  # +5 px/frame
    seq = render_sequence(hand_scene([bg, fg], n_frames=2))
    lid = seq.layer_id[0]
    rows = np.where((lid == 1).any(1))[0]
    cols = np.where((lid == 1).any(0))[0]
    r = rows[len(rows) // 2]
    right, left = cols.max(), cols.min()
    occ_fw, occ_bw = seq.occ_fw[0], seq.occ_bw[0]
    assert occ_fw[r, right + 1:right + 6].all()  # background about to be covered
    assert not occ_fw[r, right + 7:right + 12].any()
    assert not occ_fw[r, left - 6:left].any()  # trailing side stays visible
    assert not occ_fw[rows[0] + 3:rows[-1] - 3, left:right + 1].any()  # the object itself stays visible
    lid1 = seq.layer_id[1]
    left1 = np.where((lid1 == 1).any(0))[0].min()
    assert occ_bw[r, left1 - 5:left1].all()  # disoccluded background has no match in frame 0
    assert seq.moving_mask[0].sum() == (lid == 1).sum()


def test_moving_mask_is_exactly_the_moving_layers():
    cfg = SynthConfig(width=96, height=64, n_frames=3, moving_fraction=0.5, n_layers=(4, 8))
    seen_moving = False
    for seed in range(4):
        scene = sample_scene(cfg, rng=seed)
        seq = render_sequence(scene)
        moving_ids = np.flatnonzero(scene.moving_layers)
        expected = np.isin(seq.layer_id, moving_ids)
        assert np.array_equal(seq.moving_mask, expected)
        seen_moving |= bool(expected.any())
    assert seen_moving


@pytest.mark.parametrize("motion", ["small", "large"])
def test_depth_positive_finite_and_every_pixel_has_a_surface(motion):
    cfg = SynthConfig(width=80, height=60, n_frames=4, motion=motion, ground_plane_prob=0.5, fov_deg=(30, 110))
    for seed in range(6):
        seq = render_sequence(sample_scene(cfg, rng=seed))
        assert np.isfinite(seq.depth).all() and (seq.depth > 0).all()
        assert (seq.layer_id >= 0).all()
        assert np.isfinite(seq.flow_fw).all() and np.isfinite(seq.flow_bw).all()
        assert seq.images.dtype == np.float32 and 0.0 <= seq.images.min() and seq.images.max() <= 1.0


def test_scene_has_background_and_foreground_layers():
    scene = sample_scene(SynthConfig(n_layers=(2, 8)), rng=0)
    kinds = [layer.kind for layer in scene.layers]
    assert kinds[0] == "background" and not scene.layers[0].bounded
    assert 2 <= kinds.count("foreground") <= 8
    tex = scene.layers[0].texture_rgb()
    assert tex.dtype == np.float32 and 0 <= tex.min() and tex.max() <= 1


def test_procedural_textures_and_masks():
    rng = np.random.default_rng(0)
    for smooth in (False, True):
        tex = procedural_texture(rng, 40, 60, smooth=smooth)
        assert tex.shape == (40, 60, 3) and tex.dtype == np.float32
        assert 0.0 <= tex.min() and tex.max() <= 1.0 and tex.std() > 0.01
    for shape in ("ellipse", "polygon", "blob", "rectangle"):
        m = random_mask(rng, 50, 70, shape)
        assert set(np.unique(m)) <= {0.0, 1.0} and m.sum() > 50
        assert not m[:2].any() and not m[-2:].any() and not m[:, :2].any() and not m[:, -2:].any()
    pool = TexturePool("procedural", size=64, pool_size=4, seed=1)
    a = pool.sample(np.random.default_rng(5), 30, 50)
    b = TexturePool("procedural", size=64, pool_size=4, seed=1).sample(np.random.default_rng(5), 30, 50)
    assert a.shape == (30, 50, 3) and np.array_equal(a, b)


def test_real_photo_textures(data_dir):
    kodak = data_dir / "photos" / "kodak"
    if not kodak.is_dir():
        pytest.skip(f"{kodak} not found")
    dirs = [str(kodak)] + ([str(data_dir / "photos" / "bsds")] if (data_dir / "photos" / "bsds").is_dir() else [])
    cfg = SynthConfig(width=96, height=64, n_frames=2, texture_source="photos", photo_dirs=tuple(dirs))
    seq = render_sequence(sample_scene(cfg, rng=0))
    assert seq.images.std() > 0.02 and np.isfinite(seq.depth).all()
    tex = TexturePool("photos", photo_dirs=dirs).sample(np.random.default_rng(0), 48, 64)
    assert tex.shape == (48, 64, 3) and tex.dtype == np.float32 and 0 <= tex.min() and tex.max() <= 1
    mixed = SynthConfig(width=64, height=48, texture_source="mixed", photo_dirs=tuple(dirs))
    assert np.isfinite(render_sequence(sample_scene(mixed, rng=1)).flow_fw).all()
