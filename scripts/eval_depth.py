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
            try:
                r = evaluate(m, d)
            except InputError as e:
                rows.append({"method": m, "dataset": d, "missing": str(e).split(" (")[0]})
                print(f"skip {m} on {d}: {e}")
                continue
            rows.append({"method": m, "dataset": d, "kind": r["kind"], "samples": len(r["samples"]),
                         **{k: r[k] for k in ("abs_rel", "delta1", "rmse", "seconds")},
                         "flicker": r.get("flicker", float("nan"))})
            print(f"{m:12s} {d:10s} abs_rel {r['abs_rel']:.3f} delta1 {r['delta1']:.3f} "
                  f"flicker {r.get('flicker', float('nan')):.3f} {r['seconds']:.2f} s/frame", flush=True)
    cols = ["method", "dataset", "kind", "samples", "abs_rel", "delta1", "rmse", "flicker", "seconds"]
    write_text(REPO / "docs/results/depth.csv",
               "\n".join([",".join(cols)] + [",".join(str(r.get(c, "")) for c in cols) for r in rows]) + "\n")
    md = [f"Machine: {platform.machine()} CPU, 2 torch threads. `python scripts/eval_depth.py`; per-sample rows "
          "via `v3d eval depth`. Alignment by kind: relative/inverse → least-squares scale+shift (inverse in inverse "
          "depth), metric → median; caps 10 m (NYU), 80 m (KITTI, TartanAir); Eigen crop (NYU), Garg crop (KITTI). "
          "Flicker: mean relative reprojection error between consecutive aligned frames on GT-co-visible pixels.",
          "", "| method | dataset | kind | abs_rel | δ1 | rmse (m) | flicker | s/frame | paper |",
          "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "missing" in r:
            md.append(f"| {r['method']} | {r['dataset']} | {r['missing']} |  |  |  |  |  | {PAPER.get(r['method'], '')} |")
            continue
        fl = "" if r["flicker"] != r["flicker"] else f"{r['flicker']:.3f}"
        md.append(f"| {r['method']} | {r['dataset']} | {r['kind']} | {r['abs_rel']:.3f} | {r['delta1']:.3f} | "
                  f"{r['rmse']:.3f} | {fl} | {r['seconds']:.2f} | {PAPER.get(r['method'], '')} |")
    block = "\n".join(md)
    replace_marked_block(REPO / "docs/results.md", "depth-table", block, heading="## Depth")
    print(block)


if __name__ == "__main__":
    main()
