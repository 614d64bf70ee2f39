"""Shared pieces of the exporters: format table, package checks, input/output names, quiet conversion, runners."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import importlib.util
import inspect
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vision3d.errors import InputError, Vision3DError

INSTALL_HINT = "pip install 'vision3d[export]'"


class ExportError(Vision3DError):
    """A converter failed on this model (an unsupported op, a shape it cannot handle, ...)."""


class RuntimeUnavailable(Vision3DError):
    """The exported model cannot be run on this machine (e.g. Core ML outside Apple platforms)."""


@dataclass(frozen=True)
class FormatSpec:
    name: str
    suffix: str
    modules: tuple[str, ...]     # import names that must be present
    description: str


FORMATS: dict[str, FormatSpec] = {
    "onnx": FormatSpec("onnx", ".onnx", ("onnx", "onnxruntime"), "ONNX, checked with onnxruntime (CPU)"),
    "coreml": FormatSpec("coreml", ".mlpackage", ("coremltools",), "Core ML ML Program (.mlpackage folder)"),
    "executorch": FormatSpec("executorch", ".pte", ("executorch",), "ExecuTorch program, XNNPACK delegate"),
}
ALIASES = {"pte": "executorch", "et": "executorch", "mlpackage": "coreml", "ort": "onnx"}


def format_spec(fmt: str) -> FormatSpec:
    key = ALIASES.get(fmt.lower().strip(), fmt.lower().strip())
    if key not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    return FORMATS[key]


def require_module(module: str) -> None:
    """``InputError`` with the install hint when ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        raise InputError(f"{module} is not installed ({INSTALL_HINT})")


def require_format(fmt: str) -> FormatSpec:
    spec = format_spec(fmt)
    for m in spec.modules:
        require_module(m)
    return spec


def version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "-"


def output_path_for(out_path: str | Path, spec: FormatSpec) -> Path:
    """The path with the format's suffix added when it has none; a different known suffix is an error."""
    p = Path(out_path)
    if p.suffix.lower() == spec.suffix:
        return p
    known = {f.suffix for f in FORMATS.values()}
    if p.suffix.lower() in known:
        raise InputError(f"{spec.name} exports end in {spec.suffix}, not {p.suffix}", path=p,
                         fix=f"name the output *{spec.suffix}")
    return p.with_name(p.name + spec.suffix)


# names --------------------------------------------------------------------------------------------------------
def io_names(model, n_inputs: int, n_outputs: int | None = None) -> tuple[list[str], list[str]]:
    """Input names from ``model.input_names`` or its ``forward`` signature; output names from
    ``model.output_names`` or ``output0..``."""
    ins = list(getattr(model, "input_names", ()) or ())
    if len(ins) != n_inputs:
        try:
            params = [p.name for p in inspect.signature(model.forward).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError, AttributeError):
            params = []
        ins = params[:n_inputs] if len(params) >= n_inputs else [f"input{i}" for i in range(n_inputs)]
    outs = list(getattr(model, "output_names", ()) or ())
    if n_outputs is not None and len(outs) != n_outputs:
        outs = [f"output{i}" for i in range(n_outputs)]
    return ins, outs


# conversion result and runners ----------------------------------------------------------------------------------
@dataclass
class ConversionInfo:
    """What a format's ``convert`` tells the report."""

    exporter: str
    opset: int | None = None
    backends: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dynamic_hw: bool = False


@dataclass
class Runner:
    """Runs an exported model: ``run(tuple of CPU tensors) -> tuple of tensors``; ``name`` names the runtime."""

    name: str
    run: Callable[[Sequence], tuple]


# quiet conversions ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def quiet_output(enabled: bool = True) -> Iterator[list[str]]:
    """Send what converters print (Python and C++ alike, fds 1 and 2) to a temp file while the block runs.

    Yields a list that holds the captured text afterwards; on an exception the last lines are attached to it
    as a note (shown with ``--debug``).
    """
    captured: list[str] = []
    if not enabled:
        yield captured
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield captured
        except BaseException as e:
            _restore(saved, tmp, captured)
            saved = []
            tail = "\n".join(captured[0].splitlines()[-30:]) if captured and captured[0] else ""
            if tail and hasattr(e, "add_note"):
                e.add_note("converter output (last lines):\n" + tail)
            raise
        finally:
            if saved:
                _restore(saved, tmp, captured)


def _restore(saved: list[int], tmp, captured: list[str]) -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    for fd in saved:
        os.close(fd)
    tmp.seek(0)
    captured.append(tmp.read().decode("utf-8", "replace"))


def first_line(e: BaseException, limit: int = 300) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:limit] if text else ''}"
