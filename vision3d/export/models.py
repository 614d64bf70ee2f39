"""Models ``v3d export`` knows: how to build each (from a checkpoint) and what real inputs check it.

Add an entry to ``EXPORTABLE`` for a new model: a ``build(checkpoint, random_init)`` returning the module to
export (taking and returning plain tensors), a ``parity(model, height, width)`` returning
``(check_inputs, metric_fn, source)``, and its default size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vision3d.errors import InputError

REPO = Path(__file__).resolve().parents[2]
from vision3d.io.checkpoint import SHIPPED_CHECKPOINTS as CHECKPOINT_DIR  # noqa: E402
from vision3d.io.checkpoint import default_checkpoint  # noqa: E402,F401


@dataclass(frozen=True)
class ExportableModel:
    name: str
    description: str
    build: Callable[[Path | None, bool], object]
    parity: Callable[[object, int, int], tuple[list[tuple], Callable | None, str]]
    default_size: tuple[int, int]       # (height, width)
    default_checkpoint: Path




# compactflownet ------------------------------------------------------------------------------------------------
def _build_compactflownet(checkpoint: Path | None, random_init: bool):
    import torch

    from vision3d.export.flow import FlowExportWrapper

    name = "compactflownet"
    path = Path(checkpoint) if checkpoint else default_checkpoint(name)
    if not random_init and not path.is_file():
        train = f"train one with `python scripts/train_flow.py --model {name}`"
        if checkpoint:
            raise InputError(f"{name} checkpoint not found: {path}", fix=f"check the path, or {train}")
        raise InputError(f"no {name} checkpoint at {path}", fix=f"{train} or pass --checkpoint PATH")
    try:
        from vision3d.flow.models.compactflownet import CompactFlowNet
    except ImportError as e:
        raise InputError(f"{name} is not available in this installation ({e})") from None
    if random_init:
        torch.manual_seed(0)
        model = CompactFlowNet.from_config({})
    else:
        from vision3d.io.checkpoint import load_checkpoint

        state, config, _ = load_checkpoint(path, model=name)
        model = CompactFlowNet.from_config(config)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise InputError(f"checkpoint does not fit {name} (missing {len(missing)}, unexpected "
                             f"{len(unexpected)} tensors)", path=path, fix="pass a checkpoint trained for this config")
    return FlowExportWrapper(model.eval()).eval()


def _flow_parity(model, height: int, width: int):
    from vision3d.export.flow import flow_parity_case

    case = flow_parity_case(height, width)
    return [case.inputs], case.metric, case.source


EXPORTABLE: dict[str, ExportableModel] = {
    "compactflownet": ExportableModel("compactflownet", "CompactFlowNet optical flow (two RGB frames → flow)",
                                      _build_compactflownet, _flow_parity, (384, 512),
                                      default_checkpoint("compactflownet")),
}


def exportable(name: str) -> ExportableModel:
    key = name.lower()
    if key not in EXPORTABLE:
        raise InputError(f"{name!r} is not an exportable model", fix=f"use one of {', '.join(EXPORTABLE)}")
    return EXPORTABLE[key]
