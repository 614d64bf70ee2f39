"""Compact ground-truth archives for shipped sample clips (a video plus ``gt.npz``).

Flow is stored as int16 in 1/64 px (KITTI's precision) and depth as float16, so a 20-frame clip's
ground truth stays around a few MB; ``load_sample_gt`` returns float32 arrays again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision3d.errors import InputError
from vision3d.io.atomic import atomic_path
from vision3d.synth.sequence import SynthSequence

FLOW_UNIT = 1.0 / 64.0


def save_sample_gt(seq: SynthSequence, path: str | Path, config: dict | None = None) -> Path:
    """Write ``seq``'s ground truth (flows, occlusion, depth, moving masks, cameras) as a compressed npz."""
    def q(flow):
        return np.clip(np.rint(flow / FLOW_UNIT), -32767, 32767).astype(np.int16)

    cams = seq.cameras
    arrays = {"flow_fw_q": q(seq.flow_fw), "flow_bw_q": q(seq.flow_bw), "occ_fw": seq.occ_fw, "occ_bw": seq.occ_bw,
              "depth": seq.depth.astype(np.float16), "moving": seq.moving_mask, "K": cams.K,
              "world_to_cam": cams.world_to_cam, "width": np.int32(cams.width), "height": np.int32(cams.height),
              "config": np.array(repr(config or {}))}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def load_sample_gt(path: str | Path) -> dict[str, np.ndarray]:
    """Read a ``gt.npz`` written by ``save_sample_gt`` with flows and depth as float32."""
    path = Path(path)
    if not path.is_file():
        raise InputError("ground-truth file not found", path=path)
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except Exception as e:
        raise InputError(f"not a readable ground-truth archive ({type(e).__name__})", path=path) from e
    for k in ("flow_fw", "flow_bw"):
        d[k] = d.pop(f"{k}_q").astype(np.float32) * FLOW_UNIT
    d["depth"] = d["depth"].astype(np.float32)
    d["width"], d["height"] = int(d["width"]), int(d["height"])
    return d


def load_sample_scene(folder: str | Path):
    """The synthetic scene a shipped sample was rendered from, drawn again from its ``sample.json`` (generator
    config and seed; drawing is deterministic), so it can be rendered from cameras the clip never used."""
    import dataclasses
    import json

    from vision3d.synth.config import SynthConfig
    from vision3d.synth.sampling import sample_scene

    path = Path(folder) / "sample.json"
    try:
        meta = json.loads(path.read_text())
        fields = {f.name for f in dataclasses.fields(SynthConfig)}
        cfg = SynthConfig(**{k: v for k, v in meta["config"].items() if k in fields})
        return sample_scene(cfg, rng=meta["seed"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot draw the sample's scene again ({type(e).__name__}: {e})", path=path) from e
