"""GFlow (AAAI'25): a video as a 4D scene of still and moving 3D Gaussians with per-frame camera poses.

``config`` (presets), ``init`` (texture-sampled initialisation), ``prior`` (depth prior → depth aligned with the
scene), ``split`` (still/moving masks from epipolar error), ``intrinsics`` (focal estimation), ``pose``
(camera parametrisation), ``optimize`` (the per-frame camera and Gaussian steps), ``scene`` (the 4D scene file).
"""

from vision3d.scene4d.config import GFlowConfig
from vision3d.scene4d.scene import Scene4D

__all__ = ["GFlowConfig", "Scene4D"]
