"""``python -m vision3d.cli`` is ``v3d``."""

from vision3d.cli.main import entry

entry()
