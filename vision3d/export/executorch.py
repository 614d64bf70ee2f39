"""ExecuTorch export: ``torch.export`` → ``to_edge_transform_and_lower`` with the XNNPACK partitioner → ``.pte``.

The ExecuTorch runtime's Python bindings run the ``.pte`` here on Linux (for parity and latency). Ops XNNPACK
does not take (``grid_sampler_2d`` for one) stay on ExecuTorch's portable CPU kernels; the report lists them.

Lowering time grows with the number of graph nodes (about 0.05-0.1 s per node on a busy 2-core machine): a
flow network whose cost volume is a Python loop of shifted products has thousands of nodes and takes minutes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from vision3d.export.common import ConversionInfo, Runner, version
from vision3d.io.atomic import write_bytes

DELEGATE_TARGET = "executorch_call_delegate"


def convert(program, path: Path) -> ConversionInfo:
    """Lower a ``torch.export`` program with XNNPACK and write the ``.pte`` atomically."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    delegated, portable = _op_summary(edge.exported_program().graph)
    et_program = edge.to_executorch()
    write_bytes(path, et_program.buffer)
    warnings = []
    if portable:
        ops = ", ".join(f"{op} x{n}" for op, n in portable.most_common(8))
        warnings.append(f"{sum(portable.values())} op(s) run on ExecuTorch's portable CPU kernels, not XNNPACK: {ops}")
    if delegated == 0:
        warnings.append("XNNPACK took no part of the graph")
    return ConversionInfo(exporter=f"executorch {version('executorch')} (to_edge_transform_and_lower)",
                          backends=[f"XnnpackBackend ({delegated} delegate call(s))"] + (["portable"] if portable else []),
                          warnings=warnings)


def _op_summary(graph) -> tuple[int, Counter]:
    """Number of delegate calls and a count of the ops left outside any delegate."""
    delegated, portable = 0, Counter()
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if DELEGATE_TARGET in name:
            delegated += 1
        elif name != "getitem" and "getitem" not in str(node.target):
            portable[_short(node.target)] += 1
    return delegated, portable


def _short(target) -> str:
    """``aten.grid_sampler_2d`` from an edge/aten op overload."""
    s = getattr(target, "__name__", None) or str(target)
    return s.removesuffix(".default")


def set_threads(threads: int | None) -> int | None:
    """Resize the runtime's (XNNPACK) threadpool to ``threads`` if given; returns its size if known."""
    try:
        from executorch.extension.pybindings import portable_lib as lib
    except ImportError:
        return None
    if threads and hasattr(lib, "_unsafe_reset_threadpool"):
        lib._unsafe_reset_threadpool(int(threads))
    get = getattr(lib, "_threadpool_get_thread_count", None)
    return int(get()) if get else None


def load_runner(path: str | Path, threads: int | None = None) -> Runner:
    """Load the ``.pte`` with the ExecuTorch runtime (``executorch.runtime.Runtime``) and run its ``forward``;
    ``threads`` resizes the runtime's threadpool (default: as the runtime sets it, one per core)."""
    import torch
    from executorch.runtime import Runtime

    runtime = Runtime.get()
    n_threads = set_threads(threads)
    program = runtime.load_program(Path(path))
    method = program.load_method("forward")
    if method is None:
        raise RuntimeError(f"{path}: no forward method in the program")

    def run(inputs: Sequence) -> tuple:
        outs = method.execute([t.detach().cpu().contiguous() for t in inputs])
        # outputs may live in the program's planned memory, which the next call overwrites: copy them
        return tuple(o.clone() if isinstance(o, torch.Tensor) else torch.as_tensor(o) for o in outs)

    pool = f", {n_threads} threads" if n_threads else ""
    return Runner(f"executorch runtime {version('executorch')} (XNNPACK + portable kernels{pool})", run)
