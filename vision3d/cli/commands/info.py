"""``v3d info``: versions, devices, render backends, exporters and the viewer, with reasons."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vision3d.cli.main import OPTS, app


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Print versions, the device, and which backends/exporters work here (and why not)."""
    from vision3d.core.device import capabilities, resolve_device, versions

    vers, caps = versions(), capabilities()
    dev = str(resolve_device(OPTS.device))
    if as_json:
        typer.echo(json.dumps({"versions": vers, "device": dev,
                               "capabilities": [c.__dict__ for c in caps]}, indent=2))
        return
    con = Console()
    t = Table(title="vision3d", show_header=False)
    for k, v in vers.items():
        t.add_row(k, v)
    t.add_row("selected device", dev)
    con.print(t)
    c = Table(title="capabilities")
    for col in ("group", "name", "available", "detail"):
        c.add_column(col)
    for cap in caps:
        c.add_row(cap.group, cap.name, "[green]yes[/green]" if cap.available else "[red]no[/red]", escape(cap.detail))
    con.print(c)
