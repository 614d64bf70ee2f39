"""Core ML export: a ``torch.export`` program → coremltools ML Program → ``.mlpackage`` (a folder).

coremltools converts on Linux, but a Core ML model runs only on Apple platforms (its prediction library is
not in the Linux wheel), so parity and latency are measured only on macOS; elsewhere the report says so.
The package is written into a hidden temp folder beside the target and renamed into place when complete.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from vision3d.errors import InputError
from vision3d.export.common import ConversionInfo, Runner, RuntimeUnavailable, version
from vision3d.io.atomic import atomic_dir

PRECISIONS = ("float32", "float16")
DEPLOYMENT_TARGET = "iOS16"
DEBUG_MAPPING = "executorch_debug_handle_mapping.json"   # coremltools 9 adds it to every package it saves
NOT_RUNNABLE = ("Core ML models run only on Apple platforms: coremltools converts on Linux but cannot "
                "predict here, so parity and latency were not measured")


def convert(program, path: Path, *, output_names: list[str], precision: str = "float32") -> ConversionInfo:
    """Convert a ``torch.export`` program to an ML Program and save it as ``path`` (``*.mlpackage``)."""
    import coremltools as ct

    if precision not in PRECISIONS:
        raise InputError(f"unknown Core ML precision {precision!r}", fix=f"use one of {', '.join(PRECISIONS)}")
    prog = program.run_decompositions({})
    kw = {"convert_to": "mlprogram", "minimum_deployment_target": getattr(ct.target, DEPLOYMENT_TARGET),
          "compute_precision": ct.precision.FLOAT32 if precision == "float32" else ct.precision.FLOAT16}
    warnings: list[str] = []
    try:
        mlmodel = ct.convert(prog, outputs=[ct.TensorType(name=n) for n in output_names], **kw)
    except Exception as e:  # output renaming is cosmetic: retry without it before giving up
        if "output" not in str(e).lower():
            raise
        mlmodel = ct.convert(prog, **kw)
        warnings.append("Core ML output names are coremltools' defaults")
    _, tested = _tested_torch()
    if tested:
        warnings.append(tested)
    with atomic_dir(path) as tmp:
        inner = tmp / path.name            # coremltools wants the .mlpackage name itself
        mlmodel.save(str(inner))
        (inner / DEBUG_MAPPING).unlink(missing_ok=True)   # not in the manifest; only ExecuTorch's delegate uses it
        for child in inner.iterdir():
            os.replace(child, tmp / child.name)
        shutil.rmtree(inner)
        _normal_modes(tmp)                 # mkdtemp (and coremltools' temp files) make things private
    return ConversionInfo(exporter=f"coremltools {version('coremltools')} (torch.export → mlprogram)",
                          backends=[f"mlprogram {DEPLOYMENT_TARGET}+ {precision}"], warnings=warnings)


def _normal_modes(folder: Path) -> None:
    """Give a freshly written package the modes ``open``/``mkdir`` would have (umask applied)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o777 & ~mask)
        for f in files:
            os.chmod(os.path.join(root, f), 0o666 & ~mask)


def _tested_torch() -> tuple[str, str | None]:
    """coremltools' own note when this torch is newer than the ones it was tested with."""
    try:
        import torch
        from coremltools._deps import _TORCH_MAX_VERSION as top
        from packaging.version import Version

        if Version(torch.__version__.split("+")[0]) > Version(str(top)):
            return str(top), (f"coremltools {version('coremltools')} was tested with torch up to {top}; "
                              f"this is torch {torch.__version__} (the conversion worked)")
    except Exception:  # noqa: BLE001,S110 - only a note for the report
        pass
    return "", None


def load_runner(path: str | Path, threads: int | None = None) -> Runner:
    """A Core ML predictor (macOS only); elsewhere ``RuntimeUnavailable`` with the reason."""
    if sys.platform != "darwin":
        raise RuntimeUnavailable(NOT_RUNNABLE)
    import coremltools as ct
    import numpy as np
    import torch

    model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.ALL)
    spec = model.get_spec()
    in_names = [i.name for i in spec.description.input]
    out_names = [o.name for o in spec.description.output]

    def run(inputs: Sequence) -> tuple:
        res = model.predict({n: t.detach().cpu().numpy() for n, t in zip(in_names, inputs)})
        return tuple(torch.from_numpy(np.asarray(res[n], dtype=np.float32)) for n in out_names)

    return Runner(f"Core ML {version('coremltools')} (compute units ALL)", run)
