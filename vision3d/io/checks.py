"""Shared checks for file readers and writers: the file exists, the suffix is one we support."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vision3d.errors import InputError


def require_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, raising ``InputError`` naming it if it is missing or not a file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} not found", path=p, fix="check the path and spelling")
    if not p.is_file():
        raise InputError(f"{what} is a folder, not a file", path=p, fix="give the path of the file itself")
    return p


def require_dir(path: str | Path, what: str = "folder") -> Path:
    """Return ``path`` as a Path, raising ``InputError`` naming it if it is not an existing folder."""
    p = Path(path)
    if not p.is_dir():
        msg = f"{what} not found" if not p.exists() else f"{what} is a file, not a folder"
        raise InputError(msg, path=p, fix="give the path of the folder")
    return p


def suffix_of(path: str | Path, supported: Iterable[str], what: str) -> str:
    """Lower-case suffix of ``path``; ``InputError`` listing the supported ones if it is not among them."""
    suffix = Path(path).suffix.lower()
    supported = tuple(supported)
    if suffix not in supported:
        shown = suffix or "no suffix"
        raise InputError(f"unsupported {what} format ({shown})", path=path,
                         fix=f"use one of {', '.join(supported)}")
    return suffix


def corrupt(path: str | Path, what: str, detail: str, fix: str | None = None) -> InputError:
    """An ``InputError`` for a file whose content is not a valid ``what`` (to ``raise`` at the call site)."""
    return InputError(f"corrupt {what}: {detail}", path=path, fix=fix or f"re-export or re-download the {what}")
