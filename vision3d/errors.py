"""Exceptions the library raises; the CLI turns ``InputError`` into one line and exit code 2."""

from __future__ import annotations

from pathlib import Path


class Vision3DError(Exception):
    """Base class of every error vision3d raises on purpose."""


class InputError(Vision3DError, ValueError):
    """Something the user gave us is wrong; the message says what and how to fix it.

    ``path`` names the offending file (if any) so the one-line message can lead with it.
    """

    def __init__(self, message: str, path: str | Path | None = None, fix: str | None = None):
        self.path = None if path is None else Path(path)
        self.fix = fix
        text = message if path is None else f"{path}: {message}"
        if fix:
            text = f"{text} ({fix})"
        super().__init__(text)


def require(condition: bool, message: str, path: str | Path | None = None, fix: str | None = None) -> None:
    """Raise ``InputError`` unless ``condition`` holds."""
    if not condition:
        raise InputError(message, path=path, fix=fix)
