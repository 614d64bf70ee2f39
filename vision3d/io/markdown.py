"""Rewrite one generated block of a Markdown file (between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``)."""

from __future__ import annotations

import re
from pathlib import Path

from vision3d.io.atomic import write_text


def replace_marked_block(path: str | Path, name: str, block: str, heading: str | None = None) -> Path:
    """Replace the block called ``name`` in ``path`` (atomically), or append it (under ``heading``) if absent."""
    p = Path(path)
    text = p.read_text(encoding="utf-8") if p.exists() else ""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _m: f"{start}\n{block}\n{end}", text,
                      flags=re.S)
    else:
        text += (f"\n{heading}\n" if heading else "") + f"\n{start}\n{block}\n{end}\n"
    return write_text(p, text)
