"""vision3d: video and photos to 3D/4D content, and small models for phones."""

__version__ = "0.1.0"

from vision3d.errors import InputError, Vision3DError  # noqa: E402

__all__ = ["InputError", "Vision3DError", "__version__"]
