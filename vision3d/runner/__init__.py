"""Staged pipeline runner: hashing, resume, ``--force``, atomic stage folders, ``manifest.json``."""

from vision3d.runner.manifest import load_manifest
from vision3d.runner.runner import ProgressEvent, Runner, RunResult, Stage, StageContext

__all__ = ["ProgressEvent", "RunResult", "Runner", "Stage", "StageContext", "load_manifest"]
