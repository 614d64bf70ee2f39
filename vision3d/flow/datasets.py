"""Flow evaluation datasets with ground truth: Sintel, Middlebury, and any folder in the synth layout.

Each sample yields the frames (two, or more where the dataset has them), the GT ``FlowField`` and optional
region masks (``occ``: occluded pixels) for the ``_occ``/``_non_occ`` metrics.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vision3d.core.flow import FlowField
from vision3d.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """``$VISION3D_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("VISION3D_DATA", REPO.parent / "shared" / "data"))


@dataclass
class FlowSample:
    name: str
    frames: list[np.ndarray]  # frames[0] → frames[1] is the evaluated pair
    gt: FlowField
    masks: dict[str, np.ndarray] = field(default_factory=dict)


def _sintel(root: Path, passes: tuple[str, ...]) -> Iterator[FlowSample]:
    from vision3d.io.flow import read_flow
    from vision3d.io.images import read_image

    base = root / "sintel_flow" / "training"
    gt_files = sorted((base / "flow").glob("*/*.flo"))
    if not gt_files:
        raise InputError("no Sintel ground truth found", path=base / "flow", fix="set VISION3D_DATA")
    for ps in passes:
        for g in gt_files:
            seq, stem = g.parent.name, g.stem
            idx = int(stem.split("_")[1])
            frames = []
            for k in range(idx, idx + 8):  # as many consecutive frames as the folder holds
                p = base / ps / seq / f"frame_{k:04d}.png"
                if not p.is_file():
                    break
                frames.append(read_image(p))
            gt = read_flow(g)
            masks = {}
            occ = base / "occlusions" / seq / f"{stem}.png"
            if occ.is_file():
                masks["occ"] = read_image(occ)[..., 0] > 0.5
            inv = base / "invalid" / seq / f"{stem}.png"
            if inv.is_file():
                gt = FlowField(gt.flow, gt.valid_mask() & ~(read_image(inv)[..., 0] > 0.5))
            yield FlowSample(f"{ps}/{seq}", frames, gt, masks)


def _middlebury(root: Path) -> Iterator[FlowSample]:
    from vision3d.io.flow import read_flow
    from vision3d.io.images import read_image

    base = root / "middlebury_flow"
    seqs = sorted(p.name for p in (base / "other-gt-flow").iterdir()) if (base / "other-gt-flow").is_dir() else []
    if not seqs:
        raise InputError("no Middlebury ground truth found", path=base, fix="set VISION3D_DATA")
    for seq in seqs:
        folder = base / "other-data" / seq
        if not (folder / "frame10.png").is_file():
            folder = base / "other-data-gray" / seq
        frames = [read_image(folder / f"frame{k}.png") for k in range(10, 20) if (folder / f"frame{k}.png").is_file()]
        yield FlowSample(seq, frames, read_flow(base / "other-gt-flow" / seq / "flow10.flo"))


def _synth_folder(folder: Path) -> Iterator[FlowSample]:
    from vision3d.synth import load_sequence

    seq = load_sequence(folder)
    for t in range(len(seq.flow_fw)):
        yield FlowSample(f"{folder.name}/{t:05d}", [seq.images[t], seq.images[t + 1]], FlowField(seq.flow_fw[t]),
                         {"occ": seq.occ_fw[t]})


DATASETS = ("sintel", "sintel-clean", "sintel-final", "middlebury")


def iter_dataset(name: str, root: Path | None = None) -> Iterator[FlowSample]:
    """Samples of a named dataset (under ``root``) or of a folder in the ``v3d synth`` layout."""
    root = root or data_root()
    if name == "sintel":
        return _sintel(root, ("clean", "final"))
    if name in ("sintel-clean", "sintel-final"):
        return _sintel(root, (name.split("-")[1],))
    if name == "middlebury":
        return _middlebury(root)
    p = Path(name)
    if p.is_dir() and (p / "meta.json").is_file():
        return _synth_folder(p)
    raise InputError(f"unknown flow dataset {name!r}",
                     fix=f"use one of {', '.join(DATASETS)} or a folder written by `v3d synth`")
