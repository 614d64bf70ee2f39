"""``v3d export``: a trained model → ONNX / Core ML / ExecuTorch, checked against PyTorch on real frames."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vision3d.cli.main import OPTS, app


def _formats(text: str) -> list[str]:
    from vision3d.export.common import FORMATS, format_spec

    names = list(FORMATS) if text.strip().lower() == "all" else [format_spec(t).name for t in text.split(",") if t]
    return list(dict.fromkeys(names))


def _out_stem(out: Optional[Path], model: str, formats: list[str], h: int, w: int) -> Path:
    """``-o`` is the file itself when it ends in the format's suffix (one format), otherwise a folder."""
    from vision3d.errors import InputError
    from vision3d.export.common import FORMATS

    known = {f.suffix for f in FORMATS.values()}
    if out is not None and out.suffix.lower() in known:
        if len(formats) != 1:
            raise InputError(f"-o {out} names one file, but {len(formats)} formats were asked",
                             fix="give a folder with several formats")
        return out.with_suffix("")
    folder = out if out is not None else Path("runs") / "export" / model
    return folder / f"{model}_{h}x{w}"


def _metric_text(before: dict | None, after: dict | None) -> str:
    if not before:
        return "-"
    key = "epe" if "epe" in before else next(iter(before))
    a = "n/a" if not after else f"{after[key]:.4f}"
    return f"{key} {before[key]:.4f} → {a}"


def _lat(d: dict | None) -> str:
    return "n/a" if not d else f"{d['median']:.1f} / {d['p90']:.1f}"


@app.command("export")
def export_cmd(
    model: str = typer.Argument(..., help="exportable model: compactflownet"),
    fmt: str = typer.Option(..., "--format", "-f", help="onnx | coreml | executorch, a comma list, or all"),
    out: Optional[Path] = typer.Option(None, "-o", "--out",
                                       help="output file (NAME.onnx/.mlpackage/.pte) or folder "
                                            "(default: runs/export/MODEL)"),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint",
                                              help="weights (default: assets/checkpoints/MODEL/MODEL.safetensors)"),
    height: Optional[int] = typer.Option(None, "--height", help="export height (a multiple of the model's stride)"),
    width: Optional[int] = typer.Option(None, "--width", help="export width (a multiple of the model's stride)"),
    runs: int = typer.Option(10, "--runs", min=1, help="timed runs for the latency median / p90"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                          help="CPU threads for PyTorch and the runtimes (default: torch's)"),
    dynamic: bool = typer.Option(False, "--dynamic", help="ONNX only: dynamic H/W inputs (opset 18 exporter)"),
    opset: Optional[int] = typer.Option(None, "--opset",
                                        help="ONNX opset (default: 18; 16-17 use the TorchScript exporter)"),
    random_init: bool = typer.Option(False, "--random-init",
                                     help="export an untrained model (checks the export path; metrics meaningless)"),
) -> None:
    """Export MODEL for phones and check it: max |diff| vs PyTorch and the task metric on real frames
    (Middlebury RubberWhale for flow), latency, file size. Writes NAME.EXT.report.json/.md beside each file."""
    from rich.console import Console
    from rich.table import Table

    from vision3d.errors import InputError
    from vision3d.export.api import export_formats
    from vision3d.export.common import ExportError, require_format
    from vision3d.export.models import exportable
    from vision3d.export.report import human_bytes, report_paths

    spec = exportable(model)
    formats = _formats(fmt)
    for f in formats:                     # missing packages fail before the slow part
        require_format(f)
    if dynamic and formats != ["onnx"]:
        raise InputError("--dynamic applies to ONNX only", fix="use it with --format onnx")
    h, w = height or spec.default_size[0], width or spec.default_size[1]
    if h <= 0 or w <= 0:
        raise InputError(f"export size {h}x{w} must be positive")
    stem = _out_stem(out, spec.name, formats, h, w)
    net = spec.build(checkpoint, random_init)
    stride = int(getattr(net, "stride", 1))
    if h % stride or w % stride:
        raise InputError(f"{model} needs --height/--width multiples of {stride}, got {h}x{w}",
                         fix=f"e.g. --height {max(stride, h // stride * stride)} --width {max(stride, w // stride * stride)}")
    checks, metric_fn, source = spec.parity(net, h, w)
    con = Console(highlight=False)
    say = typer.echo if OPTS.verbosity >= 1 else (lambda *a, **k: None)
    say(f"{spec.name} {h}x{w}{' (random init)' if random_init else ''}; parity frames: {source}")

    def started(name: str, path: Path) -> None:
        say(f"exporting → {name}: {path} ...")

    try:
        reports = export_formats(net, checks[0], formats, stem, checks, metric_fn, runs=runs, warmup=1,
                                 dynamic_hw=dynamic, opset=opset, quiet=OPTS.verbosity < 2, name=spec.name,
                                 threads=threads, on_start=started)
    except ExportError as e:
        if OPTS.debug:
            raise
        typer.echo(f"error: {e} (rerun with --debug -v for the converter's output)", err=True)
        raise typer.Exit(1) from None

    t = Table(title=f"{spec.name} export ({h}x{w}, {reports[0].threads} CPU threads)")
    for col in ("format", "size", "max |diff|", "metric PyTorch → exported", "latency ms (median / p90)",
                "PyTorch ms"):
        t.add_column(col)
    for r in reports:
        t.add_row(r.format, human_bytes(r.file_size_bytes),
                  "n/a" if r.max_abs_diff is None else f"{r.max_abs_diff:.2e}",
                  _metric_text(r.metric_before, r.metric_after), _lat(r.latency_ms), _lat(r.torch_latency_ms))
    con.print(t)
    failed = []
    for r in reports:
        jp, mp = report_paths(r.path)
        typer.echo(f"{r.format}: {r.path}  (report {mp.name}, {jp.name})")
        for note in ([r.runtime_note] if r.runtime_note else []) + r.warnings:
            typer.echo(f"  note: {note}")
        if not r.runnable and r.format != "coreml":
            failed.append(r.format)
    if failed:
        typer.echo(f"error: the {', '.join(failed)} export does not run in its runtime (see the notes)", err=True)
        raise typer.Exit(1)
