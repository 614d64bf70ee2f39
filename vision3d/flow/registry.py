"""One registry and one call for every flow method: ``estimate(frames, method=...)`` streams flows pair by pair.

Pair methods (DIS, Farnebäck, ReynoldsFlow, CompactFlowNet) see two frames; multi-frame methods (StreamFlow)
see windows of T frames with stride T-1, so one pass gives T-1 flows. Memory holds one window at a time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Callable

import numpy as np

from vision3d.errors import InputError


@dataclass(frozen=True)
class MethodInfo:
    name: str
    kind: str  # "classical" | "training-free" | "learned"
    summary: str


METHODS: dict[str, MethodInfo] = {m.name: m for m in [
    MethodInfo("dis", "classical", "OpenCV DIS (Kroeger et al. ECCV'16), preset medium"),
    MethodInfo("farneback", "classical", "OpenCV Farnebäck polynomial expansion"),
    MethodInfo("reynolds", "training-free", "ReynoldsFlow (arXiv 2503.04500)"),
    MethodInfo("compactflownet", "learned", "CompactFlowNet (arXiv 2412.13273): mobile PWC-style network"),
    MethodInfo("streamflow", "learned", "StreamFlow (NeurIPS'24): multi-frame in-batch estimation"),
]}


class FlowEstimator:
    """A ready-to-run method: ``pair(a, b)`` → ``(2,H,W)``; ``clip(frames)`` → ``(T-1,2,H,W)``."""

    def __init__(self, name: str, pair: Callable, frames_per_clip: int = 2, clip: Callable | None = None,
                 parameters: int = 0):
        self.name = name
        self.pair = pair
        self.frames_per_clip = frames_per_clip
        self._clip = clip
        self.parameters = parameters

    def clip(self, frames: list[np.ndarray]) -> np.ndarray:
        """Flows for consecutive pairs of ``frames`` (any count ≥ 2; multi-frame models pad the last window)."""
        if len(frames) < 2:
            raise InputError("optical flow needs at least two frames", fix="give two images, a folder or a video")
        if self._clip is None:
            return np.stack([self.pair(a, b) for a, b in zip(frames[:-1], frames[1:])])
        t = self.frames_per_clip
        out = []
        i = 0
        while i < len(frames) - 1:
            window = frames[i:i + t]
            n = len(window) - 1
            window = window + [window[-1]] * (t - len(window))
            out.append(self._clip(window)[:n])
            i += t - 1
        return np.concatenate(out)


def check_method(method: str) -> None:
    """Raise the one-line error for an unknown method before any work."""
    if method not in METHODS:
        raise InputError(f"unknown flow method {method!r}", fix=f"use one of {', '.join(METHODS)}")


def get_estimator(method: str = "dis", device: str = "cpu", checkpoint=None, **options) -> FlowEstimator:
    """Build the estimator for ``method`` (learned models load their checkpoint here, once)."""
    check_method(method)
    if method in ("dis", "farneback"):
        from vision3d.flow.classical import dis_flow, farneback_flow

        if method == "dis":
            preset = options.get("preset", "medium")
            return FlowEstimator("dis", lambda a, b: dis_flow(a, b, preset))
        return FlowEstimator("farneback", farneback_flow)
    if method == "reynolds":
        from vision3d.flow.reynolds import reynolds_flow

        return FlowEstimator("reynolds", reynolds_flow)
    from vision3d.core.device import resolve_device
    from vision3d.flow.learned import load_flow_model

    dev = resolve_device(device)
    return estimator_from_model(load_flow_model(method, checkpoint, dev), dev)


def estimator_from_model(model, device="cpu") -> FlowEstimator:
    """Wrap an in-memory learned model (e.g. during training, for validation) as an estimator."""
    from vision3d.flow.learned import LearnedFlow

    runner = LearnedFlow(model, device)
    params = sum(p.numel() for p in model.parameters())
    clip = runner.clip if runner.frames_per_clip > 2 else None
    return FlowEstimator(model.name, runner, runner.frames_per_clip, clip, params)


@dataclass
class FlowResult:
    """Flow for pair (t, t+1): ``forward`` t→t+1; with ``backward=True`` also t+1→t and the occlusion mask."""

    t: int
    forward: np.ndarray
    backward: np.ndarray | None = None
    occlusion: np.ndarray | None = None
    seconds: float = 0.0


def _check_sizes(window: list[np.ndarray], t0: int) -> None:
    shape = window[0].shape
    for k, f in enumerate(window[1:], 1):
        if f.shape != shape:
            raise InputError(f"frame {t0 + k} is {f.shape[1]}x{f.shape[0]} but frame {t0} is {shape[1]}x{shape[0]}",
                             fix="all frames must have one size")


def estimate(frames: Iterable[np.ndarray], method: str | FlowEstimator = "dis", backward: bool = False,
             device: str = "cpu", checkpoint=None, **options) -> Iterator[FlowResult]:
    """Stream flow for consecutive pairs of ``frames`` (a ``Frames`` source, a list, or any iterable)."""
    from vision3d.flow.consistency import fb_occlusion

    est = method if isinstance(method, FlowEstimator) else get_estimator(method, device, checkpoint, **options)
    t_win = max(2, est.frames_per_clip)
    window: list[np.ndarray] = []
    t0 = 0
    seen = 0

    def run(win: list[np.ndarray], start: int) -> Iterator[FlowResult]:
        _check_sizes(win, start)
        tic = time.perf_counter()
        fw = est.clip(win)
        bw = est.clip(win[::-1])[::-1] if backward else None
        dt = (time.perf_counter() - tic) / len(fw)
        for k in range(len(fw)):
            occ = fb_occlusion(fw[k], bw[k]) if backward else None
            yield FlowResult(start + k, fw[k], None if bw is None else bw[k], occ, dt)

    for f in frames:
        seen += 1
        window.append(f)
        if len(window) == t_win:
            yield from run(window, t0)
            t0 += t_win - 1
            window = [window[-1]]
    if seen < 2:
        raise InputError(f"optical flow needs at least two frames, got {seen}",
                         fix="give two images, a folder of frames or a video")
    if len(window) >= 2:
        yield from run(window, t0)
