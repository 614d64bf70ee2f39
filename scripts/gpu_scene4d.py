"""GFlow on a CUDA machine: a DAVIS sequence through ``video2scene`` (paper or fast preset, gsplat), scored like
``v3d eval scene4d`` (re-render PSNR/SSIM of the input frames, J&F of the propagated first-frame annotation) and
timed per stage. The video stage (PyAV) is left out so that it runs where only torch + gsplat are installed;
results go to one JSON file.

    python scripts/gpu_scene4d.py --seq ../shared/data/davis2016_480p --preset paper --out runs/gpu_blackswan
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pipelines.video2scene import (
    Video2SceneConfig,
    _frame_paths,
    _read_frame,
    _render,
    _scene,
    image_scores,
    video2scene_inputs,
    video2scene_stages,
)
from vision3d.runner import Runner
from vision3d.scene4d.benchmarks import mask_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=Path, required=True, help="DAVIS root (JPEGImages/, Annotations/)")
    ap.add_argument("--name", default="blackswan")
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--skip", default="renders", help="stages left out, comma-separated (renders needs PyAV)")
    ap.add_argument("--depth-work", type=int, default=0,
                    help="geometric depth measured at this short side and resized (0: full size)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--result", type=Path, required=True, help="JSON file for the scores and timings")
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = Video2SceneConfig.preset(a.preset)
    cfg.frames.max_frames = a.max_frames
    cfg.depth.work_short_side = a.depth_work
    cfg.flow.device = cfg.depth.device = cfg.scene.device = dev
    anns = sorted((a.seq / "Annotations" / a.name).glob("*.png"))
    cfg.outputs.mask = str(anns[0])
    skip = set(a.skip.split(",")) | {"renders"}
    stages = [s for s in video2scene_stages(cfg) if s.name not in skip]
    tic = time.perf_counter()
    def show(ev) -> None:     # a line per event, timestamped, so a killed run still says how far it got
        print(f"[{time.perf_counter() - tic:7.1f}s] {ev.stage} {ev.done}/{ev.total} {ev.message or ''}", flush=True)

    res = Runner(a.out, "video2scene", show).run(stages, video2scene_inputs(a.seq / "JPEGImages" / a.name, cfg))
    total = time.perf_counter() - tic
    scene, frames = _scene(a.out), _frame_paths(a.out)
    rows = [image_scores(_render(scene.gaussians_at(t), scene.world_to_cam[t], scene.K, scene.width,
                                 scene.height).colors[0], _read_frame(frames[t])) for t in range(scene.n_frames)]
    m = res.manifest
    out = {"seq": a.name, "preset": a.preset, "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
           "frames": scene.n_frames, "size": f"{scene.width}x{scene.height}",
           "psnr": float(np.mean([r["psnr"] for r in rows])), "ssim": float(np.mean([r["ssim"] for r in rows])),
           **mask_scores(a.out / "masks" / "object", anns, scene.n_frames), "seconds_total": total,
           "stage_seconds": {k: v.get("seconds") for k, v in m["stages"].items()},
           "gaussians": len(scene.moving), "per_frame": rows,
           "online": json.loads((a.out / "scene" / "online.json").read_text())["rows"]}
    a.result.write_text(json.dumps(out, indent=1, default=float))
    print(json.dumps({k: v for k, v in out.items() if k not in ("per_frame", "online")}, default=float))


if __name__ == "__main__":
    main()
