"""Resumable training state: model, optimiser, schedule, step and history in one atomically written file."""

from __future__ import annotations

from pathlib import Path

import torch

from vision3d.io.atomic import atomic_path


def save_train_state(path: str | Path, model, opt, sched, step: int, history: list) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "step": step, "history": history}, tmp)


def load_train_state(path: str | Path, model, opt, sched) -> tuple[int, list]:
    """Restore in place and return ``(step, history)``; ``(0, [])`` when there is no state file."""
    if not Path(path).is_file():
        return 0, []
    st = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["opt"])
    sched.load_state_dict(st["sched"])
    return st["step"], st["history"]
