"""Benchmark: geometric depth in worker processes that start with one BLAS thread (now) against workers that
inherit the machine's BLAS thread count (before), on real frames.

Each spawned worker's BLAS/OpenMP runtime sizes its pool when it loads; with W workers and a pool of P threads
each, W × P threads share the cores and the small matrix products of the pose refinement wait on each other. The
peer runs the same frames with the workers' environment left as it is (``--threads`` BLAS threads each, what an
unset environment gives on a machine with that many cores). Writes ``docs/bench/depth_workers.md``.

    python scripts/bench_depth_workers.py --frames ../shared/data/davis2016_480p/JPEGImages/blackswan \
        [--n 16] [--workers 4] [--threads 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import time
from pathlib import Path

import numpy as np

import vision3d.core.parallel as parallel
from vision3d.depth.geometric import GeometricConfig, geometric_depths
from vision3d.io.images import list_images, read_image

REPO = Path(__file__).resolve().parents[1]


def timed(frames, workers: int, one_thread: bool) -> tuple[float, np.ndarray]:
    start = parallel._OneThreadProcess.start
    if not one_thread:           # the peer: workers inherit the environment unchanged
        parallel._OneThreadProcess.start = multiprocessing.context.SpawnProcess.start
    try:
        tic = time.perf_counter()
        out = geometric_depths(frames, cfg=GeometricConfig(workers=workers, process_pixels=0))
        return time.perf_counter() - tic, np.stack([d for d, _ in out])
    finally:
        parallel._OneThreadProcess.start = start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=Path, required=True)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=8, help="BLAS threads per worker in the peer")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "depth_workers.md")
    a = ap.parse_args()
    frames = [read_image(p) for p in list_images(a.frames)[:a.n]]
    for k in parallel.THREAD_ENV:
        os.environ[k] = str(a.threads)
    t_peer, d_peer = timed(frames, a.workers, one_thread=False)
    t_now, d_now = timed(frames, a.workers, one_thread=True)
    same = float(np.max(np.abs(d_now - d_peer) / np.maximum(d_peer, 1e-6)))
    h, w = frames[0].shape[:2]
    lines = ["# Geometric depth: worker processes with one BLAS thread", "",
             f"`python scripts/bench_depth_workers.py --frames {a.frames.name} --n {a.n} --workers {a.workers} "
             f"--threads {a.threads}` on {platform.machine()}, {os.cpu_count()} cores; {a.n} frames at {w}×{h}.", "",
             "| workers' BLAS threads | seconds | frames / s |", "| --- | ---: | ---: |",
             f"| {a.threads} each (inherited, before) | {t_peer:.1f} | {a.n / t_peer:.2f} |",
             f"| 1 each (now) | {t_now:.1f} | {a.n / t_now:.2f} |", "",
             f"Ratio: {t_peer / t_now:.2f}× (before / now). Largest relative depth difference between the two: {same:.1e}.",
             ""]
    a.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
