"""What an export produced and how it compares with PyTorch: ``ExportReport``, written as JSON and Markdown.

The report files sit next to the exported file: ``NAME.onnx`` → ``NAME.onnx.report.json`` and
``NAME.onnx.report.md`` (so the three formats of one model can share a folder).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vision3d.io.atomic import write_json, write_text


def path_size(path: str | Path) -> int:
    """Size in bytes of a file, or of every file under a folder (an ``.mlpackage`` is a folder)."""
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size if p.exists() else 0


def latency_stats(times_s: list[float]) -> dict[str, float]:
    """Median and 90th percentile (nearest rank) of per-run times, in milliseconds."""
    ms = sorted(t * 1000.0 for t in times_s)
    if not ms:
        return {"median": float("nan"), "p90": float("nan"), "runs": 0}
    n = len(ms)
    mid = ms[n // 2] if n % 2 else 0.5 * (ms[n // 2 - 1] + ms[n // 2])
    p90 = ms[min(n - 1, max(0, math.ceil(0.9 * n) - 1))]
    return {"median": round(mid, 3), "p90": round(p90, 3), "runs": n}


def measure_latency(fn: Callable[[], Any], runs: int = 10, warmup: int = 1) -> dict[str, float]:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times; returns :func:`latency_stats`."""
    for _ in range(max(0, warmup)):
        fn()
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return latency_stats(times)


def report_paths(exported: str | Path) -> tuple[Path, Path]:
    """``(NAME.EXT.report.json, NAME.EXT.report.md)`` for an exported file or folder."""
    p = Path(exported)
    return p.with_name(p.name + ".report.json"), p.with_name(p.name + ".report.md")


@dataclass
class ExportReport:
    """One export: the file, its parity with PyTorch on real inputs, the task metric, latency and size.

    ``max_abs_diff``/``metric_after``/``latency_ms`` are ``None`` when the runtime cannot run here (Core ML on
    Linux); ``runtime_note`` then says why. ``metric_before`` is the task metric of the PyTorch model on the same
    inputs (e.g. EPE for flow), ``metric_after`` that of the exported model in its runtime.
    """

    format: str
    path: str
    file_size_bytes: int
    model: str | None = None
    exporter: str = ""
    opset: int | None = None
    backends: list[str] = field(default_factory=list)
    runtime: str | None = None
    runnable: bool = False
    runtime_note: str | None = None
    input_shapes: list[list[int]] = field(default_factory=list)
    output_shapes: list[list[int]] = field(default_factory=list)
    dynamic_hw: bool = False
    n_check_inputs: int = 0
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    metric_before: dict[str, float] | None = None
    metric_after: dict[str, float] | None = None
    latency_ms: dict[str, float] | None = None
    torch_latency_ms: dict[str, float] | None = None
    threads: int | None = None
    export_seconds: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    # serialisation ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():  # JSON has no NaN/inf
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExportReport:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def load(cls, path: str | Path) -> ExportReport:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def rows(self) -> list[tuple[str, str]]:
        """``(field, value)`` pairs for a two-column table (CLI and Markdown)."""
        def lat(d):
            return "-" if not d else f"{d['median']:.1f} ms median, {d['p90']:.1f} ms p90 ({d['runs']} runs)"

        def metric(d):
            return "-" if not d else ", ".join(f"{k} {_fmt(v)}" for k, v in d.items())

        rows = [("format", self.format), ("file", self.path), ("size", human_bytes(self.file_size_bytes)),
                ("exporter", self.exporter or "-")]
        if self.opset is not None:
            rows.append(("opset", str(self.opset)))
        rows += [("backends", ", ".join(self.backends) or "-"),
                 ("runtime", self.runtime or "-"),
                 ("inputs", "; ".join("x".join(map(str, s)) for s in self.input_shapes)
                  + (" (dynamic H/W)" if self.dynamic_hw else "")),
                 ("max abs diff vs PyTorch", "-" if self.max_abs_diff is None else f"{self.max_abs_diff:.3g}"),
                 ("metric PyTorch", metric(self.metric_before)),
                 ("metric exported", metric(self.metric_after)),
                 ("latency exported", lat(self.latency_ms)),
                 ("latency PyTorch", lat(self.torch_latency_ms))]
        if self.runtime_note:
            rows.append(("note", self.runtime_note))
        return rows

    def to_markdown(self) -> str:
        title = f"# Export report: {self.model or Path(self.path).stem} → {self.format}\n\n"
        lines = ["| | |", "|---|---|"] + [f"| {k} | {_md(v)} |" for k, v in self.rows()]
        extra = [f"\nThreads: {self.threads}; export took {_fmt(self.export_seconds)} s; created {self.created}.",
                 "\nVersions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()) + "."]
        if self.warnings:
            extra.append("\n## Warnings\n")
            extra += [f"- {_md(w)}" for w in self.warnings]
        return title + "\n".join(lines) + "\n" + "\n".join(extra) + "\n"

    def write(self, exported: str | Path | None = None) -> tuple[Path, Path]:
        """Write the JSON and Markdown reports next to the exported file (atomically); returns both paths."""
        jp, mp = report_paths(exported or self.path)
        write_json(jp, self.to_dict())
        write_text(mp, self.to_markdown())
        return jp, mp


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
