"""Evaluate video → 4D (GFlow, ``video2scene``) on the real data in ../shared/data and the shipped synthetic clip;
write ``docs/results/scene4d.csv`` and the table between the ``scene4d-table`` markers in ``docs/results.md``.

    python scripts/eval_scene4d.py [--runs blackswan tartanair-geometric tartanair-import synth] [--preset fast]
"""

from __future__ import annotations

import argparse
import csv
import io
import platform
from pathlib import Path

import torch

from pipelines.demo import SAMPLE
from pipelines.video2scene import Video2SceneConfig
from vision3d.flow.datasets import data_root
from vision3d.io.atomic import write_text
from vision3d.io.markdown import replace_marked_block
from vision3d.scene4d import benchmarks

REPO = Path(__file__).resolve().parents[1]
RUNS = ["blackswan", "tartanair-geometric", "tartanair-import", "synth"]
PAPER = {"blackswan": "DAVIS (30 videos) PSNR 29.74 / SSIM 0.9205; 10–20 min per video on an RTX A5000",
         "tartanair-geometric": "Sintel ATE 0.124 / RPE_t 0.039 / RPE_r 0.599 (MASt3R depth)",
         "tartanair-import": "Sintel ATE 0.124 / RPE_t 0.039 / RPE_r 0.599 (MASt3R depth)",
         "synth": "—"}


def run_one(name: str, preset: str, out: Path) -> dict:
    cfg = Video2SceneConfig.preset(preset)
    root = data_root()
    if name == "blackswan":
        seq = root / "davis2016_480p" / "JPEGImages" / "blackswan"
        return benchmarks.eval_davis(seq, root / "davis2016_480p" / "Annotations" / "blackswan", out / name, cfg)
    if name.startswith("tartanair"):
        return benchmarks.eval_tartanair(root / "tartanair_seq", out / name, cfg, depth=name.split("-")[1])
    if name == "synth":
        return benchmarks.eval_synth(SAMPLE, out / name, cfg)
    raise SystemExit(f"unknown run {name}")


def fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", default=RUNS)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "eval_scene4d")
    a = ap.parse_args()
    torch.set_num_threads(2)
    machine = f"dev CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    rows = []
    for name in a.runs:
        r = run_one(name, a.preset, a.out)
        rows.append({"run": name, "preset": a.preset, **r, "machine": machine})
        print(name, {k: fmt(v) for k, v in r.items()}, flush=True)
        write_tables(rows, a.preset, machine)        # after every run, so a long evaluation reports as it goes


def write_tables(rows: list[dict], preset: str, machine: str) -> None:
    keys = sorted({k for r in rows for k in r})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    write_text(REPO / "docs" / "results" / "scene4d.csv", buf.getvalue())
    lines = ["| run | preset | frames | re-render PSNR / SSIM | J / F / J&F | ATE / RPE_t / RPE_r | depth abs_rel (constant) "
             "| track EPE/step (standing still) | time | paper |", "|---|---|---:|---|---|---|---|---|---:|---|"]
    for r in rows:
        psnr = f"{r['psnr']:.2f} / {r.get('ssim', float('nan')):.3f}" if "psnr" in r else ""
        jf = f"{r['J']:.3f} / {r['F']:.3f} / {r['JF']:.3f}" if "J" in r else ""
        traj = f"{r['ate']:.4f} / {r['rpe_t']:.4f} / {r['rpe_r']:.3f}°" if "ate" in r else ""
        dep = f"{r['depth_abs_rel']:.3f} ({r['depth_abs_rel_constant']:.3f})" if "depth_abs_rel" in r else ""
        trk = f"{r['track_epe_step']:.3f} ({r['track_epe_step_zero']:.3f}) px" if "track_epe_step" in r else ""
        lines.append(f"| {r['run']} | {r['preset']} | {r['frames']} | {psnr} | {jf} | {traj} | {dep} | {trk} | "
                     f"{r['seconds'] / 60:.1f} min | {PAPER.get(r['run'], '')} |")
    lines.append("")
    lines.append(f"Measured on the {machine} with `python scripts/eval_scene4d.py --preset {preset}`.")
    replace_marked_block(REPO / "docs" / "results.md", "scene4d-table", "\n".join(lines),
                         heading="## Video → 4D scene (GFlow, issue 6)")


if __name__ == "__main__":
    main()
