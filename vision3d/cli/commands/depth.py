"""``v3d depth``: per-frame depth for an image, an image folder or a video, streamed frame by frame."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from vision3d.cli.main import OPTS, app


def _intrinsics(fov: float | None, K: str | None, width: int, height: int) -> np.ndarray | None:
    from vision3d.core.camera import fov_to_focal, intrinsics
    from vision3d.errors import InputError

    if K:
        try:
            fx, fy, cx, cy = (float(v) for v in K.split(","))
        except ValueError:
            raise InputError(f"--K {K!r} is not 'fx,fy,cx,cy'", fix="e.g. --K 525,525,319.5,239.5") from None
        if fx <= 0 or fy <= 0:
            raise InputError("--K focal lengths must be positive")
        return intrinsics(fx, fy, cx, cy)
    if fov is not None:
        if not 1 <= fov <= 179:
            raise InputError(f"--fov {fov} must be a horizontal field of view in degrees (1..179)")
        f = fov_to_focal(np.radians(fov), width)
        return intrinsics(f, f, (width - 1) / 2, (height - 1) / 2)
    return None


@app.command()
def depth(
    inputs: list[Path] = typer.Argument(..., help="an image, several images, an image folder or a video"),
    out: Path = typer.Option(..., "-o", "--out", help="output folder"),
    method: str = typer.Option("geometric", "--method", "-m",
                               help="geometric | import | futuredepth | primedepth"),
    checkpoint: Optional[Path] = typer.Option(None, help="weights for a learned method (default: shipped)"),
    source: Optional[Path] = typer.Option(None, help="for --method import: the folder of depth maps"),
    kind: str = typer.Option("metric", help="for --method import: metric | relative | inverse"),
    scale: Optional[float] = typer.Option(None, help="for --method import: divide stored values by this"),
    fmt: str = typer.Option("npy", "--format", help="npy (float32) | png (16-bit, scale recorded in the file)"),
    fov: Optional[float] = typer.Option(None, help="horizontal field of view in degrees (geometric)"),
    K: Optional[str] = typer.Option(None, "--K", help="intrinsics fx,fy,cx,cy in pixels (geometric)"),
    max_side: Optional[int] = typer.Option(None, help="downscale so the longer side is at most this"),
    window: int = typer.Option(40, help="frames per geometric window (memory is bounded by it)"),
    video: bool = typer.Option(True, help="write depth.mp4 (frame | colourised depth)"),
    temporal: Optional[bool] = typer.Option(None, "--temporal/--no-temporal",
                                            help="learned methods: flow-guided fusion, one scale per video "
                                                 "(default: on for futuredepth, off for primedepth)"),
) -> None:
    """Estimate depth; writes depth/NNNNN.npy (or .png), colourised vis/NNNNN.png, depth.mp4 and depth.json."""
    import contextlib

    from vision3d.cli.progress import stage_progress
    from vision3d.core.frames import open_inputs
    from vision3d.depth.registry import METHODS, check_method, estimate
    from vision3d.depth.viz import depth_to_color, inverse_range
    from vision3d.errors import InputError
    from vision3d.io.atomic import write_json
    from vision3d.io.depth import write_depth
    from vision3d.io.images import write_image
    from vision3d.io.video import VideoWriter
    from vision3d.runner import ProgressEvent

    if fmt not in ("npy", "png"):
        raise InputError(f"--format {fmt!r} is not supported", fix="use npy or png")
    check_method(method, source)
    frames = open_inputs(inputs, max_side=max_side)
    Kmat = _intrinsics(fov, K, frames.width, frames.height)
    for d in ("depth", "vis") + (("confidence",) if method == "geometric" else ()):
        (out / d).mkdir(parents=True, exist_ok=True)
    recent: dict[int, np.ndarray] = {}

    def keep(src):
        for i, f in enumerate(src):
            recent[i] = f
            recent.pop(i - window - 2, None)
            yield f

    writer = VideoWriter(out / "depth.mp4", fps=min(frames.fps, 30)) if video and len(frames) > 1 else None
    rng, times, kind_out, t0 = None, [], None, time.perf_counter()
    with stage_progress(OPTS.verbosity) as cb, (writer or contextlib.nullcontext()) as vw:
        from vision3d.core.device import resolve_device

        dev = resolve_device(OPTS.device) if METHODS[method].family == "learned" else "cpu"
        for res in estimate(keep(frames), method, K=Kmat, source=source, kind=kind, scale=scale, window=window,
                            checkpoint=checkpoint, device=dev, temporal=temporal):
            kind_out = res.kind
            if rng is None:
                rng = inverse_range(res.depth) if res.kind != "inverse" else (None, None)
            name = f"{res.t:05d}"
            scale_png = 1000.0 if res.kind == "metric" else 65535.0 / max(float(np.nanmax(res.depth)), 1e-6)
            write_depth(out / "depth" / f"{name}.{fmt}", res.depth, scale=scale_png)
            vis = depth_to_color(res.depth, res.kind, *rng)
            write_image(out / "vis" / f"{name}.png", vis)
            if res.confidence is not None:
                write_image(out / "confidence" / f"{name}.png", res.confidence)
            if vw is not None:
                vw.write(np.concatenate([recent[res.t], vis], axis=1))
            times.append(res.seconds)
            cb(ProgressEvent("depth", res.t + 1, len(frames), f"{1000 * res.seconds:.0f} ms/frame"))
    write_json(out / "depth.json", {"method": method, "kind": kind_out, "frames": len(times), "width": frames.width,
                                    "height": frames.height, "format": fmt, "ms_per_frame": 1000 * float(np.mean(times)),
                                    "wall_seconds": time.perf_counter() - t0, "source": frames.source,
                                    "intrinsics": None if Kmat is None else Kmat.tolist(),
                                    "temporal_fusion": "auto" if temporal is None else temporal,
                                    "temporal_context": len(times) > 1 or not METHODS[method].video})
    if len(times) == 1 and METHODS[method].video:
        typer.echo(f"note: {method} got one frame, so it ran without temporal context (the frame repeated as its "
                   "window): a single-image estimate; give it a video or an image folder for video depth", err=True)
    typer.echo(f"{len(times)} {kind_out} depth map(s) by {method} in {out}")
