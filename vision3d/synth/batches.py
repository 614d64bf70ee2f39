"""Training data on the fly: batches of T-frame clips (pairs when T = 2) with exact flow, validity and depth.

Arrays are float32 in the torch layout (``(B,T,3,H,W)`` images, ``(B,T-1,2,H,W)`` flow); ``to_torch()``
wraps them without copying. Each clip is its own random scene; optional photometric augmentation changes
only ``images`` (``images_clean`` keeps the rendered ones) and never the ground truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from vision3d.errors import InputError
from vision3d.synth.augment import PhotometricAugment
from vision3d.synth.config import SynthConfig
from vision3d.synth.sampling import as_rng, sample_scene
from vision3d.synth.sequence import iter_sequence


@dataclass
class SynthBatch:
    """``images`` (B,T,3,H,W); ``flow``/``valid`` (B,T-1,2,H,W)/(B,T-1,H,W): forward flow t→t+1 and 1 where the
    pixel stays visible; ``flow_bw``/``valid_bw`` the same backwards (None unless asked for); ``depth`` (B,T,H,W)
    metric; ``moving`` (B,T,H,W) bool; ``K`` (B,3,3); ``world_to_cam`` (B,T,4,4)."""

    images: np.ndarray
    flow: np.ndarray
    valid: np.ndarray
    depth: np.ndarray
    moving: np.ndarray
    K: np.ndarray
    world_to_cam: np.ndarray
    flow_bw: np.ndarray | None = None
    valid_bw: np.ndarray | None = None
    images_clean: np.ndarray | None = None

    @property
    def image1(self) -> np.ndarray:
        """First frames ``(B,3,H,W)``."""
        return self.images[:, 0]

    @property
    def image2(self) -> np.ndarray:
        """Second frames ``(B,3,H,W)``."""
        return self.images[:, 1]

    @property
    def flow01(self) -> np.ndarray:
        """Flow from frame 0 to 1, ``(B,2,H,W)``."""
        return self.flow[:, 0]

    @property
    def valid01(self) -> np.ndarray:
        return self.valid[:, 0]

    def __len__(self) -> int:
        return len(self.images)

    def to_torch(self, device=None) -> dict:
        """The arrays as torch tensors (shared memory on CPU; ``moving`` as bool)."""
        import torch

        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = torch.from_numpy(v).to(device) if device is not None else torch.from_numpy(v)
        return out


def _clip(config: SynthConfig, rng: np.random.Generator, backward: bool):
    """Render one random clip into the batch layout (images CHW, NaN flow → 0 and invalid)."""
    scene = sample_scene(config, rng)
    t, h, w = scene.n_frames, scene.height, scene.width
    images = np.empty((t, 3, h, w), np.float32)
    depth = np.empty((t, h, w), np.float32)
    moving = np.empty((t, h, w), bool)
    flow = np.empty((t - 1, 2, h, w), np.float32)
    valid = np.empty((t - 1, h, w), np.float32)
    flow_bw = np.empty_like(flow) if backward else None
    valid_bw = np.empty_like(valid) if backward else None
    for i, (frame, pair) in enumerate(iter_sequence(scene, backward)):
        images[i] = frame.image.transpose(2, 0, 1)
        depth[i], moving[i] = frame.depth, frame.moving_mask
        if pair is not None:
            np.nan_to_num(pair.flow_fw, copy=False, nan=0.0)
            flow[i - 1], valid[i - 1] = pair.flow_fw, ~pair.occ_fw
            if backward:
                np.nan_to_num(pair.flow_bw, copy=False, nan=0.0)
                flow_bw[i - 1], valid_bw[i - 1] = pair.flow_bw, ~pair.occ_bw
    return images, flow, valid, depth, moving, scene.K, scene.world_to_cam, flow_bw, valid_bw


def make_batch(config: SynthConfig | None = None, batch_size: int = 8, rng=None,
               augment: PhotometricAugment | None = None, backward: bool = False) -> SynthBatch:
    """A batch of ``batch_size`` random clips of ``config.n_frames`` (>= 2) frames each.

    ``rng``: Generator or int seed (default ``config.seed``); the same seed gives identical batches.
    """
    cfg = config or SynthConfig()
    if int(batch_size) < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if cfg.n_frames < 2:
        raise InputError(f"training clips need n_frames >= 2, got {cfg.n_frames}")
    rng = as_rng(rng, cfg.seed)
    clips = [_clip(cfg, rng, backward) for _ in range(int(batch_size))]
    cols = list(zip(*clips))
    images = np.stack(cols[0])
    clean = None
    if augment is not None:
        clean = images
        images = np.stack([augment(c, rng) for c in clean])
    return SynthBatch(
        images=images, flow=np.stack(cols[1]), valid=np.stack(cols[2]), depth=np.stack(cols[3]),
        moving=np.stack(cols[4]), K=np.stack(cols[5]).astype(np.float32),
        world_to_cam=np.stack(cols[6]).astype(np.float32),
        flow_bw=np.stack(cols[7]) if backward else None, valid_bw=np.stack(cols[8]) if backward else None,
        images_clean=clean)


def iter_batches(config: SynthConfig | None = None, batch_size: int = 8, seed: int | None = None,
                 augment: PhotometricAugment | None = None, backward: bool = False) -> Iterator[SynthBatch]:
    """Endless batches from one generator seeded with ``seed`` (default ``config.seed``)."""
    cfg = config or SynthConfig()
    rng = np.random.default_rng(cfg.seed if seed is None else seed)
    while True:
        yield make_batch(cfg, batch_size, rng, augment, backward)


def iter_pairs(config: SynthConfig | None = None, seed: int | None = None,
               augment: PhotometricAugment | None = None) -> Iterator[dict]:
    """Endless single training pairs ``{image1, image2 (3,H,W), flow (2,H,W), valid (H,W)}`` float32.

    Every consecutive pair of each random clip is used (a ``config.n_frames``-frame clip gives T-1 pairs),
    which amortises scene sampling. Suits a torch ``IterableDataset`` (give each worker its own seed).
    """
    cfg = config or SynthConfig()
    if cfg.n_frames < 2:
        raise InputError(f"training pairs need n_frames >= 2, got {cfg.n_frames}")
    rng = np.random.default_rng(cfg.seed if seed is None else seed)
    while True:
        images, flow, valid = _clip(cfg, rng, False)[:3]
        for i in range(len(flow)):
            pair = images[i:i + 2]
            if augment is not None:
                pair = augment(pair, rng)
            yield {"image1": pair[0], "image2": pair[1], "flow": flow[i], "valid": valid[i]}
