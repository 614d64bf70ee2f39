"""``v3d inspect`` and ``v3d convert``: look inside any file vision3d reads; move data between formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from vision3d.cli.main import app


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="a video, image (folder), flow, depth, splat, mesh, camera file or run"),
    scale: Optional[float] = typer.Option(None, help="16-bit depth PNG scale (stored value per metre)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Say what a file or folder holds (kind, size, counts, value ranges); fails clearly on a bad file."""
    from vision3d.io.inspect import describe

    facts = describe(path, scale=scale)
    if as_json:
        typer.echo(json.dumps(facts, indent=2, default=str))
        return
    typer.echo(f"{path}: {facts.pop('kind')}")
    for k, v in facts.items():
        typer.echo(f"  {k}: {v}")


@app.command()
def convert(
    src: Path = typer.Argument(..., help="source file (or COLMAP text folder)"),
    dst: Path = typer.Argument(..., help="destination; its suffix picks the format (no suffix: COLMAP folder)"),
    kind: Optional[str] = typer.Option(None, help="flow | depth | splats | mesh | cameras (when ambiguous)"),
    scale: Optional[float] = typer.Option(None, help="16-bit depth PNG scale (stored value per metre)"),
    fov: Optional[float] = typer.Option(None, help="horizontal field of view in degrees (TUM has no intrinsics)"),
    width: Optional[int] = typer.Option(None, help="image width for --fov"),
    height: Optional[int] = typer.Option(None, help="image height for --fov"),
) -> None:
    """Convert flow (.flo/.png/.npy), depth (.npy/.pfm/.png), splats (.ply/.splat), meshes, cameras."""
    from vision3d.io.convert import convert as run

    summary = run(src, dst, kind=kind, scale=scale, fov_deg=fov, width=width, height=height)
    typer.echo(f"wrote {dst} ({', '.join(f'{k}={v}' for k, v in summary.items())})")
