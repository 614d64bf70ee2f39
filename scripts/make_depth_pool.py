"""Render a pool of 3D synthetic clips (RGB, exact depth, poses) for depth training; resumable.

Each clip is ``runs/data/scenes3d/clip_NNNNN.npz`` (images uint8, depth float16, K, world_to_cam, alpha uint8);
existing clips are skipped, so the command can be stopped and re-run.

    python scripts/make_depth_pool.py --clips 300 --width 160 --height 120 --frames 4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from vision3d.flow.datasets import data_root
from vision3d.io.atomic import atomic_path
from vision3d.synth.scenes3d import Scene3DConfig, render_clip3d
from vision3d.synth.textures import TexturePool

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=300)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "data" / "scenes3d")
    a = ap.parse_args()
    torch.set_num_threads(1)
    a.out.mkdir(parents=True, exist_ok=True)
    photos = [str(data_root() / "photos" / d) for d in ("kodak", "bsds") if (data_root() / "photos" / d).is_dir()]
    textures = TexturePool("mixed" if photos else "procedural", photo_dirs=photos, seed=a.seed)
    cfg = Scene3DConfig(width=a.width, height=a.height, n_frames=a.frames)
    t0, made = time.time(), 0
    for i in range(a.clips):
        path = a.out / f"clip_{i:05d}.npz"
        if path.exists():
            continue
        clip = render_clip3d(cfg, np.random.default_rng([a.seed, i]), textures)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, images=(clip.images * 255 + 0.5).astype(np.uint8),
                                depth=clip.depth.astype(np.float16), K=clip.K, world_to_cam=clip.world_to_cam,
                                alpha=(clip.alpha * 255 + 0.5).astype(np.uint8))
        made += 1
        if made % 20 == 0:
            print(f"{i + 1}/{a.clips} clips, {(time.time() - t0) / made:.2f} s/clip", flush=True)
    print(f"pool ready: {a.out} ({a.clips} clips)")


if __name__ == "__main__":
    main()
