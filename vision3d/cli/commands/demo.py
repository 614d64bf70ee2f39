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
    """Run the demo job on the shipped sample clip and say where the results are."""
    from pipelines.demo import run_demo
    from vision3d.cli.progress import stage_progress

    if OPTS.verbosity:
        typer.echo("note: the video → 4D job is not built yet; the demo runs what exists on the shipped synthetic "
                   "clip: decode → optical flow (DIS) → evaluation against exact ground truth → I/O round trip")
    with stage_progress(OPTS.verbosity) as cb:
        result = run_demo(out, force=force, progress=cb)
    m = result.manifest["metrics"]
    typer.echo(f"demo finished: {len(result.ran)} stage(s) ran, {len(result.skipped)} up to date")
    for k in sorted(m):
        typer.echo(f"  {k} = {m[k]:.4g}" if isinstance(m[k], float) else f"  {k} = {m[k]}")
    typer.echo(f"results: {result.run_dir.resolve()}  (manifest.json lists every file)")
