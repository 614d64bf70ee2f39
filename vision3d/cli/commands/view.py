"""``v3d view``: a web viewer (viser) for a run folder or a splat / mesh / point-cloud file, or its static export."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vision3d.cli.main import app


@app.command("view")
def view(
    path: Path = typer.Argument(..., help="a run folder (video2scene, fit-splats) or a .ply/.splat/.glb/.obj file"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0 shares it on the network)"),
    port: int = typer.Option(8080, "--port", help="port (the next free one if taken)"),
    max_gaussians: int = typer.Option(400_000, "--max-gaussians",
                                      help="subsample above this many Gaussians so the page stays interactive"),
    fps: float = typer.Option(10.0, "--fps", help="timeline playback speed"),
    export: Optional[Path] = typer.Option(None, "--export",
                                          help="write a static folder (viewer + recorded timeline) instead of serving"),
) -> None:
    """Open the result in the browser: 4D Gaussians with a timeline, cameras, tracks and masks; splats; meshes."""
    from viewers.content import load
    from viewers.serve import export_static, start
    from vision3d.errors import InputError

    if fps <= 0:
        raise InputError(f"--fps {fps} must be positive")
    content = load(path, max_gaussians)
    for note in content.notes:
        typer.echo(f"note: {note}")
    if content.missing:
        typer.echo(f"missing: {', '.join(content.missing)}")
    if export is not None:
        out = export_static(path, export, max_gaussians, fps, content=content)
        typer.echo(f"static viewer written to {out.resolve()}")
        typer.echo(f"serve it with: python -m http.server --directory {out} 8000  and open "
                   "http://localhost:8000/open.html")
        return
    running = start(path, host, port, max_gaussians, fps, content=content)
    if port and not running.url.endswith(f":{port}"):
        typer.echo(f"port {port} is in use; using {running.url.rsplit(':', 1)[1]} instead")
    typer.echo(f"viewer at {running.url}  (Ctrl+C to stop)")
    try:
        running.server.sleep_forever()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
