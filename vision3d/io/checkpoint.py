"""Checkpoints: ``NAME.safetensors`` with the model name and JSON config in its metadata, plus ``NAME.json``.

Third-party ``.pt``/``.pth`` files are read only with ``torch.load(weights_only=True)``; nothing is unpickled.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from vision3d.errors import InputError
from vision3d.io.atomic import write_bytes, write_json
from vision3d.io.checks import require_file

TORCH_SUFFIXES = (".pt", ".pth")
_NOT_SAFETENSORS = "not a safetensors checkpoint"


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(NAME.safetensors, NAME.json)`` for a path given with or without the ``.safetensors`` suffix."""
    p = Path(path)
    if p.suffix != ".safetensors":
        p = p.with_name(p.name + ".safetensors")
    return p, p.with_suffix(".json")


def save_checkpoint(path: str | Path, state_dict: dict, config: dict, model: str,
                    extra: dict | None = None) -> Path:
    """Save tensors as safetensors with ``model``/``config``/version metadata and a JSON sidecar; returns the path."""
    import torch
    from safetensors.torch import save

    import vision3d

    st_path, json_path = checkpoint_paths(path)
    tensors, seen = {}, set()
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"state_dict[{k!r}] is {type(v).__name__}, not a torch.Tensor")
        v = v.detach().cpu().contiguous()
        ptr = (v.untyped_storage().data_ptr(), v.storage_offset()) if v.numel() else None
        if ptr is not None and ptr in seen:
            v = v.clone()  # tied weights: safetensors refuses shared storage
        seen.add(ptr)
        tensors[k] = v
    config_json = json.dumps(config, sort_keys=True)
    meta = {"model": model, "config": config_json, "vision3d_version": vision3d.__version__}
    if extra:
        meta["extra"] = json.dumps(extra, sort_keys=True)
    write_bytes(st_path, save(tensors, metadata=meta))
    write_json(json_path, {"model": model, "vision3d_version": vision3d.__version__, "config": config,
                           **({"extra": extra} if extra else {})})
    return st_path


def _safetensors_metadata(p: Path) -> dict[str, str]:
    """Validate the safetensors header and return its ``__metadata__`` (raises InputError otherwise)."""
    with open(p, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise InputError(f"{_NOT_SAFETENSORS} (file is {len(head)} bytes)", path=p,
                             fix="give a .safetensors file saved by vision3d or safetensors")
        (n,) = struct.unpack("<Q", head)
        if not 2 <= n <= min(100_000_000, p.stat().st_size - 8):
            raise InputError(f"{_NOT_SAFETENSORS} (bad header length)", path=p,
                             fix="give a .safetensors file; .pt/.pth files need that suffix")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{_NOT_SAFETENSORS} (header is not JSON)", path=p,
                         fix="give a .safetensors file; .pt/.pth files need that suffix") from None
    if not isinstance(header, dict):
        raise InputError(f"{_NOT_SAFETENSORS} (header is not a JSON object)", path=p)
    meta = header.get("__metadata__") or {}
    return meta if isinstance(meta, dict) else {}


def _load_torch(p: Path) -> tuple[dict, dict, dict]:
    import pickle

    import torch

    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise InputError(f"cannot read it as plain PyTorch weights ({first})", path=p,
                         fix="only weights-only files load (no pickled code); convert it to safetensors") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "params", "ema"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise InputError(f"holds a {type(obj).__name__}, not a dict of tensors", path=p)
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InputError("holds no tensors", path=p)
    return tensors, {}, {"format": "torch"}


def load_checkpoint(path: str | Path, model: str | None = None) -> tuple[dict, dict, dict[str, Any]]:
    """Load ``(state_dict, config, meta)``; with ``model`` given, refuse a checkpoint made for another model.

    ``.pt``/``.pth`` load weights-only (config ``{}``, no model check); anything else must be safetensors.
    """
    p = Path(path)
    if not p.exists() and p.suffix != ".safetensors" and checkpoint_paths(p)[0].exists():
        p = checkpoint_paths(p)[0]
    p = require_file(p, "checkpoint")
    if p.suffix.lower() in TORCH_SUFFIXES:
        return _load_torch(p)
    raw_meta = _safetensors_metadata(p)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(p), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"{_NOT_SAFETENSORS} or it is damaged ({e})", path=p,
                         fix="re-save or re-download the checkpoint") from None
    found = raw_meta.get("model")
    if model is not None and found is not None and found != model:
        raise InputError(f"checkpoint is for model {found}, not {model}", path=p, fix=f"pass a {model} checkpoint")
    config: dict = {}
    try:
        if "config" in raw_meta:
            config = json.loads(raw_meta["config"])
        elif checkpoint_paths(p)[1].exists():
            config = json.loads(checkpoint_paths(p)[1].read_text(encoding="utf-8")).get("config", {})
        extra = json.loads(raw_meta["extra"]) if "extra" in raw_meta else None
    except (json.JSONDecodeError, AttributeError):
        raise InputError("checkpoint config is not valid JSON", path=p, fix="re-save the checkpoint") from None
    meta: dict[str, Any] = {k: v for k, v in raw_meta.items() if k not in ("config", "extra")}
    meta["format"] = "safetensors"
    if extra is not None:
        meta["extra"] = extra
    return state, config, meta


SHIPPED_CHECKPOINTS = Path(__file__).resolve().parents[2] / "assets" / "checkpoints"


def default_checkpoint(name: str) -> Path:
    """Where the shipped checkpoint of model ``name`` lives: ``assets/checkpoints/<name>/<name>.safetensors``."""
    return SHIPPED_CHECKPOINTS / name / f"{name}.safetensors"


def build_from_checkpoint(name: str, cls, checkpoint: str | Path | None, train_script: str):
    """Model ``cls`` built from ``checkpoint`` (default: the shipped one for ``name``), weights loaded as float32.

    Refuses a missing file, a checkpoint of another model and one whose tensors do not fit the config.
    """
    path = Path(checkpoint) if checkpoint else default_checkpoint(name)
    if not path.is_file():
        raise InputError(f"no checkpoint for {name} at {path}",
                         fix=f"train one with `python {train_script} --model {name}` or pass --checkpoint")
    state, config, _ = load_checkpoint(path, model=name)
    model = cls.from_config(config)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    if missing or unexpected:
        raise InputError(f"checkpoint does not fit {name} (missing {len(missing)}, unexpected {len(unexpected)} "
                         "tensors)", path=path, fix=f"pass a checkpoint trained for this {name} config")
    return model
