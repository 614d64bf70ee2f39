"""Each module adds its commands to ``vision3d.cli.main.app`` on import."""

from vision3d.cli.commands import demo, depth, evaluate, files, flow, info, scene, splats, synth  # noqa: F401
from vision3d.cli.commands import export, view  # noqa: F401,E402
