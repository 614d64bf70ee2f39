"""Driving the viewer from a headless browser, for the tests and the benchmark: the Debian ``chromium`` through
Playwright's ``executable_path`` (never a browser download; WebGL through SwiftShader), a ``v3d view``
subprocess, websocket byte counting and a "something is drawn" measure."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"]
# viser's own Gaussian-splat mesh gives three.js a 2-component "position" attribute (a screen-space quad,
# viser/client/src/Splatting/GaussianSplatsHelpers.ts), so three.js logs this once per splat object; harmless.
KNOWN_CLIENT_NOISE = ("THREE.BufferGeometry.computeBoundingSphere(): Computed radius is NaN",)


def chromium_path() -> str | None:
    return os.environ.get("V3D_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drawn_fraction(img: np.ndarray) -> float:
    """Share of non-background (non-white) pixels in the scene area of a 1000×640 screenshot: left of viser's
    control panel and below its software-WebGL notice."""
    region = img[200:600, 60:600].astype(np.int16)
    return float((np.abs(region - 255).max(-1) > 40).mean())


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a.astype(np.int16) - b.astype(np.int16)).max(-1) > 30).mean())


class ViewerProcess:
    """``v3d view ARGS`` in a subprocess; ``url`` and ``lines`` from what it prints."""

    def __init__(self, *args, timeout: float = 120):
        self.proc = subprocess.Popen([sys.executable, "-m", "vision3d.cli", "view", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.url = None
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            m = re.search(r"viewer at (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        if self.url is None:
            self.stop()
            raise RuntimeError("v3d view did not start:\n" + "".join(self.lines))

    def __enter__(self) -> ViewerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Page:
    """A 1000×640 page that collects console errors and counts the websocket bytes it receives."""

    def __init__(self, browser, url: str, artifacts: Path | None = None):
        self.errors: list[str] = []
        self.bytes_in = 0
        self.artifacts = artifacts
        self.page = browser.new_page(viewport={"width": 1000, "height": 640})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._count))
        self.failed: list[str] = []  # HTTP errors by URL (the console only says "Failed to load resource")
        self.page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        self.page.goto(url)

    def _count(self, payload) -> None:
        self.bytes_in += len(payload)

    def grab(self, name: str | None = None) -> np.ndarray:
        import cv2

        png = self.page.screenshot()
        if name and self.artifacts is not None:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            (self.artifacts / f"{name}.png").write_bytes(png)
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def shot(self, name: str, wait_ms: int = 2500) -> np.ndarray:
        self.page.wait_for_timeout(wait_ms)
        return self.grab(name)

    def real_errors(self) -> list[str]:
        """Console errors minus known client noise and minus "Failed to load resource" lines, which carry no URL:
        HTTP failures are judged by URL through ``failed``."""
        return [e for e in self.errors if not e.startswith(KNOWN_CLIENT_NOISE + ("Failed to load resource",))]

    def close(self) -> None:
        self.page.close()
