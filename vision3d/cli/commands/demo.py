"""``v3d demo``: runs the main job on the sample clip shipped in ``assets/``."""

from __future__ import annotations

from pathlib import Path

import typer

from vision3d.cli.main import OPTS, app


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "-o", "--out", help="run folder"),
    force: str = typer.Option(None, "--force", help="recompute this stage and the ones after it ('all' for all)"),
) -> None:
    """Reconstruct the shipped sample clip as a 4D scene (video2scene, fast preset) and score it against the
    clip's exact ground truth."""
    from pipelines.demo import run_demo
    from vision3d.cli.progress import stage_progress

    with stage_progress(OPTS.verbosity) as cb:
        result = run_demo(out, force=force, progress=cb)
    m = result.manifest["metrics"]
    typer.echo(f"demo finished: {len(result.ran)} stage(s) ran, {len(result.skipped)} up to date")
    typer.echo(f"  {m['frames.n_frames']} frames at {m['frames.width']}x{m['frames.height']}: "
               f"{m['scene.n_gaussians']} Gaussians ({m['scene.n_moving']} moving)")
    typer.echo(f"  re-render PSNR {m['renders.psnr']:.2f} dB, SSIM {m['renders.ssim']:.3f}")
    typer.echo(f"  against ground truth: ATE {m['evaluate.ate']:.4f} (path {m['evaluate.path_length_gt']:.3f}), "
               f"depth abs_rel {m['evaluate.depth_abs_rel']:.3f}, track EPE/step {m['evaluate.track_epe_step']:.3f} px "
               f"(standing still: {m['evaluate.track_epe_step_zero']:.3f}), moving-mask J {m['evaluate.moving_J']:.3f}")
    run = result.run_dir.resolve()
    typer.echo(f"results: {run}  (renders/rerender.mp4, renders/novel_orbit.mp4, cameras/, tracks/, masks/)")
    typer.echo(f"one frame as a 3DGS .ply: v3d export-frame {run} --frame 0")
    typer.echo(f"look at it in the browser: v3d view {run}   (or a static copy: v3d view {run} --export site/)")
