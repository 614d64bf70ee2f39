"""Training batches, augmentation, save/load round trip, and argument checking."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synth_testutil import fronto_plane, hand_scene, random_texture

from vision3d.errors import InputError
from vision3d.synth import (
    LayerSpec,
    PhotometricAugment,
    RigidMotion,
    SceneSpec,
    SynthConfig,
    iter_batches,
    iter_pairs,
    load_sequence,
    make_batch,
    render_frame,
    render_sequence,
    sample_scene,
    save_sequence,
)

SMALL = SynthConfig(width=64, height=48, n_frames=2)


def test_make_batch_shapes_and_torch():
    b = make_batch(SMALL, batch_size=3, rng=0)
    assert b.images.shape == (3, 2, 3, 48, 64) and b.images.dtype == np.float32
    assert b.flow.shape == (3, 1, 2, 48, 64) and b.valid.shape == (3, 1, 48, 64)
    assert b.image1.shape == (3, 3, 48, 64) and b.flow01.shape == (3, 2, 48, 64)
    assert set(np.unique(b.valid)) <= {0.0, 1.0} and np.isfinite(b.flow).all()
    assert b.depth.shape == (3, 2, 48, 64) and b.K.shape == (3, 3, 3) and b.world_to_cam.shape == (3, 2, 4, 4)
    t = b.to_torch()
    assert isinstance(t["images"], torch.Tensor) and t["flow"].dtype == torch.float32
    assert t["moving"].dtype == torch.bool
    again = make_batch(SMALL, batch_size=3, rng=0)
    assert np.array_equal(b.images, again.images) and np.array_equal(b.flow, again.flow)


def test_clips_and_backward_flow():
    b = make_batch(SMALL.replace(n_frames=4), batch_size=2, rng=1, backward=True)
    assert b.images.shape[:2] == (2, 4) and b.flow.shape[:2] == (2, 3) and b.flow_bw.shape == b.flow.shape
    assert b.valid_bw.shape == b.valid.shape


def test_augmentation_changes_images_not_ground_truth():
    aug = PhotometricAugment(prob=1.0, noise_std=(0.01, 0.02))
    plain = make_batch(SMALL, batch_size=2, rng=4)
    b = make_batch(SMALL, batch_size=2, rng=4, augment=aug)
    assert np.array_equal(b.images_clean, plain.images)
    assert np.array_equal(b.flow, plain.flow) and np.array_equal(b.valid, plain.valid)
    assert not np.array_equal(b.images, plain.images)
    assert b.images.min() >= 0 and b.images.max() <= 1 and b.images.shape == plain.images.shape


def test_iterators():
    it = iter_pairs(SMALL.replace(n_frames=3), seed=0)
    samples = [next(it) for _ in range(3)]
    assert samples[0]["image1"].shape == (3, 48, 64) and samples[0]["flow"].shape == (2, 48, 64)
    assert np.array_equal(samples[0]["image2"], samples[1]["image1"])  # consecutive pairs of one clip
    batches = iter_batches(SMALL, batch_size=2, seed=0)
    assert next(batches).images.shape[0] == 2


def test_save_load_round_trip(tmp_path):
    seq = render_sequence(sample_scene(SynthConfig(width=48, height=32, n_frames=3, motion="large"), rng=2))
    folder = save_sequence(seq, tmp_path / "clip")
    assert (folder / "frames" / "00000.png").is_file() and (folder / "flow_fw" / "00001.npy").is_file()
    assert not list(folder.rglob(".*"))  # no temp files left behind
    back = load_sequence(folder)
    assert np.abs(back.images - seq.images).max() <= 0.5 / 255 + 1e-6
    for name in ("depth", "layer_id", "moving_mask", "flow_fw", "flow_bw", "occ_fw", "occ_bw"):
        assert np.array_equal(getattr(back, name), getattr(seq, name)), name
    np.testing.assert_allclose(back.cameras.K, seq.cameras.K)
    np.testing.assert_allclose(back.cameras.world_to_cam, seq.cameras.world_to_cam)
    assert (back.cameras.width, back.cameras.height) == (48, 32)
    meta = json.loads((folder / "meta.json").read_text())
    assert [m["moving"] for m in meta["layers"]] == list(seq.scene.moving_layers)
    deep = load_sequence(save_sequence(seq, tmp_path / "clip16", bit_depth=16))
    assert np.abs(deep.images - seq.images).max() < 1e-4
    (folder / "meta.json").unlink()
    with pytest.raises(InputError):
        load_sequence(folder)


@pytest.mark.parametrize("kw", [{"width": 0}, {"height": -3}, {"width": 9000}, {"n_frames": 0},
                                {"fov_deg": (0, 50)}, {"fov_deg": (60, 30)}, {"depth_range": (1, 1.2)},
                                {"motion": "huge"}, {"texture_source": "paint"}, {"texture_source": "photos"},
                                {"moving_fraction": 1.5}, {"n_layers": (5, 2)}, {"width": 64.5}])
def test_bad_config_raises_input_error(kw):
    with pytest.raises(InputError):
        SynthConfig(**kw)


def test_too_large_message():
    with pytest.raises(InputError, match=r"resolution 9000x256 is too large for the synthetic engine \(max 8192"):
        SynthConfig(width=9000)


def test_other_bad_arguments():
    with pytest.raises(InputError):
        make_batch(SMALL, batch_size=0)
    with pytest.raises(InputError):
        make_batch(SMALL.replace(n_frames=1), batch_size=1)
    with pytest.raises(InputError):
        sample_scene(SMALL, rng="seed")
    with pytest.raises(InputError):
        sample_scene(SynthConfig(texture_source="photos", photo_dirs=("/nonexistent/folder",)))
    with pytest.raises(InputError):
        LayerSpec(RigidMotion.static(np.eye(4)), (0.0, 1.0), random_texture(0, 8, 8))
    with pytest.raises(InputError):
        LayerSpec(RigidMotion.static(np.eye(4)), (1.0, 1.0), random_texture(0, 8, 8), mask=np.ones((4, 4)))
    with pytest.raises(InputError):
        RigidMotion(np.diag([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(InputError):
        SceneSpec([], np.eye(3), 10, 10, np.eye(4))
    scene = hand_scene([fronto_plane(4.0, 2.0, random_texture(0, 16, 16), bounded=False)])
    scene.camera_motion = None
    with pytest.raises(InputError):
        render_frame(scene, 0.5)
    with pytest.raises(InputError):
        PhotometricAugment(brightness=2.0)
