"""Benchmark GFlow's per-iteration cost on a real frame; writes docs/bench/gflow_step[_cuda].md.

Fits frame 0 of a video (texture-sampled Gaussians on a plane prior, the paper preset's counts at the chosen
size) twice with different iteration counts and reports the time per iteration from the difference (set-up
excluded). The peer measured in the same run is the same loop with the renderer's per-render NaN/inf checks on
(``rasterize(validate=True)``, what every fitting loop paid before: a host synchronisation per checked tensor on
a GPU). ``--profile`` adds a torch.profiler table of a few iterations (top operators by self time).

    python scripts/bench_gflow_step.py --frames ../shared/data/davis2016_480p/JPEGImages/blackswan \
        [--short-side 480] [--n-init 50000] [--iters 40 160] [--profile]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

import vision3d.scene4d.optimize as gflow_mod
from vision3d.io.images import list_images, read_image
from vision3d.render import rasterize
from vision3d.scene4d.config import GFlowConfig
from vision3d.scene4d.optimize import FrameInput, GFlow

REPO = Path(__file__).resolve().parents[1]


def fit_seconds(image: np.ndarray, cfg: GFlowConfig, device: str, checked: bool) -> tuple[float, int]:
    """Wall time of fitting frame 0 with ``cfg`` (synchronised), and the Gaussian count."""
    h, w = image.shape[:2]
    f = 0.8 * max(w, h)
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    gflow_mod.rasterize = (lambda *a, **k: rasterize(*a, **{**k, "validate": True})) if checked else rasterize
    try:
        solver = GFlow(cfg, K, w, h, "relative", device=device)
        frame = FrameInput(image, np.ones((h, w), np.float32), np.zeros((h, w), bool))
        if device == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        solver.step(frame)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - tic, solver.n
    finally:
        gflow_mod.rasterize = rasterize


def profile_table(image: np.ndarray, cfg: GFlowConfig, device: str, rows: int = 25) -> str:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=acts) as prof:
        fit_seconds(image, cfg, device, checked=False)
    key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=Path, required=True, help="a folder of frames (the first one is fitted)")
    ap.add_argument("--short-side", type=int, default=480)
    ap.add_argument("--n-init", type=int, default=50000)
    ap.add_argument("--iters", type=int, nargs=2, default=(40, 160), help="two iteration counts to difference")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    import cv2

    img = read_image(list_images(a.frames)[0])
    s = a.short_side / min(img.shape[:2])
    image = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    base = GFlowConfig.paper().replace(n_init=a.n_init, densify_first=())
    fit_seconds(image, base.replace(first_iters=5), a.device, False)        # warm-up (gsplat's first-use compile)
    rows = []
    for checked in (False, True):
        t0, _ = fit_seconds(image, base.replace(first_iters=a.iters[0]), a.device, checked)
        t1, n = fit_seconds(image, base.replace(first_iters=a.iters[1]), a.device, checked)
        rows.append((checked, (t1 - t0) / (a.iters[1] - a.iters[0]), n))
    dev = torch.cuda.get_device_name() if a.device == "cuda" else f"CPU ({platform.processor() or 'x86-64'}, " \
        f"{torch.get_num_threads()} threads)"
    h, w = image.shape[:2]
    lines = [f"# GFlow step: time per iteration ({w}×{h}, {a.n_init} initial Gaussians)", "",
             (f"`python scripts/bench_gflow_step.py --frames {a.frames} --short-side {a.short_side} "
             f"--n-init {a.n_init}` on {dev}, torch {torch.__version__}. Frame 0 fitted with {a.iters[0]} and "
             f"{a.iters[1]} iterations; the difference over the extra iterations is the time per iteration "
             "(render, losses, backward, Adam)."), "",
             "| per-render value checks | ms / iteration | Gaussians |", "| --- | --- | --- |"]
    for checked, sec, n in rows:
        lines.append(f"| {'on (before)' if checked else 'off, once per frame (now)'} | {1000 * sec:.2f} | {n} |")
    lines += ["", f"Ratio: {rows[1][1] / max(rows[0][1], 1e-12):.2f}× (checks on / off)."]
    if a.profile:
        lines += ["", "## Profile (one fit of frame 0, top operators by self time)", "", "```",
                  profile_table(image, base.replace(first_iters=30), a.device), "```"]
    text = "\n".join(lines) + "\n"
    out = a.out or REPO / "docs" / "bench" / f"gflow_step{'_cuda' if a.device == 'cuda' else ''}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
