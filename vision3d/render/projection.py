"""EWA projection of 3D Gaussians to the image plane, in PyTorch, with gsplat's exact conventions.

Every step mirrors gsplat's fused projection so that the torch backend and gsplat agree: the Jacobian of
the pinhole projection is evaluated at the mean clamped to 1.3× the field of view, a 0.3 px² low-pass is
added to the 2D covariance, and the screen-space bounding box uses the opacity-aware extent
``min(3.33, sqrt(2 ln(opacity / (1/255))))`` so that no pixel outside it can reach the alpha threshold.
K and the returned 2D means use the project's convention (pixel ``(i, j)`` centred at ``(j, i)``);
gsplat puts pixel centres at ``+0.5``, so its principal point is ours + 0.5, which the clamp uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ALPHA_THRESHOLD = 1.0 / 255.0
MAX_EXTEND = 3.33


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """``(...,4)`` wxyz quaternions (any norm) → ``(...,3,3)`` rotation matrices."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], -1).reshape(q.shape[:-1] + (3, 3))


def covariances(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """World covariances ``R S Sᵀ Rᵀ``, ``(N,3,3)``."""
    m = quat_to_rotmat(quats) * scales[..., None, :]
    return m @ m.transpose(-1, -2)


@dataclass
class Projected:
    """Per camera × Gaussian screen-space data (``C`` cameras, ``N`` Gaussians)."""

    means2d: torch.Tensor  # (C,N,2) pixels, integer pixel centres
    conics: torch.Tensor  # (C,N,3) inverse 2D covariance (a, b, c) of [[a, b], [b, c]]
    depths: torch.Tensor  # (C,N) camera-space z
    radii: torch.Tensor  # (C,N,2) int32 half-extent of the screen box; 0 = culled
    opacities: torch.Tensor  # (C,N)

    @property
    def visible(self) -> torch.Tensor:
        return (self.radii > 0).all(-1)


def project_gaussians(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                      viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int, near: float = 0.01,
                      far: float = 1e10, eps2d: float = 0.3, radius_clip: float = 0.0) -> Projected:
    """Project ``N`` Gaussians into ``C`` cameras (``viewmats`` world→camera ``(C,4,4)``, ``Ks`` ``(C,3,3)``)."""
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]
    pc = (R[:, None] * means[None, :, None, :]).sum(-1) + t[:, None, :]  # (C,N,3), no tiny-matrix bmm
    x, y, z = pc.unbind(-1)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    gx, gy = cx + 0.5, cy + 0.5  # gsplat's principal point
    z_safe = torch.where(z.abs() > 1e-12, z, torch.full_like(z, 1e-12))
    rz = 1.0 / z_safe
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    tx = z * torch.minimum((width - gx) / fx + 0.3 * tan_x, torch.maximum(-(gx / fx + 0.3 * tan_x), x * rz))
    ty = z * torch.minimum((height - gy) / fy + 0.3 * tan_y, torch.maximum(-(gy / fy + 0.3 * tan_y), y * rz))
    # T = J · R_cam · (R_g S): the 2×3 factor of the 2D covariance, cov2d = T Tᵀ
    m = quat_to_rotmat(quats) * scales[..., None, :]  # (N,3,3)
    rm = (R[:, None, :, :, None] * m[None, :, None, :, :]).sum(-2)  # (C,N,3,3) = R_cam @ m
    j0 = (fx * rz)[..., None] * rm[..., 0, :] - (fx * tx * rz * rz)[..., None] * rm[..., 2, :]
    j1 = (fy * rz)[..., None] * rm[..., 1, :] - (fy * ty * rz * rz)[..., None] * rm[..., 2, :]
    cov00, cov01, cov11 = (j0 * j0).sum(-1), (j0 * j1).sum(-1), (j1 * j1).sum(-1)
    a = cov00 + eps2d
    b = cov01
    c = cov11 + eps2d
    det = a * c - b * b
    det_ok = det > 0
    det_safe = torch.where(det_ok, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], -1)
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], -1)
    op = opacities[None].expand_as(z)
    with torch.no_grad():
        extend = torch.sqrt(2.0 * torch.log((op / ALPHA_THRESHOLD).clamp_min(1.0))).clamp_max(MAX_EXTEND)
        rx = torch.ceil(extend * a.clamp_min(0).sqrt())
        ry = torch.ceil(extend * c.clamp_min(0).sqrt())
        mx, my = means2d[..., 0] + 0.5, means2d[..., 1] + 0.5
        keep = ((z >= near) & (z <= far) & det_ok & (op >= ALPHA_THRESHOLD)
                & ~((rx <= radius_clip) & (ry <= radius_clip))
                & (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
                & torch.isfinite(mx) & torch.isfinite(my))
        radii = torch.stack([rx, ry], -1).nan_to_num(0.0).clamp(0, 1 << 20).to(torch.int32) * keep[..., None]
    return Projected(means2d, conics, z, radii, op)


def project_points(points: torch.Tensor, viewmats: torch.Tensor, Ks: torch.Tensor) -> torch.Tensor:
    """Pinhole projection of ``(N,3)`` world points into ``C`` cameras → ``(C,N,2)`` pixels."""
    pc = torch.einsum("cij,nj->cni", viewmats[:, :3, :3], points) + viewmats[:, None, :3, 3]
    z = pc[..., 2:3]
    z = torch.where(z.abs() > 1e-12, z, torch.full_like(z, 1e-12))
    return torch.einsum("cij,cnj->cni", Ks[:, :2, :2], pc[..., :2] / z) + Ks[:, None, :2, 2]
