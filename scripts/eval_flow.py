"""Evaluate every flow method on every flow dataset in ../shared/data and write the results table.

Writes ``docs/results/flow.csv`` (one row per method × dataset) and the table between the
``flow-table`` markers in ``docs/results.md``. Learned methods without a checkpoint are listed as missing.

    python scripts/eval_flow.py [--methods dis farneback ...] [--datasets sintel-clean ...]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from vision3d.errors import InputError
from vision3d.flow.evaluate import evaluate
from vision3d.flow.registry import METHODS
from vision3d.io.atomic import write_text
from vision3d.io.markdown import replace_marked_block

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["sintel-clean", "sintel-final", "middlebury"]
# Published numbers for context (different data: full Sintel/KITTI training sets, C+T training).
PAPER = {"streamflow": "Sintel train clean 0.87 / final 2.11 (C+T, T=4, paper)",
         "compactflownet": "no EPE table recoverable here; 'comparable to lightweight SOTA' (paper)",
         "reynolds": "paper reports no EPE (downstream tasks only)",
         "dis": "RubberWhale RMSE ≤ 0.49 px (OpenCV regression test, medium)", "farneback": "—"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    a = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    for m in a.methods:
        for d in a.datasets:
            try:
                _, s = evaluate(d, m)
            except InputError as e:
                print(f"skip {m} on {d}: {e}")
                rows.append({"method": m, "dataset": d, "missing": str(e)})
                continue
            rows.append(s)
            print(f"{m:15s} {d:13s} epe {s['epe']:.3f}  ms/pair {s['ms_per_pair']:.0f}")
    cols = ["method", "dataset", "samples", "epe", "epe_non_occ", "epe_occ", "px1", "px3", "px5", "flall",
            "ms_per_pair", "parameters"]
    lines = [",".join(cols)] + [",".join(str(r.get(c, "")) for c in cols) for r in rows]
    write_text(REPO / "docs/results/flow.csv", "\n".join(lines) + "\n")
    md = [f"Machine: {platform.machine()} CPU, {torch.get_num_threads()} torch threads, full resolution. "
          "`python scripts/eval_flow.py`; per-sample rows via `v3d eval flow`.", "",
          "| method | dataset | EPE | EPE noc | EPE occ | px1 | px3 | px5 | Fl-all % | ms/pair | params | paper |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "missing" in r:
            why = "no checkpoint shipped yet" if "no checkpoint" in r["missing"] else r["missing"]
            md.append(f"| {r['method']} | {r['dataset']} | {why} |  |  |  |  |  |  |  |  | {PAPER.get(r['method'], '')} |")
            continue

        def f(k, fmt="{:.3f}"):
            v = r.get(k)
            return "" if v is None or v != v else fmt.format(v)
        md.append(f"| {r['method']} | {r['dataset']} | {f('epe')} | {f('epe_non_occ')} | {f('epe_occ')} | "
                  f"{f('px1')} | {f('px3')} | {f('px5')} | {f('flall', '{:.1f}')} | {f('ms_per_pair', '{:.0f}')} | "
                  f"{r['parameters']:,} | {PAPER.get(r['method'], '')} |")
    block = "\n".join(md)
    replace_marked_block(REPO / "docs/results.md", "flow-table", block)
    print(block)


if __name__ == "__main__":
    main()
