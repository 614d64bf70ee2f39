"""Gaussian rasterization behind one call: ``rasterize()`` with the gsplat (CUDA) and torch backends."""

from vision3d.render.api import BACKENDS, RenderOutput, activated, pick_backend, rasterize

__all__ = ["BACKENDS", "RenderOutput", "activated", "pick_backend", "rasterize"]
