"""Synthetic data engine: layered 3D scenes (textured planar patches with hard masks, moving camera, some
independently moving objects) rendered in closed form with exact flow, depth, occlusion, masks and poses.

Typical use::

    from vision3d.synth import SynthConfig, sample_scene, render_sequence, make_batch
    seq = render_sequence(sample_scene(SynthConfig(n_frames=4), rng=0))
    batch = make_batch(SynthConfig(motion="large"), batch_size=8, rng=0).to_torch()
"""

from vision3d.synth.augment import PhotometricAugment
from vision3d.synth.batches import SynthBatch, iter_batches, iter_pairs, make_batch
from vision3d.synth.config import MOTION_PRESETS, SynthConfig
from vision3d.synth.motion import RigidMotion, so3_exp
from vision3d.synth.render import RenderedFrame, flow_between, layer_homography, render_frame
from vision3d.synth.sampling import sample_scene, texture_pool_for
from vision3d.synth.scene import LayerSpec, SceneSpec, check_resolution
from vision3d.synth.sequence import PairGT, SynthSequence, iter_sequence, render_sequence
from vision3d.synth.store import load_sequence, save_sequence
from vision3d.synth.textures import TexturePool, procedural_texture, random_mask, value_noise

__all__ = [
    "MOTION_PRESETS", "LayerSpec", "PairGT", "PhotometricAugment", "RenderedFrame", "RigidMotion", "SceneSpec",
    "SynthBatch", "SynthConfig", "SynthSequence", "TexturePool", "check_resolution", "flow_between", "iter_batches",
    "iter_pairs", "iter_sequence", "layer_homography", "load_sequence", "make_batch", "procedural_texture",
    "random_mask", "render_frame", "render_sequence", "sample_scene", "save_sequence", "so3_exp",
    "texture_pool_for", "value_noise",
]
