"""Sweep one GFlow setting on real or shipped video: the job's stages up to the scene (decode, flow, depth, split
computed once per video and reused), the scene re-fitted per value; reports the fit (online PSNR = the
re-render's, tested), the lowest frame and the solver time. Writes ``docs/bench/scene4d_sweep_<field>.md``.

    python scripts/sweep_scene4d.py --set densify_opacity=0.99,0.3,0.1 \
        --video ../shared/data/davis2016_480p/JPEGImages/blackswan [--video ...] [--frames 20] [--preset fast]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from pipelines.video2scene import Video2SceneConfig, video2scene_inputs, video2scene_stages
from vision3d.io.atomic import write_text
from vision3d.runner import Runner
from vision3d.scene4d.config import GFlowConfig

REPO = Path(__file__).resolve().parents[1]


def fit(video: Path, run: Path, preset: str, frames: int | None, short_side: int | None, overrides: dict) -> dict:
    cfg = Video2SceneConfig.preset(preset)
    cfg.frames.max_frames = frames
    if short_side:
        cfg.frames.short_side = short_side
    cfg.scene.overrides = overrides
    stages = [s for s in video2scene_stages(cfg) if s.name in ("frames", "flow", "depth", "split", "scene")]
    Runner(run, "video2scene", None).run(stages, video2scene_inputs(video, cfg), force="scene")
    rows = json.loads((run / "scene" / "online.json").read_text())["rows"]
    psnr = [r["psnr"] for r in rows]
    return {"psnr": float(np.mean(psnr)), "psnr_min": float(min(psnr)), "psnr_last": float(psnr[-1]),
            "solver_s": float(sum(r["seconds"] for r in rows)), "n": int(rows[-1]["n"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", required=True, help="FIELD=V1,V2,... (a GFlowConfig field; the first value is the peer)")
    ap.add_argument("--video", type=Path, action="append", required=True)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--short-side", type=int, default=None)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "sweep_scene4d")
    a = ap.parse_args()
    field, _, values = a.set.partition("=")
    if field not in GFlowConfig.__dataclass_fields__:
        raise SystemExit(f"unknown GFlowConfig field {field!r}")
    values = [ast.literal_eval(v) for v in values.split(",")]
    torch.set_num_threads(os.cpu_count() or 1)
    res = {}
    for video in a.video:
        name = video.stem if video.is_file() else video.name
        for v in values:
            res[name, v] = fit(video, a.run / name, a.preset, a.frames, a.short_side, {field: v})
            print(name, v, json.dumps(res[name, v]), flush=True)
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{platform.machine()} CPU"
    cmd = " ".join(f"--video {v.name}" for v in a.video)
    lines = [f"# GFlow sweep: `{field}`", "",
             (f"`python scripts/sweep_scene4d.py --set {a.set} {cmd} --frames {a.frames} --preset {a.preset}"
              f"{f' --short-side {a.short_side}' if a.short_side else ''}` on {dev} ({os.cpu_count()} cores), "
              f"torch {torch.__version__}. Online PSNR equals the re-render's; the first value is the peer."), "",
             f"| video | {field} | PSNR mean (dB) | lowest | last frame | solver s | Gaussians at the end |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for (name, v), r in res.items():
        peer = res[name, values[0]]
        gain = "" if v == values[0] else f" ({r['psnr'] - peer['psnr']:+.2f})"
        lines.append(f"| {name} | {v} | {r['psnr']:.2f}{gain} | {r['psnr_min']:.2f} | {r['psnr_last']:.2f} | "
                     f"{r['solver_s']:.0f} | {r['n']} |")
    out = REPO / "docs" / "bench" / f"scene4d_sweep_{field}.md"
    write_text(out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
