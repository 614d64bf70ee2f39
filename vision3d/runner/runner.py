"""The staged pipeline runner: ordered stages, content hashing, resume, ``--force``, atomic stage folders.

A stage's key hashes its name, version, config (and what it resolves to), the content of its user input files
and the keys of the stages it depends on. A stage whose folder exists with a matching key in the manifest is
skipped, so re-running a job resumes where it stopped. Each stage writes into a temporary folder that is
renamed to ``run_dir/<stage>`` only when the stage succeeds; ``ctx.scratch`` survives a killed run for per-item
checkpoints and is removed once the stage completes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from vision3d.errors import InputError
from vision3d.io.atomic import atomic_dir
from vision3d.runner.manifest import Manifest, config_dict, file_digest


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report: ``stage`` advanced to ``done`` of ``total`` (``total`` None if unknown)."""

    stage: str
    done: int
    total: int | None
    message: str = ""
    kind: str = "progress"  # "start" | "progress" | "skip" | "done" | "log"


ProgressFn = Callable[[ProgressEvent], None]


@dataclass
class Stage:
    """One step of a job.

    ``fn(ctx)`` does the work, writes files under ``ctx.out`` and returns a dict of metrics (or None).
    ``deps`` are earlier stages whose folders it reads (``ctx.dep(name)``); ``files`` names the user
    inputs (keys of the job's ``inputs``) whose content it depends on; ``outputs`` are paths relative to
    its folder that must exist after it runs. Bump ``version`` when the stage's algorithm changes.
    ``resolved``: what ``config`` stands for once the code fills it in (a preset's values), hashed into the key
    too, so a run folder recomputes when a release changes those values.
    """

    name: str
    fn: Callable[[StageContext], dict | None]
    config: Any = None
    deps: Sequence[str] = ()
    files: Sequence[str] = ()
    outputs: Sequence[str] = ()
    version: int = 1
    resolved: Any = None


@dataclass
class StageContext:
    """What a running stage sees: its output folder, its config, its inputs, a progress reporter."""

    name: str
    out: Path
    scratch: Path
    run_dir: Path
    config: Any
    inputs: dict[str, Path]
    _progress: ProgressFn | None = None
    metrics: dict = field(default_factory=dict)

    def dep(self, stage: str) -> Path:
        """The finished folder of an earlier stage."""
        return self.run_dir / stage

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        if self._progress:
            self._progress(ProgressEvent(self.name, done, total, message))

    def log(self, message: str) -> None:
        if self._progress:
            self._progress(ProgressEvent(self.name, 0, None, message, kind="log"))


@dataclass
class RunResult:
    run_dir: Path
    ran: list[str]
    skipped: list[str]
    manifest: dict


class Runner:
    """Runs a job's stages in a run folder, skipping those whose outputs are current."""

    def __init__(self, run_dir: str | Path, job: str, progress: ProgressFn | None = None):
        self.run_dir = Path(run_dir)
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise InputError("output path exists and is not a folder", path=self.run_dir,
                             fix="choose another -o path")
        self.job = job
        self.progress = progress

    def _emit(self, stage: str, kind: str, message: str = "") -> None:
        if self.progress:
            self.progress(ProgressEvent(stage, 0, None, message, kind=kind))

    def run(self, stages: Sequence[Stage], inputs: dict[str, str | Path] | None = None,
            force: str | Sequence[str] | None = None, extra: dict | None = None) -> RunResult:
        """Run ``stages`` in order. ``force``: a stage name (recompute it and all after it), a list, or 'all'."""
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate stage names in {names}")
        forced = self._forced(names, force)
        inputs = {k: Path(v) for k, v in (inputs or {}).items()}
        for k, p in inputs.items():
            if not p.exists():
                raise InputError("input does not exist", path=p, fix="check the path")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        man = Manifest(self.run_dir, self.job)
        if extra:
            man.data.update(extra)
        digests = {}
        for k, p in inputs.items():
            digests[k] = file_digest(p, man.digest_cache)
            man.data["inputs"][k] = {"path": str(p), "sha256": digests[k]}
        keys: dict[str, str] = {}
        ran, skipped = [], []
        for st in stages:
            unknown = [d for d in st.deps if d not in keys]
            if unknown:
                raise ValueError(f"stage {st.name} depends on {unknown}, which do not run before it")
            missing = [f for f in st.files if f not in inputs]
            if missing:
                raise ValueError(f"stage {st.name} needs inputs {missing}")
            cfg = config_dict(st.config)
            key_src = {"stage": st.name, "version": st.version, "config": cfg,
                       "files": {f: digests[f] for f in st.files}, "deps": {d: keys[d] for d in st.deps}}
            if st.resolved is not None:
                key_src["resolved"] = config_dict(st.resolved)
            key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:16]
            keys[st.name] = key
            rec = man.stages.get(st.name, {})
            out_dir = self.run_dir / st.name
            if (st.name not in forced and rec.get("status") == "done" and rec.get("key") == key
                    and out_dir.is_dir() and all((out_dir / o).exists() for o in st.outputs)):
                skipped.append(st.name)
                self._emit(st.name, "skip", "up to date")
                continue
            self._run_stage(st, key, cfg, man, inputs)
            ran.append(st.name)
        man.save()
        return RunResult(self.run_dir, ran, skipped, man.data)

    @staticmethod
    def _forced(names: list[str], force) -> set[str]:
        if force is None:
            return set()
        if force == "all":
            return set(names)
        wanted = [force] if isinstance(force, str) else list(force)
        bad = [f for f in wanted if f not in names]
        if bad:
            raise InputError(f"--force names unknown stage(s) {bad}", fix=f"stages are: {', '.join(names)}")
        first = min(names.index(f) for f in wanted)
        return set(names[first:])

    def _run_stage(self, st: Stage, key: str, cfg: dict, man: Manifest, inputs: dict[str, Path]) -> None:
        scratch = self.run_dir / ".partial" / st.name
        rec = man.stages.get(st.name, {})
        if rec.get("key") != key:  # partial work from another config is useless
            shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True, exist_ok=True)
        man.stages[st.name] = {"key": key, "status": "running", "version": st.version, "config": cfg,
                               "deps": list(st.deps), "files": list(st.files),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        man.save()
        self._emit(st.name, "start")
        t0 = time.perf_counter()
        try:
            with atomic_dir(self.run_dir / st.name) as tmp:
                ctx = StageContext(st.name, tmp, scratch, self.run_dir, st.config, inputs, self.progress)
                metrics = st.fn(ctx) or {}
                missing = [o for o in st.outputs if not (tmp / o).exists()]
                if missing:
                    raise RuntimeError(f"stage {st.name} did not write {missing}")
        except BaseException as e:
            man.stages[st.name].update(status="failed", seconds=round(time.perf_counter() - t0, 3),
                                       error=f"{type(e).__name__}: {e}")
            man.save()
            raise
        metrics = {**ctx.metrics, **metrics}
        man.stages[st.name].update(status="done", seconds=round(time.perf_counter() - t0, 3),
                                   outputs=sorted(str(p.relative_to(self.run_dir / st.name))
                                                  for p in (self.run_dir / st.name).rglob("*") if p.is_file()),
                                   metrics=metrics)
        for k, v in metrics.items():
            man.data["metrics"][f"{st.name}.{k}"] = v
        man.save()
        shutil.rmtree(scratch, ignore_errors=True)
        partial = self.run_dir / ".partial"
        if partial.is_dir() and not any(partial.iterdir()):
            partial.rmdir()
        self._emit(st.name, "done", f"{time.perf_counter() - t0:.1f}s")
