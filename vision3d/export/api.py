"""``export_model``: export any ``nn.Module`` to ONNX / Core ML / ExecuTorch and check it against PyTorch.

Every later model (flow, depth, NeLF) goes through here: give it the module, example inputs (which fix the
exported shapes), real inputs to check parity on, and optionally a task metric; it writes the file atomically
(a failed export leaves nothing behind), runs it in the format's runtime where that runs here, and writes an
``ExportReport`` as JSON and Markdown next to the file.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vision3d.errors import InputError
from vision3d.export.common import (
    ExportError,
    FormatSpec,
    RuntimeUnavailable,
    first_line,
    io_names,
    output_path_for,
    quiet_output,
    require_format,
    require_module,
    version,
)
from vision3d.export.report import ExportReport, measure_latency, path_size

MetricFn = Callable[[list[tuple]], dict]
"""``metric_fn(outputs)``: ``outputs[i]`` is the tuple of output tensors for ``check_inputs[i]``; returns a
dict of task metrics (e.g. ``{"epe": 1.2}``). It is called once on PyTorch's outputs and once on the runtime's."""

FORMAT_PACKAGES = {"onnx": ("onnx", "onnxruntime", "onnxscript"), "coreml": ("coremltools",),
                   "executorch": ("executorch",)}


def trace_program(model, example_inputs: Sequence, dynamic_hw: bool = False):
    """``torch.export`` the model once; pass the result as ``program=`` to export several formats from it.

    ``dynamic_hw`` marks the last two dims of every 4-D input as dynamic (``Dim.AUTO``).
    """
    import torch

    from vision3d.export.onnx import _dynamic_shapes

    model.eval()
    dyn = _dynamic_shapes(example_inputs) if dynamic_hw else None
    try:
        with torch.no_grad():
            return torch.export.export(model, tuple(example_inputs), dynamic_shapes=dyn)
    except InputError:
        raise
    except Exception as e:
        raise ExportError(f"torch.export failed: {first_line(e)}") from e


@dataclass
class Reference:
    """PyTorch's side of the comparison, computed once per model and set of inputs."""

    checks: list[tuple]
    outputs: list[tuple]
    metric: dict | None
    latency_ms: dict | None
    input_names: list[str]
    output_names: list[str]


def reference(model, example_inputs: Sequence, check_inputs: Sequence[Sequence] | None = None,
              metric_fn: MetricFn | None = None, runs: int = 10, warmup: int = 1) -> Reference:
    """Run PyTorch on the check inputs (outputs, metric, latency on the first of them)."""
    import torch

    model.eval()
    checks = [_cpu_tuple(c) for c in check_inputs] if check_inputs else [_cpu_tuple(example_inputs)]
    with torch.no_grad():
        outputs = [_as_tuple(model(*c)) for c in checks]
        lat = measure_latency(lambda: model(*checks[0]), runs=runs, warmup=warmup) if runs > 0 else None
    ins, outs = io_names(model, len(tuple(example_inputs)), len(outputs[0]))
    metric = _clean_metric(metric_fn(outputs)) if metric_fn else None
    return Reference(checks, outputs, metric, lat, ins, outs)


def export_model(model, example_inputs: Sequence, fmt: str, out_path: str | Path,
                 check_inputs: Sequence[Sequence] | None = None, metric_fn: MetricFn | None = None, *,
                 runs: int = 10, warmup: int = 1, program=None, ref: Reference | None = None,
                 dynamic_hw: bool = False, opset: int | None = None, exporter: str = "auto",
                 coreml_precision: str = "float32", name: str | None = None, quiet: bool = True,
                 write_report: bool = True, threads: int | None = None) -> ExportReport:
    """Export ``model`` as ``fmt`` (onnx | coreml | executorch) to ``out_path`` and check it.

    ``example_inputs`` fix the exported shapes (unless ``dynamic_hw``); parity, the metric and latency use
    ``check_inputs`` (real data; default: the example inputs). ``program``: a ``trace_program`` result to reuse
    (Core ML and ExecuTorch); ``ref``: a ``reference`` result to reuse. ``quiet`` hides the converters' output.
    ``out_path`` gets the format's suffix (``.onnx``, ``.mlpackage``, ``.pte``) if it has none. Raises
    ``InputError`` when the format's package is missing and ``ExportError`` when the converter fails; in both
    cases no file is left at ``out_path``. ``threads``: CPU threads for PyTorch and the runtime while
    measuring (default: torch's current setting for both, the runtime's own default for ExecuTorch).
    """
    import torch

    with _torch_threads(threads):
        return _export_model(model, example_inputs, fmt, out_path, check_inputs, metric_fn, runs=runs,
                             warmup=warmup, program=program, ref=ref, dynamic_hw=dynamic_hw, opset=opset,
                             exporter=exporter, coreml_precision=coreml_precision, name=name, quiet=quiet,
                             write_report=write_report, threads=threads or torch.get_num_threads())


