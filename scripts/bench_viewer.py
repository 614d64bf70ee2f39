"""Viewer benchmark: ``v3d view RUN`` in headless Chromium (SwiftShader WebGL, so a lower bound on a laptop with
a GPU): bytes the page receives until the first frame is drawn, time to first frame, and per timeline step the
bytes sent and the time until the picture changes. Writes ``docs/bench/viewer.md`` and prints it.

    python scripts/bench_viewer.py runs/eval/scene4d_blackswan_fast_geometric [--steps 8]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from viewers.browser import (
    CHROMIUM_ARGS,
    Page,
    ViewerProcess,
    changed_fraction,
    chromium_path,
    drawn_fraction,
    free_port,
)
from vision3d.io.atomic import write_text

REPO = Path(__file__).resolve().parents[1]


def wait_until(fn, timeout: float, poll: float = 0.1):
    """Poll ``fn()`` until it returns a truthy value; returns ``(value, seconds)``."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        v = fn()
        if v:
            return v, time.perf_counter() - t0
        time.sleep(poll)
    return None, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--steps", type=int, default=8, help="timeline steps to time")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "viewer.md")
    ap.add_argument("--screenshot", type=Path, default=None, help="also save the first frame's page as PNG")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from viewers.content import load

    t0 = time.perf_counter()
    content = load(a.run)
    t_load = time.perf_counter() - t0
    with ViewerProcess(a.run, "--port", free_port()) as v:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            t0 = time.perf_counter()
            pg = Page(browser, v.url)
            _, t_first = wait_until(lambda: drawn_fraction(pg.grab()) > 0.05, 120, 0.2)
            pg.page.wait_for_timeout(2000)                  # let the rest of the first frame's messages arrive
            first_bytes = pg.bytes_in
            if a.screenshot is not None:
                a.screenshot.parent.mkdir(parents=True, exist_ok=True)
                a.screenshot.write_bytes(pg.page.screenshot())
            slider = pg.page.get_by_role("slider").first
            slider.focus()
            steps = []
            for _ in range(min(a.steps, content.n_frames - 1)):
                before_img, before_bytes = pg.grab(), pg.bytes_in
                slider.press("ArrowRight")
                _, dt = wait_until(lambda b=before_img: changed_fraction(b, pg.grab()) > 0.002, 30, 0.05)
                pg.page.wait_for_timeout(500)
                steps.append((dt, pg.bytes_in - before_bytes))
            errors = pg.real_errors()
            browser.close()
    n_mov = [len(m) for m in content.moving] if content.moving else [0]
    dts, sent = np.array([s[0] for s in steps]), np.array([s[1] for s in steps])
    lines = ["# Viewer benchmark", "",
             f"`python scripts/bench_viewer.py {a.run}` on {platform.machine()} ({platform.processor() or 'CPU'}), "
             "headless Chromium with SwiftShader (software WebGL: a laptop GPU draws faster; the bytes are the same).",
             "", "| what | value |", "|---|---|",
             f"| run | {a.run.name}: {content.n_frames} frames, {len(content.still):,} still Gaussians, "
             f"{int(np.median(n_mov)):,} moving per frame (median) |",
             f"| reading the run (Python) | {t_load:.2f} s |",
             f"| bytes until the first frame is drawn | {first_bytes / 2**20:.2f} MiB |",
             f"| time to first frame (page load → splats on screen) | {t_first:.2f} s |",
             f"| per timeline step: bytes sent (median) | {np.median(sent) / 2**10:.0f} KiB |" if len(sent) else "",
             f"| per timeline step: time until the picture changes (median / max) | {np.median(dts):.2f} / "
             f"{dts.max():.2f} s |" if len(dts) else "",
             f"| console errors (besides viser's known splat-geometry warning) | {len(errors)} |", ""]
    text = "\n".join(line for line in lines if line is not None)
    write_text(a.out, text)
    print(text)


if __name__ == "__main__":
    main()
