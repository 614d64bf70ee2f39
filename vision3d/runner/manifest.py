"""``manifest.json`` of a run folder: inputs, configs, versions, per-stage hashes, timings and metrics."""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

from vision3d.io.atomic import write_json

MANIFEST = "manifest.json"


def library_versions() -> dict:
    """Versions of the libraries a result depends on (recorded so runs can be reproduced)."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("vision3d", "torch", "numpy", "av", "opencv-python-headless", "kornia", "gsplat"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def config_dict(config) -> dict:
    """A stage config (dataclass, dict or None) as plain JSON-able data."""
    if config is None:
        return {}
    if is_dataclass(config):
        return json.loads(json.dumps(asdict(config), default=str))
    if isinstance(config, dict):
        return json.loads(json.dumps(config, default=str))
    raise TypeError(f"stage config must be a dataclass or dict, not {type(config).__name__}")


def file_digest(path: Path, cache: dict | None = None) -> str:
    """sha256 of a file's content (or of a folder's files), reusing ``cache`` when size and mtime match."""
    path = Path(path)
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            h.update(str(p.relative_to(path)).encode())
            h.update(file_digest(p, cache).encode())
        return h.hexdigest()
    st = path.stat()
    key = str(path.resolve())
    stamp = [st.st_size, st.st_mtime_ns]
    if cache is not None and key in cache and cache[key][:2] == stamp:
        return cache[key][2]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if cache is not None:
        cache[key] = [*stamp, digest]
    return digest


class Manifest:
    """The run's record, rewritten atomically after every change so a killed run stays consistent."""

    def __init__(self, run_dir: Path, job: str):
        self.path = Path(run_dir) / MANIFEST
        if self.path.exists():
            self.data = json.loads(self.path.read_text())
        else:
            self.data = {"job": job, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "inputs": {}, "stages": {},
                         "metrics": {}, "_digests": {}}
        self.data["job"] = job
        self.data["versions"] = library_versions()

    @property
    def stages(self) -> dict:
        return self.data["stages"]

    @property
    def digest_cache(self) -> dict:
        return self.data.setdefault("_digests", {})

    def save(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json(self.path, self.data)


def load_manifest(run_dir: str | Path) -> dict:
    """The manifest of a run folder as a dict (raises ``InputError`` when the folder is not a run)."""
    from vision3d.errors import InputError

    p = Path(run_dir) / MANIFEST
    if not p.is_file():
        raise InputError("is not a vision3d run folder (no manifest.json)", path=run_dir)
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"manifest.json is corrupt ({e})", path=p, fix="re-run the job") from e
