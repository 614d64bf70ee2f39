"""ReynoldsFlow vs OpenCV DIS (medium) and Farnebäck on the real flow data in ../shared/data, one run.

EPE etc. with ``vision3d.flow.metrics.flow_metrics`` on Middlebury (Dimetrodon, Grove2, Hydrangea, RubberWhale;
grey frames) and the Sintel pairs (alley_1, cave_2; frame 0002→0003; clean and final), plus the time per pair
and per 640×480 pair (median of ``--repeat`` runs, methods interleaved). Parameters are the defaults: nothing is
tuned on these images. Writes a Markdown table (default ``docs/bench/reynoldsflow.md``) and prints it.

    python scripts/bench_reynoldsflow.py [--data ../shared/data] [--out docs/bench/reynoldsflow.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from vision3d.flow.classical import dis_flow, farneback_flow
from vision3d.flow.metrics import flow_metrics
from vision3d.flow.reynolds import reynolds_flow
from vision3d.io.flow import read_flow
from vision3d.io.images import read_image

REPO = Path(__file__).resolve().parents[1]
METHODS = {
    "ReynoldsFlow (v_o)": reynolds_flow,
    "ReynoldsFlow, no RTT term": lambda a, b: reynolds_flow(a, b, lighting=False),
    "ReynoldsFlow (v_r = v_o + v_l)": lambda a, b: reynolds_flow(a, b, output="reynolds"),
    "DIS medium": lambda a, b: dis_flow(a, b, "medium"),
    "Farnebäck": farneback_flow,
    "zero flow": lambda a, b: np.zeros((2, *a.shape[:2]), np.float32),
}


def pairs(data: Path):
    mb = data / "middlebury_flow"
    for seq in ("Dimetrodon", "Grove2", "Hydrangea", "RubberWhale"):
        d = mb / "other-data-gray" / seq
        yield "Middlebury", seq, d / "frame10.png", d / "frame11.png", mb / "other-gt-flow" / seq / "flow10.flo"
    si = data / "sintel_flow" / "training"
    for pas in ("clean", "final"):
        for seq in ("alley_1", "cave_2"):
            d = si / pas / seq
            yield f"Sintel {pas}", seq, d / "frame_0002.png", d / "frame_0003.png", si / "flow" / seq / "frame_0002.flo"


def timed(fn, a, b, repeat: int) -> tuple[np.ndarray, float]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(a, b)
        times.append(time.perf_counter() - t)
    return out, 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("VISION3D_DATA", REPO.parent / "shared" / "data")))
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "reynoldsflow.md")
    ap.add_argument("--repeat", type=int, default=1, help="timing runs per pair (median)")
    args = ap.parse_args()

    rows: dict[tuple[str, str], dict[str, dict]] = {}
    for group, seq, p0, p1, pg in pairs(args.data):
        if not (p0.is_file() and p1.is_file() and pg.is_file()):
            continue
        a, b, gt = read_image(p0), read_image(p1), read_flow(pg)
        for name, fn in METHODS.items():
            flow, ms = timed(fn, a, b, args.repeat)
            m = flow_metrics(flow, gt.flow, gt.valid)
            rows.setdefault((group, seq), {})[name] = {**m, "ms": ms, "size": f"{a.shape[1]}x{a.shape[0]}"}

    # time per 640×480 pair: RubberWhale colour frames resized (content does not matter much for these solvers)
    rw = args.data / "middlebury_flow" / "other-data" / "RubberWhale"
    a = cv2.resize(read_image(rw / "frame10.png"), (640, 480), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(read_image(rw / "frame11.png"), (640, 480), interpolation=cv2.INTER_LINEAR)
    ms640 = {name: [] for name in METHODS}
    for _ in range(max(3, args.repeat)):
        for name, fn in METHODS.items():
            ms640[name].append(timed(fn, a, b, 1)[1])

    names = [n for n in METHODS]
    lines = ["# ReynoldsFlow vs classical baselines (one run, defaults, nothing tuned on these images)", "",
             (f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
              f"OpenCV {cv2.__version__}. Command: `python scripts/bench_reynoldsflow.py --repeat {args.repeat}`."), "",
             "## EPE (px) per pair", "",
             "| data | sequence | size | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for (group, seq), res in rows.items():
        size = next(iter(res.values()))["size"]
        lines.append(f"| {group} | {seq} | {size} | " + " | ".join(f"{res[n]['epe']:.3f}" for n in names) + " |")
    lines += ["", "## Means per data set (EPE px / Fl-all % / px1 fraction / ms per pair)", "",
              "| data | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for group in dict.fromkeys(g for g, _ in rows):
        res = [r for (g, _), r in rows.items() if g == group]
        cells = []
        for n in names:
            epe = np.mean([r[n]["epe"] for r in res])
            fl = np.mean([r[n]["flall"] for r in res])
            px1 = np.mean([r[n]["px1"] for r in res])
            ms = np.mean([r[n]["ms"] for r in res])
            cells.append(f"{epe:.3f} / {fl:.1f} / {px1:.2f} / {ms:.0f}")
        lines.append(f"| {group} (n={len(res)}) | " + " | ".join(cells) + " |")
    lines += ["", "## Time per 640×480 pair (ms, median of runs interleaved across methods)", "",
              "| " + " | ".join(names) + " |", "|" + "---|" * len(names),
              "| " + " | ".join(f"{np.median(ms640[n]):.0f}" for n in names) + " |", ""]
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    print(text)


if __name__ == "__main__":
    main()
