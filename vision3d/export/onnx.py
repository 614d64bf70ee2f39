"""ONNX export (``torch.onnx.export``), checked with ``onnx.checker`` and run with onnxruntime on the CPU.

Two exporters, picked by ``exporter="auto"`` from the opset:

- ``dynamo`` (the default, opset 18): converts the same ``torch.export`` program that Core ML and ExecuTorch
  use, and supports dynamic H/W. It always emits opset 18 here: the ONNX version converter cannot take these
  graphs down to 17 (no adapter for ``Pad``, ``ReduceMean`` with input axes). onnxscript's full graph
  optimiser is skipped: on flow networks it is quadratic (minutes for a few thousand nodes); constants are
  folded, dead nodes and per-node debug metadata removed instead, and onnxruntime applies its own graph
  optimisations at load time.
- ``torchscript`` (opset < 18, e.g. ``opset=17`` for older runtimes): fast, static shapes, deprecated by
  torch but still in 2.13. It traces, so size-dependent Python code can change meaning: e.g.
  ``torch.linspace(-1, 1, h)`` with a traced ``h`` becomes float64, and onnxruntime then has no
  ``GridSample`` kernel for it. Parity against PyTorch catches such cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vision3d.errors import InputError
from vision3d.export.common import ConversionInfo, Runner, require_module, version
from vision3d.io.atomic import atomic_path

DEFAULT_OPSET = 18
MIN_OPSET = 16            # grid_sample
DYNAMO_OPSET = 18


def pick_exporter(exporter: str, opset: int, dynamic_hw: bool) -> str:
    exporter = (exporter or "auto").lower()
    if exporter not in ("auto", "torchscript", "dynamo"):
        raise InputError(f"unknown ONNX exporter {exporter!r}", fix="use auto, torchscript or dynamo")
    if opset < MIN_OPSET:
        raise InputError(f"ONNX opset {opset} is too old: grid_sample needs opset >= {MIN_OPSET}")
    if exporter == "auto":
        return "dynamo" if dynamic_hw or opset >= DYNAMO_OPSET else "torchscript"
    return exporter


def convert(model, example_inputs: tuple, path: Path, *, input_names: list[str], output_names: list[str],
            program=None, opset: int = DEFAULT_OPSET, exporter: str = "auto",
            dynamic_hw: bool = False) -> ConversionInfo:
    """Export ``model`` (or its ``torch.export`` ``program``) to ``path`` atomically; check with ``onnx.checker``."""
    import onnx
    import torch

    kind = pick_exporter(exporter, opset, dynamic_hw)
    in_names, out_names = list(input_names), list(output_names)
    warnings: list[str] = []
    with atomic_path(path) as tmp:
        if kind == "torchscript":
            dyn_axes = None
            if dynamic_hw:
                dyn_axes = {n: {2: "height", 3: "width"} for n in in_names}
                dyn_axes.update({n: {2: "height", 3: "width"} for n in out_names})
            torch.onnx.export(model, example_inputs, str(tmp), opset_version=opset, dynamo=False,
                              input_names=in_names, output_names=out_names, dynamic_axes=dyn_axes,
                              do_constant_folding=True)
            used_opset = opset
        else:
            require_module("onnxscript")
            if opset < DYNAMO_OPSET:
                warnings.append(f"opset {opset} asked, but torch's dynamo exporter emits opset {DYNAMO_OPSET} "
                                "(the ONNX version converter cannot lower these graphs)")
            if program is None:   # our own torch.export: the ONNX exporter's fallbacks can mix static/dynamic
                dyn = _dynamic_shapes(example_inputs) if dynamic_hw else None
                with torch.no_grad():
                    program = torch.export.export(model, tuple(example_inputs), dynamic_shapes=dyn)
            onnx_program = torch.onnx.export(program, example_inputs, None, opset_version=max(opset, DYNAMO_OPSET),
                                             dynamo=True, optimize=False, external_data=False, verbose=False,
                                             input_names=in_names, output_names=out_names)
            _light_optimize(onnx_program.model)
            onnx_program.save(str(tmp), external_data=False)
            used_opset = max(opset, DYNAMO_OPSET)
        onnx.checker.check_model(str(tmp), full_check=True)
        loaded = onnx.load(str(tmp), load_external_data=False)
        used_opset = next((o.version for o in loaded.opset_import if o.domain in ("", "ai.onnx")), used_opset)
        # a size torch.export specialised keeps a dim_param that is just the number ("32"): not dynamic
        symbolic = all(all(d.dim_param and not d.dim_param.isdigit() for d in i.type.tensor_type.shape.dim[2:4])
                       for i in loaded.graph.input if len(i.type.tensor_type.shape.dim) >= 4)
        if dynamic_hw and not symbolic:
            warnings.append("dynamic H/W was asked, but torch.export fixed the input sizes (some op specialises "
                            "on them, e.g. torch.linspace with a size taken from the input): exported static")
    return ConversionInfo(exporter=f"torch.onnx ({kind})", opset=int(used_opset), backends=["CPUExecutionProvider"],
                          warnings=warnings, dynamic_hw=bool(dynamic_hw and symbolic))


def _dynamic_shapes(example_inputs):
    from torch.export import Dim

    return tuple({2: Dim.AUTO, 3: Dim.AUTO} if getattr(t, "dim", lambda: 0)() >= 4 else None
                 for t in example_inputs)


def _light_optimize(model_ir) -> None:
    """Constant folding and dead-node removal (cheap) instead of onnxscript's full rewriter (slow here), and
    no per-node debug metadata (torch stack traces, name scopes: about half the file of a flow network)."""
    try:
        from onnx_ir.passes.common import ClearMetadataAndDocStringPass, RemoveUnusedNodesPass
        from onnxscript import optimizer

        optimizer.fold_constants(model_ir)
        RemoveUnusedNodesPass()(model_ir)
        ClearMetadataAndDocStringPass()(model_ir)
    except Exception:  # noqa: BLE001,S110 - optional; the unoptimised graph is valid too
        pass


def load_runner(path: str | Path, threads: int | None = None) -> Runner:
    """An onnxruntime CPU session for ``path``; ``threads`` sets intra-op threads (torch's count by default)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or torch.get_num_threads())
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]

    def run(inputs: Sequence) -> tuple:
        feed = {n: np.ascontiguousarray(t.detach().cpu().numpy()) for n, t in zip(names, inputs)}
        return tuple(torch.from_numpy(np.asarray(o)) for o in sess.run(None, feed))

    return Runner(f"onnxruntime {version('onnxruntime')} (CPUExecutionProvider, {opts.intra_op_num_threads} threads)",
                  run)
