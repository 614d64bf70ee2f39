"""Staged pipeline runner: hashing, resume, ``--force``, atomic stage folders, ``manifest.json``."""

from vision3d.runner.manifest import load_manifest
from vision3d.runner.runner import ProgressEvent, ProgressFn, Runner, RunResult, Stage, StageContext

__all__ = ["ProgressEvent", "ProgressFn", "RunResult", "Runner", "Stage", "StageContext", "load_manifest"]
