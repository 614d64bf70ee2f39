"""Shared fixtures: where the real data lives, a scratch folder, the CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("VISION3D_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (or ``$VISION3D_DATA``); tests that need it skip with a reason when absent."""
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"real data folder {d} not found (set VISION3D_DATA)")
    return d


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip, with the reason, where torch sees no CUDA GPU."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
