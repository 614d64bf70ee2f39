"""``v3d fit-splats``: fit 3D Gaussians to posed images (NeRF-synthetic, COLMAP text, transforms.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vision3d.cli.main import OPTS, app


@app.command("fit-splats")
def fit_splats(
    data: Path = typer.Argument(..., help="a NeRF-synthetic folder, a COLMAP folder or a transforms.json"),
    out: Path = typer.Option(..., "-o", "--out", help="run folder"),
    downscale: float = typer.Option(1.0, "--downscale", help="divide the image size by this"),
    steps: int = typer.Option(3000, "--steps", help="optimisation steps"),
    sh_degree: int = typer.Option(3, "--sh-degree", help="spherical-harmonics degree of the colours (0..3)"),
    init_points: Optional[int] = typer.Option(None, "--init-points",
                                              help="random initial points when the data has none "
                                                   "(default 100k on CUDA, 10k on CPU)"),
    init_max_px: Optional[float] = typer.Option(None, "--init-max-px",
                                                help="cap random-init sizes at this many pixels "
                                                     "(default 1 on CPU, none on CUDA)"),
    max_gaussians: Optional[int] = typer.Option(None, "--max-gaussians", help="stop densifying at this count"),
    eval_every: int = typer.Option(0, "--eval-every", help="score the test views every N steps (0: at the end)"),
    backend: str = typer.Option("auto", "--backend", help="auto | torch | gsplat"),
    force: Optional[str] = typer.Option(None, "--force", help="recompute this stage and those after it ('all')"),
) -> None:
    """Optimise 3D Gaussians (L1 + D-SSIM, densification) and write a standard 3DGS .ply with test-view scores."""
    from pipelines.fit_splats import FitJobConfig, run_fit_splats
    from vision3d.cli.progress import stage_progress
    from vision3d.core.device import resolve_device
    from vision3d.errors import InputError

    if steps < 1:
        raise InputError(f"--steps {steps} must be at least 1")
    if not 0 <= sh_degree <= 3:
        raise InputError(f"--sh-degree {sh_degree} must be 0..3")
    from vision3d.io.posed_images import load_posed_dataset

    load_posed_dataset(data, downscale=downscale)  # validate before any progress bar or run folder appears
    cfg = FitJobConfig(downscale=downscale, steps=steps, sh_degree=sh_degree, init_points=init_points,
                       init_max_px=init_max_px, max_gaussians=max_gaussians, eval_every=eval_every, backend=backend,
                       device=str(resolve_device(OPTS.device)))
    with stage_progress(OPTS.verbosity) as cb:
        result = run_fit_splats(data, out, cfg, force=force, progress=cb)
    m = result.manifest["metrics"]
    typer.echo(f"fit-splats finished: {len(result.ran)} stage(s) ran, {len(result.skipped)} up to date")
    typer.echo(f"  {m['fit.eval_split']}-view PSNR {m['fit.psnr']:.2f} dB, SSIM {m['fit.ssim']:.4f}, "
               f"{m['fit.n_gaussians']} Gaussians, {m['fit.seconds']:.0f} s ({m['fit.backend']})")
    typer.echo(f"splats: {(result.run_dir / 'fit' / 'splats.ply').resolve()}")