def _export_model(model, example_inputs, fmt, out_path, check_inputs, metric_fn, *, runs, warmup, program, ref,
                  dynamic_hw, opset, exporter, coreml_precision, name, quiet, write_report, threads):
    import torch

    from vision3d.export import onnx as onnx_fmt

    spec = require_format(fmt)
    if dynamic_hw and spec.name != "onnx":
        raise InputError(f"dynamic H/W is supported for ONNX exports only, not {spec.name}",
                         fix="export one fixed size per deployment size")
    if spec.name == "onnx" and _needs_program("onnx", dynamic_hw, opset, exporter):
        require_module("onnxscript")          # torch's dynamo ONNX exporter needs it
    path = output_path_for(out_path, spec)
    example_inputs = _cpu_tuple(example_inputs)
    model.eval()
    if ref is None:
        ref = reference(model, example_inputs, check_inputs, metric_fn, runs=runs, warmup=warmup)

    warnings: list[str] = []
    t0 = time.perf_counter()
    try:
        with quiet_output(quiet):
            if spec.name == "onnx":
                info = onnx_fmt.convert(model, example_inputs, path, input_names=ref.input_names,
                                        output_names=ref.output_names, program=program,
                                        opset=onnx_fmt.DEFAULT_OPSET if opset is None else int(opset),
                                        exporter=exporter, dynamic_hw=dynamic_hw)
            else:
                prog = program if program is not None else trace_program(model, example_inputs, dynamic_hw)
                if spec.name == "executorch":
                    from vision3d.export import executorch as et_fmt

                    info = et_fmt.convert(prog, path)
                else:
                    from vision3d.export import coreml as coreml_fmt

                    info = coreml_fmt.convert(prog, path, output_names=ref.output_names, precision=coreml_precision)
    except (InputError, ExportError):
        raise
    except Exception as e:
        raise ExportError(f"{spec.name} export failed: {first_line(e)}") from e
    export_s = time.perf_counter() - t0
    warnings += info.warnings

    extra = _other_size(ref.checks[0], int(getattr(model, "stride", 1) or 1)) if info.dynamic_hw else None
    outs, lat, runtime, note, extra_out = _run_exported(spec, path, ref, runs, warmup, quiet, extra, threads)
    max_diff = mean_diff = metric_after = None
    if outs is not None:
        if extra is not None:            # a dynamic export must also match at a size it was not traced at
            warnings.append(_check_other_size(model, extra, extra_out))
        max_diff, mean_diff, shape_note = _diffs(ref.outputs, outs)
        if shape_note:
            warnings.append(shape_note)
        if metric_fn is not None:
            metric_after = _clean_metric(metric_fn(outs))
    elif note and not note.startswith("Core ML"):
        warnings.append(note)

    report = ExportReport(
        format=spec.name, path=str(path), file_size_bytes=path_size(path),
        model=name or getattr(model, "name", None) or type(model).__name__, exporter=info.exporter,
        opset=info.opset, backends=list(info.backends), runtime=runtime, runnable=outs is not None,
        runtime_note=note, input_shapes=[list(t.shape) for t in example_inputs],
        output_shapes=[list(t.shape) for t in ref.outputs[0]], dynamic_hw=info.dynamic_hw,
        n_check_inputs=len(ref.checks), max_abs_diff=max_diff, mean_abs_diff=mean_diff,
        metric_before=ref.metric, metric_after=metric_after, latency_ms=lat, torch_latency_ms=ref.latency_ms,
        threads=torch.get_num_threads(), export_seconds=round(export_s, 2),
        versions={"torch": torch.__version__, **{p: version(p) for p in FORMAT_PACKAGES[spec.name]}},
        warnings=warnings)
    if write_report:
        report.write(path)
    return report


def export_formats(model, example_inputs: Sequence, formats: Sequence[str], out_stem: str | Path,
                   check_inputs: Sequence[Sequence] | None = None, metric_fn: MetricFn | None = None, *,
                   runs: int = 10, warmup: int = 1, dynamic_hw: bool = False, quiet: bool = True,
                   threads: int | None = None, on_start: Callable[[str, Path], None] | None = None,
                   **kw) -> list[ExportReport]:
    """Export to several formats (``out_stem`` + each suffix), sharing PyTorch's reference run and one
    ``torch.export`` program; ``on_start(fmt, path)`` is called before each."""
    with _torch_threads(threads):
        return _export_formats(model, example_inputs, formats, out_stem, check_inputs, metric_fn, runs=runs,
                               warmup=warmup, dynamic_hw=dynamic_hw, quiet=quiet, threads=threads,
                               on_start=on_start, **kw)


