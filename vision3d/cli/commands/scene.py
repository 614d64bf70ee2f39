"""``v3d video2scene`` (GFlow: video → 4D scene) and ``v3d export-frame`` (one frame of a 4D scene → 3DGS .ply)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vision3d.cli.main import OPTS, app


@app.command("video2scene")
def video2scene(
    video: Path = typer.Argument(..., help="a video file or a folder of frames"),
    out: Path = typer.Option(..., "-o", "--out", help="run folder (re-running resumes)"),
    preset: str = typer.Option("fast", "--preset", help="fast (CPU) | paper (the paper's schedule, for CUDA)"),
    flow: str = typer.Option("dis", "--flow", help="optical flow method (v3d flow --help lists them)"),
    depth: str = typer.Option("geometric", "--depth", help="depth prior: geometric | futuredepth | primedepth | import"),
    depth_source: Optional[Path] = typer.Option(None, "--depth-source", help="--depth import: folder of depth maps"),
    depth_kind: Optional[str] = typer.Option(None, "--depth-kind", help="--depth import: metric | relative | inverse"),
    fov: Optional[float] = typer.Option(None, "--fov", help="horizontal field of view in degrees"),
    K: Optional[str] = typer.Option(None, "--K", help="intrinsics 'fx,fy,cx,cy' in pixels of the input video"),
    short_side: Optional[int] = typer.Option(None, "--short-side", help="processing size (default: the preset's)"),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="use the first N frames"),
    stride: int = typer.Option(1, "--stride", help="use every k-th frame"),
    iterations: float = typer.Option(1.0, "--iterations", help="scale the preset's iteration counts (quality/time)"),
    query_points: Optional[Path] = typer.Option(None, "--query-points",
                                                help="rows 't x y' (processing pixels) to track, .txt or .npy"),
    track_method: str = typer.Option("flow", "--track-method",
                                     help="how --query-points are tracked: flow | gaussians (GFlow's)"),
    mask: Optional[Path] = typer.Option(None, "--mask", help="first-frame object mask (PNG) to propagate"),
    mask_method: str = typer.Option("flow", "--mask-method",
                                    help="how --mask is carried: flow | gaussians (GFlow's) | fused"),
    force: Optional[str] = typer.Option(None, "--force", help="recompute this stage and those after it ('all')"),
) -> None:
    """Reconstruct a video as a 4D scene (GFlow): cameras, still + moving Gaussians, tracks, masks, videos."""
    from pipelines.video2scene import QUERY_METHODS, Video2SceneConfig, run_video2scene
    from vision3d.cli.progress import stage_progress
    from vision3d.core.device import resolve_device
    from vision3d.core.frames import open_frames
    from vision3d.errors import InputError
    from vision3d.scene4d.segment import METHODS

    cfg = Video2SceneConfig.preset(preset)
    src = open_frames(video)   # validate before any run folder appears
    if len(src) < 2:
        raise InputError(f"the input has {len(src)} frame(s); a 4D scene needs at least two", path=video,
                         fix="give a video or a folder with two or more frames")
    if stride < 1:
        raise InputError(f"--stride {stride} must be at least 1")
    if short_side is not None:
        if short_side < 32:
            raise InputError(f"--short-side {short_side} is too small", fix="use at least 32")
        cfg.frames.short_side = short_side
    cfg.frames.max_frames, cfg.frames.stride = max_frames, stride
    device = str(resolve_device(OPTS.device))
    cfg.flow.method, cfg.flow.device = flow, device
    cfg.depth.method, cfg.depth.device = depth, device
    cfg.depth.source, cfg.depth.kind = (str(depth_source) if depth_source else None), depth_kind
    cfg.scene.device = device
    if not 0 < iterations <= 100:
        raise InputError(f"--iterations {iterations} must be in (0, 100]")
    cfg.scene.iterations = iterations
    if fov is not None:
        if not 1 <= fov <= 179:
            raise InputError(f"--fov {fov} must be between 1 and 179 degrees")
        cfg.scene.fov_deg = fov
    if K is not None:
        try:
            fx, fy, cx, cy = (float(v) for v in K.split(","))
        except ValueError:
            raise InputError(f"--K {K!r} must be four numbers 'fx,fy,cx,cy'") from None
        w, h = src.native_size
        s = cfg.frames.short_side / min(w, h)
        cfg.scene.K = (fx * s, fy * s, (cx + 0.5) * s - 0.5, (cy + 0.5) * s - 0.5)
    for p in (query_points, mask):
        if p is not None and not p.is_file():
            raise InputError("does not exist", path=p, fix="check the path")
    cfg.outputs.query_points = str(query_points) if query_points else None
    cfg.outputs.mask = str(mask) if mask else None
    if mask_method not in METHODS:
        raise InputError(f"--mask-method {mask_method!r} is unknown", fix=f"use one of {', '.join(METHODS)}")
    cfg.masks.method = mask_method
    if track_method not in QUERY_METHODS:
        raise InputError(f"--track-method {track_method!r} is unknown", fix=f"use one of {', '.join(QUERY_METHODS)}")
    cfg.tracks.query_method = track_method
    with stage_progress(OPTS.verbosity) as cb:
        result = run_video2scene(video, out, cfg, force=force, progress=cb)
    m = result.manifest["metrics"]
    typer.echo(f"video2scene finished: {len(result.ran)} stage(s) ran, {len(result.skipped)} up to date")
    typer.echo(f"  {m['frames.n_frames']} frames at {m['frames.width']}x{m['frames.height']}, "
               f"{m['scene.n_gaussians']} Gaussians ({m['scene.n_moving']} moving), "
               f"re-render PSNR {m['renders.psnr']:.2f} dB / SSIM {m['renders.ssim']:.3f}")
    typer.echo(f"  intrinsics: {m['scene.intrinsics']}")
    typer.echo(f"scene: {(result.run_dir / 'scene' / 'scene4d.npz').resolve()}")
    typer.echo(f"videos: {(result.run_dir / 'renders').resolve()}  (rerender.mp4, novel_orbit.mp4, depth.mp4)")


@app.command("export-frame")
def export_frame(
    run: Path = typer.Argument(..., help="a video2scene run folder (or its scene4d.npz)"),
    frame: int = typer.Option(..., "--frame", help="frame index (negative counts from the end)"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="output .ply (default RUN/scene/frame_NNNNN.ply)"),
) -> None:
    """Write the Gaussians of one frame of a 4D scene as a standard 3DGS .ply."""
    from vision3d.io.splats import write_splat_ply
    from vision3d.scene4d.scene import Scene4D

    scene = Scene4D.load(run)
    g = scene.gaussians_at(frame, born_by_t=False)
    t = frame % scene.n_frames
    path = out or (run if run.is_dir() else run.parent.parent) / "scene" / f"frame_{t:05d}.ply"
    write_splat_ply(path, g)
    typer.echo(f"frame {t}: {len(g)} Gaussians -> {path}")
