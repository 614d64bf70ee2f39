"""``v3d flow``: optical flow for two images, an image folder or a video, streamed pair by pair."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from vision3d.cli.main import OPTS, app


@app.command()
def flow(
    inputs: list[Path] = typer.Argument(..., help="two images, an image folder, or a video"),
    out: Path = typer.Option(..., "-o", "--out", help="output folder"),
    method: str = typer.Option("dis", "--method", "-m", help="dis | farneback | reynolds | compactflownet | streamflow"),
    backward: bool = typer.Option(False, "--backward", help="also backward flow and a forward-backward occlusion mask"),
    fmt: str = typer.Option("flo", "--format", help="flo | npy"),
    checkpoint: Optional[Path] = typer.Option(None, help="weights for learned methods (default: shipped checkpoint)"),
    max_side: Optional[int] = typer.Option(None, help="downscale so the longer side is at most this"),
    video: bool = typer.Option(True, help="write flow.mp4 (frame | flow colour wheel)"),
) -> None:
    """Estimate optical flow; writes .flo/.npy per pair, colour-wheel PNGs and an MP4, streaming."""
    from vision3d.cli.progress import stage_progress
    from vision3d.core.frames import open_inputs
    from vision3d.errors import InputError
    from vision3d.flow.registry import estimate, get_estimator
    from vision3d.flow.viz import flow_to_color
    from vision3d.io.atomic import write_json
    from vision3d.io.flow import write_flow
    from vision3d.io.images import write_image
    from vision3d.io.video import VideoWriter
    from vision3d.runner import ProgressEvent

    if fmt not in ("flo", "npy"):
        raise InputError(f"--format {fmt!r} is not supported", fix="use flo or npy")
    frames = open_inputs(inputs, max_side=max_side)
    if len(frames) < 2:
        raise InputError(f"optical flow needs at least two frames, {inputs[0]} has {len(frames)}",
                         fix="give two images, a folder of frames or a video")
    est = get_estimator(method, OPTS.device, checkpoint)
    dirs = ["forward", "forward_vis"] + (["backward", "backward_vis", "occlusion"] if backward else [])
    for d in dirs:
        (out / d).mkdir(parents=True, exist_ok=True)
    n_pairs = len(frames) - 1
    scale = 1.0  # running max magnitude for the colour wheel, so colours stay comparable across frames
    times = []
    prev = None
    writer = VideoWriter(out / "flow.mp4", fps=min(frames.fps, 30)) if video else None
    t_start = time.perf_counter()
    recent: dict[int, np.ndarray] = {}  # the last few decoded frames, for the side-by-side video

    def keep(src):
        for i, f in enumerate(src):
            recent[i] = f
            recent.pop(i - est.frames_per_clip - 2, None)
            yield f

    with stage_progress(OPTS.verbosity) as cb, (writer or contextlib.nullcontext()) as vw:
        for res in estimate(keep(frames), est, backward=backward):
            times.append(res.seconds)
            mag = np.hypot(*res.forward)
            scale = max(scale, float(np.percentile(mag, 99)))
            name = f"{res.t:05d}"
            write_flow(out / "forward" / f"{name}.{fmt}", res.forward)
            vis = flow_to_color(res.forward, max_mag=scale)
            write_image(out / "forward_vis" / f"{name}.png", vis)
            if backward:
                write_flow(out / "backward" / f"{name}.{fmt}", res.backward)
                write_image(out / "backward_vis" / f"{name}.png", flow_to_color(res.backward, max_mag=scale))
                write_image(out / "occlusion" / f"{name}.png", res.occlusion.astype(np.float32))
            if vw is not None:
                vw.write(np.concatenate([recent[res.t], vis], axis=1))
            cb(ProgressEvent("flow", res.t + 1, n_pairs, f"{1000 * res.seconds:.0f} ms/pair"))
    summary = {"method": method, "pairs": len(times), "frames": len(frames), "width": frames.width,
               "height": frames.height, "ms_per_pair": 1000 * float(np.mean(times)),
               "wall_seconds": time.perf_counter() - t_start, "backward": backward, "format": fmt,
               "parameters": est.parameters, "source": frames.source}
    write_json(out / "flow.json", summary)
    typer.echo(f"{len(times)} flow field(s) by {method} in {out} ({summary['ms_per_pair']:.0f} ms/pair)")
