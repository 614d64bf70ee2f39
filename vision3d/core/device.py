"""Device choice (``--device auto|cpu|cuda[:N]``) and what this installation can do (``v3d info``)."""

from __future__ import annotations

import importlib
import importlib.util
import importlib.metadata as md
import os
from dataclasses import dataclass

from vision3d.errors import InputError


def resolve_device(name: str = "auto"):
    """``auto`` → CUDA when present else CPU; an explicit CUDA request without CUDA is a clear error."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {name} asked for CUDA but no CUDA GPU is visible to torch",
                             fix="use --device cpu (or auto), or install a CUDA build of torch")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise InputError(f"unknown device {name!r}", fix="use auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class Capability:
    """Whether an optional part works here, and why not when it does not."""

    group: str
    name: str
    available: bool
    detail: str


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _importable(module: str) -> tuple[bool, str]:
    """Whether ``module`` can be found, without importing it (exporters are slow and noisy to import)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError) as e:
        return False, f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    return found, "" if found else f"{module} cannot be imported"


def versions() -> dict[str, str]:
    """Versions of Python and the main libraries (``-`` when absent)."""
    import platform

    out = {"python": platform.python_version()}
    for d in ("vision3d", "torch", "numpy", "opencv-python-headless", "av", "kornia", "trimesh", "safetensors",
              "scikit-image", "typer", "rich", "numba"):
        out[d] = _version(d) or "-"
    return out


def gsplat_cache_dir() -> str:
    """Where gsplat's JIT-compiled CUDA extension is cached (torch's extension folder)."""
    return os.environ.get("TORCH_EXTENSIONS_DIR", os.path.join(os.path.expanduser("~"), ".cache", "torch_extensions"))


def capabilities() -> list[Capability]:
    """Devices, render backends, exporters and the viewer, each with the reason it is unavailable."""
    import torch

    caps: list[Capability] = []
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        caps.append(Capability("device", "cuda", True, f"{torch.cuda.device_count()} GPU(s): {names}"))
    else:
        why = "torch is a CPU build" if torch.version.cuda is None else "no CUDA GPU/driver visible"
        caps.append(Capability("device", "cuda", False, why))
    caps.append(Capability("device", "cpu", True, f"{torch.get_num_threads()} threads"))

    caps.append(Capability("render", "torch", True, "pure-PyTorch reference backend, any device"))
    nv = _version("numba")
    caps.append(Capability("render", "cpu", nv is not None,
                           f"numba {nv} tile kernels (default on CPU); compile on first use (~11 s), then cached"
                           if nv is not None else "numba is not installed (pip install numba); torch is used instead"))
    gv = _version("gsplat")
    if gv is None:
        caps.append(Capability("render", "gsplat", False, "not installed (pip install 'vision3d[cuda]')"))
    elif not torch.cuda.is_available():
        caps.append(Capability("render", "gsplat", False, f"gsplat {gv} installed, but it needs CUDA"))
    else:
        caps.append(Capability("render", "gsplat", True,
                               f"gsplat {gv}; compiles its CUDA kernels on first use (~60 s), cached in "
                               f"{gsplat_cache_dir()}"))

    for name, mods, extra in (("onnx", ("onnx", "onnxruntime"), "export"), ("coreml", ("coremltools",), "export"),
                              ("executorch", ("executorch",), "export")):
        missing = [m for m in mods if _version(m.replace("_", "-")) is None and _version(m) is None]
        if missing:
            caps.append(Capability("export", name, False, f"{', '.join(missing)} not installed "
                                                          f"(pip install 'vision3d[{extra}]')"))
        else:
            ok, why = _importable(mods[0])
            caps.append(Capability("export", name, ok, why or ", ".join(f"{m} {_version(m)}" for m in mods)))

    vv = _version("viser")
    caps.append(Capability("viewer", "viser", vv is not None,
                           f"viser {vv}" if vv else "not installed (pip install 'vision3d[viewer]')"))
    return caps