def _export_formats(model, example_inputs, formats, out_stem, check_inputs, metric_fn, *, runs, warmup,
                    dynamic_hw, quiet, threads, on_start, **kw) -> list[ExportReport]:
    specs = [require_format(f) for f in formats]
    if dynamic_hw and any(s.name != "onnx" for s in specs):
        raise InputError("dynamic H/W is supported for ONNX exports only", fix="export the other formats separately")
    example_inputs = _cpu_tuple(example_inputs)
    ref = reference(model, example_inputs, check_inputs, metric_fn, runs=runs, warmup=warmup)
    program = None
    reports = []
    for spec in specs:
        path = output_path_for(out_stem, spec)
        if on_start:
            on_start(spec.name, path)
        if program is None and _needs_program(spec.name, dynamic_hw, kw.get("opset"), kw.get("exporter", "auto")):
            with quiet_output(quiet):
                program = trace_program(model, example_inputs, dynamic_hw)
        reports.append(export_model(model, example_inputs, spec.name, path, check_inputs, metric_fn, runs=runs,
                                    warmup=warmup, program=program, ref=ref, dynamic_hw=dynamic_hw, quiet=quiet,
                                    threads=threads, **kw))
    return reports


# helpers ------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _torch_threads(threads: int | None):
    """Run the block with ``torch.set_num_threads(threads)`` (if given), restoring the old count after."""
    import torch

    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _needs_program(fmt: str, dynamic_hw: bool, opset: int | None, exporter: str) -> bool:
    """Whether this format converts from a ``torch.export`` program (all but ONNX's TorchScript exporter)."""
    if fmt != "onnx":
        return True
    from vision3d.export import onnx as onnx_fmt

    return onnx_fmt.pick_exporter(exporter, onnx_fmt.DEFAULT_OPSET if opset is None else opset, dynamic_hw) == "dynamo"


def _other_size(inputs: tuple, stride: int) -> tuple | None:
    """The inputs cropped by one ``stride`` in H and W (4-D tensors only), to check a dynamic-size export."""
    import torch

    four = [t for t in inputs if isinstance(t, torch.Tensor) and t.dim() == 4]
    if not four:
        return None
    h, w = four[0].shape[-2:]
    step = max(1, stride)
    if h <= step or w <= step:
        return None
    return tuple(t[..., : h - step, : w - step].contiguous() if isinstance(t, torch.Tensor) and t.dim() == 4
                 and tuple(t.shape[-2:]) == (h, w) else t for t in inputs)


def _run_exported(spec: FormatSpec, path: Path, ref: Reference, runs: int, warmup: int, quiet: bool,
                  extra: tuple | None = None, threads: int | None = None):
    """``(outputs per check input, latency, runtime name, note, outputs for extra or the error)``; outputs are
    ``None`` when the model cannot run here."""
    try:
        with quiet_output(quiet):
            if spec.name == "onnx":
                from vision3d.export.onnx import load_runner
            elif spec.name == "executorch":
                from vision3d.export.executorch import load_runner
            else:
                from vision3d.export.coreml import load_runner
            runner = load_runner(path, threads)
            outs = [runner.run(c) for c in ref.checks]
            lat = measure_latency(lambda: runner.run(ref.checks[0]), runs=runs, warmup=warmup) if runs > 0 else None
    except RuntimeUnavailable as e:
        return None, None, None, str(e), None
    except Exception as e:  # noqa: BLE001 - reported, not raised: the file is complete, its runtime is not
        return None, None, None, f"the exported model failed to run: {first_line(e)}", None
    extra_out = None
    if extra is not None:
        try:
            with quiet_output(quiet):
                extra_out = runner.run(extra)
        except Exception as e:  # noqa: BLE001 - reported as a warning
            extra_out = e
    return outs, lat, runner.name, None, extra_out


def _check_other_size(model, extra: tuple, extra_out) -> str:
    import torch

    size = "x".join(map(str, extra[0].shape[-2:]))
    if isinstance(extra_out, BaseException):
        return f"dynamic H/W: at {size} (not the traced size) the exported model fails: {first_line(extra_out)}"
    with torch.no_grad():
        extra_ref = _as_tuple(model(*extra))
    d, _, bad = _diffs([extra_ref], [extra_out])
    if bad or d is None or d > 1e-3:
        return f"dynamic H/W: at {size} (not the traced size) the exported model differs from PyTorch: " \
               f"{bad or f'max abs diff {d:.3g}'}"
    return f"dynamic H/W checked at {size} too: max abs diff {d:.3g}"


def _diffs(ref_outs: list[tuple], outs: list[tuple]) -> tuple[float | None, float | None, str | None]:
    mx, total, count = 0.0, 0.0, 0
    for r, o in zip(ref_outs, outs):
        if len(r) != len(o):
            return None, None, f"the exported model returns {len(o)} outputs, PyTorch {len(r)}"
        for a, b in zip(r, o):
            if tuple(a.shape) != tuple(b.shape):
                return None, None, f"output shape {tuple(b.shape)} differs from PyTorch's {tuple(a.shape)}"
            d = (a.detach().double() - b.detach().double()).abs()
            mx = max(mx, float(d.max())) if d.numel() else mx
            total += float(d.sum())
            count += d.numel()
    return mx, (total / count if count else 0.0), None


def _clean_metric(d) -> dict | None:
    if d is None:
        return None
    return {str(k): (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in d.items()}


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _cpu_tuple(inputs) -> tuple:
    import torch

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    return tuple(t.detach().cpu() if isinstance(t, torch.Tensor) else t for t in inputs)
