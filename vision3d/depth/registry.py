"""One registry and one call for every depth method: ``estimate(frames, method=...)`` streams per-frame depth.

Per-image methods see one frame at a time; video methods see windows of frames (``geometric`` works on
overlapping windows whose scales are chained through the shared frame), so memory holds one window.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from vision3d.errors import InputError


@dataclass(frozen=True)
class DepthMethodInfo:
    name: str
    kind: str  # depth kind of the output: metric | relative | inverse
    family: str  # learned | geometric | import
    summary: str
    video: bool = False  # uses neighbouring frames (a single image runs without temporal context)


METHODS: dict[str, DepthMethodInfo] = {m.name: m for m in [
    DepthMethodInfo("geometric", "relative", "geometric",
                    "flow + two-view geometry (essential matrix, triangulation, filling), scale-consistent per video"),
    DepthMethodInfo("import", "metric", "import", "external depth maps from a folder (declared kind and scale)"),
    DepthMethodInfo("futuredepth", "inverse", "learned",
                    "FutureDepth (ECCV'24): multi-frame encoder, F-Net future prediction, R-Net masked reconstruction",
                    video=True),
    DepthMethodInfo("primedepth", "inverse", "learned",
                    "PrimeDepth (ACCV'24): one-step diffusion preimage + refiner (own small UNet or local SD)"),
]}


@dataclass
class DepthResult:
    t: int
    depth: np.ndarray  # (H,W) float32
    kind: str
    confidence: np.ndarray | None
    seconds: float


def _geometric(frames: Iterable[np.ndarray], K, window: int,
               work_short_side: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    from vision3d.depth.geometric import GeometricConfig, geometric_depths

    cfg = GeometricConfig(work_short_side=work_short_side)

    buf: list[np.ndarray] = []
    last: np.ndarray | None = None  # depth of the previous window's last frame (the overlap), for the scale chain

    def run(chunk):
        nonlocal last
        t0 = time.perf_counter()
        res = geometric_depths(chunk, K, cfg)
        if last is not None:
            res = [(d * float(np.median(last) / max(np.median(res[0][0]), 1e-9)), c) for d, c in res]
            res = res[1:]  # the overlap frame was already emitted
        last = res[-1][0]
        dt = (time.perf_counter() - t0) / max(len(res), 1)
        return [(d, c, dt) for d, c in res]

    for f in frames:
        buf.append(f)
        if len(buf) == window:
            yield from run(buf)
            buf = [buf[-1]]
    if last is None and len(buf) < 2:
        raise InputError("geometric depth needs a moving camera: give at least two frames",
                         fix="use a video or an image folder, or --method import with depth from another tool")
    if len(buf) > 1:
        yield from run(buf)


def _learned(frames: Iterable[np.ndarray], method: str, checkpoint, device,
             temporal: bool | None) -> Iterator[DepthResult]:
    from vision3d.depth.learned import LearnedDepth
    from vision3d.depth.temporal import TemporalFusion

    est = LearnedDepth(method, checkpoint, device)
    fuse = TemporalFusion() if (est.window > 1 if temporal is None else temporal) else None
    recent: list[np.ndarray] = []
    for t, f in enumerate(frames):
        recent = (recent + [f])[-est.window:]
        t0 = time.perf_counter()
        d = est(recent)
        if fuse is not None:
            d = fuse(f, d)
        yield DepthResult(t, d, est.kind, None, time.perf_counter() - t0)


def check_method(method: str, source=None) -> None:
    """Raise the one-line error for an unknown method (or ``import`` without its folder) before any work."""
    if method not in METHODS:
        raise InputError(f"unknown depth method {method!r}", fix=f"use one of {', '.join(METHODS)}")
    if method == "import" and source is None:
        raise InputError("--method import needs the folder of depth maps", fix="pass --source DIR")


def estimate(frames: Iterable[np.ndarray], method: str = "geometric", *, K: np.ndarray | None = None,
             source=None, kind: str | None = None, scale: float | None = None,
             window: int = 40, checkpoint=None, device="cpu", temporal: bool | None = None,
             work_short_side: int = 0) -> Iterator[DepthResult]:
    """Depth for every frame. ``K`` intrinsics (geometric; guessed when None); ``source``/``kind``/``scale``
    for ``import``; ``window`` frames per geometric chunk (bounded memory); ``temporal``: flow-guided fusion
    of learned predictions (``depth.temporal``; None = on for video models such as futuredepth);
    ``work_short_side``: geometric depth of larger frames is measured at this short side (0: at full size)."""
    check_method(method, source)
    if method == "import":
        from vision3d.depth.imported import ImportedDepth

        imp = ImportedDepth(source, kind or "metric", scale)
        for t, f in enumerate(frames):
            t0 = time.perf_counter()
            d = imp(t, (f.shape[1], f.shape[0]))
            yield DepthResult(t, d, imp.kind, None, time.perf_counter() - t0)
        return
    if METHODS[method].family == "learned":
        yield from _learned(frames, method, checkpoint, device, temporal)
        return
    if window < 3:
        raise InputError(f"window {window} is too small", fix="use at least 3 frames per window")
    for t, (d, c, dt) in enumerate(_geometric(frames, K, window, work_short_side)):
        yield DepthResult(t, d, METHODS[method].kind, c, dt)
