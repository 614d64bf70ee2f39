"""Evaluate every depth method on every depth dataset in ../shared/data; write the results table.

Writes ``docs/results/depth.csv`` and the table between the ``depth-table`` markers in ``docs/results.md``.
Methods that cannot run on a dataset (geometric on single images, learned models without a checkpoint) are
listed with the reason. ``constant`` is the constant-depth baseline (aligned like a relative prediction).

    python scripts/eval_depth.py [--methods constant geometric futuredepth primedepth] [--datasets tartanair ...]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from vision3d.depth.evaluate import evaluate
from vision3d.errors import InputError
from vision3d.io.atomic import write_text
from vision3d.io.markdown import replace_marked_block

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["tartanair", "nyu", "kitti"]
METHODS = ["constant", "geometric", "futuredepth", "primedepth"]
# temporal-fusion variants, run on video datasets only (label → method, estimate() options)
VARIANTS = {"futuredepth": [("futuredepth --no-temporal", {"temporal": False})],
            "primedepth": [("primedepth --temporal", {"temporal": True})],
            # what video2scene runs on frames above short side 240 (the paper preset's 480p)
            "geometric": [("geometric at short side 240", {"work_short_side": 240})]}
VIDEO_DATASETS = {"tartanair"}
PAPER = {"futuredepth": "KITTI Eigen AbsRel 0.041 / δ1 0.984 (paper, trained on KITTI)",
         "primedepth": "zero-shot KITTI AbsRel 0.079 / δ1 0.937, NYUv2 0.058 / 0.966 (paper, SD 2.1 backbone)",
         "geometric": "—", "constant": "—"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    a = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    for d in a.datasets:
        for m in a.methods:
            if m == "geometric" and d != "tartanair":
                rows.append({"method": m, "dataset": d, "missing": "needs a video (single images here)"})
                continue
            runs = [(m, m, {})] + [(label, m, kw) for label, kw in VARIANTS.get(m, []) if d in VIDEO_DATASETS]
            for label, name, kw in runs:
                try:
                    r = evaluate(name, d, **kw)
                except InputError as e:
                    rows.append({"method": label, "dataset": d, "missing": str(e).split(" (")[0]})
                    print(f"skip {label} on {d}: {e}")
                    continue
                rows.append({"method": label, "paper": m, "dataset": d, "kind": r["kind"],
                             "samples": len(r["samples"]),
                             **{k: r[k] for k in ("abs_rel", "delta1", "rmse", "seconds")},
                             **{k: r.get(k, float("nan")) for k in ("flicker", "flicker_frame", "tae", "abs_rel_video")}})
                print(f"{label:12s} {d:10s} abs_rel {r['abs_rel']:.3f} delta1 {r['delta1']:.3f} "
                      f"flicker {r.get('flicker', float('nan')):.4f} tae {r.get('tae', float('nan')):.4f} "
                      f"abs_rel_video {r.get('abs_rel_video', float('nan')):.3f} {r['seconds']:.2f} s/frame",
                      flush=True)
    cols = ["method", "dataset", "kind", "samples", "abs_rel", "delta1", "rmse", "flicker", "flicker_frame", "tae",
            "abs_rel_video", "seconds"]
    write_text(REPO / "docs/results/depth.csv",
               "\n".join([",".join(cols)] + [",".join(str(r.get(c, "")) for c in cols) for r in rows]) + "\n")
    md = [f"Machine: {platform.machine()} CPU, 2 torch threads. `python scripts/eval_depth.py`; per-sample rows "
          "via `v3d eval depth`. Alignment by kind: relative/inverse → least-squares scale+shift (inverse in inverse "
          "depth), metric → median; caps 10 m (NYU), 80 m (KITTI, TartanAir); Eigen crop (NYU), Garg crop (KITTI). "
          "Flicker: mean relative reprojection error between consecutive frames (GT poses) on GT-co-visible pixels, "
          "with one alignment per consecutive pair; flicker (frame-aligned): each frame aligned on its own, which "
          "adds the alignments' own jitter; TAE and abs_rel (video): one alignment for the whole video (the "
          "video-depth protocol of DepthCrafter / Video Depth Anything), so scale drift counts.",
          "", "| method | dataset | kind | abs_rel | δ1 | rmse (m) | flicker | flicker (frame-aligned) | TAE | "
          "abs_rel (video) | s/frame | paper |",
          "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]

    def num(x, fmt=".4f"):
        return "" if x != x else format(x, fmt)

    for r in rows:
        paper = PAPER.get(r.get("paper", r["method"]), "")
        if "missing" in r:
            md.append(f"| {r['method']} | {r['dataset']} | {r['missing']} |  |  |  |  |  |  |  |  | {paper} |")
            continue
        md.append(f"| {r['method']} | {r['dataset']} | {r['kind']} | {r['abs_rel']:.3f} | {r['delta1']:.3f} | "
                  f"{r['rmse']:.3f} | {num(r['flicker'])} | {num(r['flicker_frame'])} | {num(r['tae'])} | {num(r['abs_rel_video'], '.3f')} | "
                  f"{r['seconds']:.2f} | {paper} |")
    block = "\n".join(md)
    replace_marked_block(REPO / "docs/results.md", "depth-table", block, heading="## Depth")
    print(block)


if __name__ == "__main__":
    main()
