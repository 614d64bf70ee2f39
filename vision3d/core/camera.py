"""Pinhole cameras in the OpenCV convention (x right, y down, z forward), world-to-camera poses.

``Camera`` is one view; ``Cameras`` is a batch sharing one image size. Converters to the OpenGL /
Blender convention (x right, y up, z back) live here because every camera file format needs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision3d.errors import InputError

# Camera-frame axis flip between OpenCV (y down, z forward) and OpenGL (y up, z back).
_CV_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """A 3×3 pinhole intrinsics matrix in pixels."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def fov_to_focal(fov_rad: float, size_px: float) -> float:
    """Focal length in pixels for a field of view spanning ``size_px`` pixels."""
    if not 0 < fov_rad < np.pi:
        raise InputError(f"field of view {np.degrees(fov_rad):.3g} deg is outside (0, 180)")
    return 0.5 * size_px / np.tan(0.5 * fov_rad)


def focal_to_fov(focal_px: float, size_px: float) -> float:
    """Field of view in radians for a focal length in pixels."""
    return 2.0 * np.arctan(0.5 * size_px / focal_px)


def invert_pose(m: np.ndarray) -> np.ndarray:
    """Inverse of rigid 4×4 transform(s) ``(...,4,4)`` without a general matrix inverse."""
    m = np.asarray(m, dtype=np.float64)
    r = m[..., :3, :3]
    t = m[..., :3, 3]
    out = np.zeros_like(m)
    rt = np.swapaxes(r, -1, -2)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rt, t)
    out[..., 3, 3] = 1.0
    return out


def opengl_to_opencv(cam_to_world_gl: np.ndarray) -> np.ndarray:
    """Camera-to-world in OpenGL/Blender axes → camera-to-world in OpenCV axes."""
    return np.asarray(cam_to_world_gl, dtype=np.float64) @ _CV_GL


def opencv_to_opengl(cam_to_world_cv: np.ndarray) -> np.ndarray:
    """Camera-to-world in OpenCV axes → camera-to-world in OpenGL/Blender axes."""
    return np.asarray(cam_to_world_cv, dtype=np.float64) @ _CV_GL


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Unit quaternion(s) ``(...,4)`` in wxyz order → rotation matrices ``(...,3,3)``."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def rotmat_to_quat(r: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(...,3,3)`` → unit quaternions ``(...,4)`` wxyz with w ≥ 0."""
    r = np.asarray(r, dtype=np.float64)
    shape = r.shape[:-2]
    m = r.reshape(-1, 3, 3)
    # Shepperd's method: choose the largest of the four candidates for numerical stability.
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cand = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], -1)
    k = cand.argmax(-1)
    q = np.empty((m.shape[0], 4))
    s = np.sqrt(np.maximum(1.0 + 2.0 * cand[np.arange(len(k)), k] - tr, 1e-12)) * 2.0  # 4*|component|
    i0 = k == 0
    q[i0] = np.stack([0.25 * s[i0], (m[i0, 2, 1] - m[i0, 1, 2]) / s[i0], (m[i0, 0, 2] - m[i0, 2, 0]) / s[i0],
                      (m[i0, 1, 0] - m[i0, 0, 1]) / s[i0]], -1)
    i1 = k == 1
    q[i1] = np.stack([(m[i1, 2, 1] - m[i1, 1, 2]) / s[i1], 0.25 * s[i1], (m[i1, 0, 1] + m[i1, 1, 0]) / s[i1],
                      (m[i1, 0, 2] + m[i1, 2, 0]) / s[i1]], -1)
    i2 = k == 2
    q[i2] = np.stack([(m[i2, 0, 2] - m[i2, 2, 0]) / s[i2], (m[i2, 0, 1] + m[i2, 1, 0]) / s[i2], 0.25 * s[i2],
                      (m[i2, 1, 2] + m[i2, 2, 1]) / s[i2]], -1)
    i3 = k == 3
    q[i3] = np.stack([(m[i3, 1, 0] - m[i3, 0, 1]) / s[i3], (m[i3, 0, 2] + m[i3, 2, 0]) / s[i3],
                      (m[i3, 1, 2] + m[i3, 2, 1]) / s[i3], 0.25 * s[i3]], -1)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return q.reshape(*shape, 4)


def _check_finite(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise InputError(f"camera {name} contains NaN or inf", fix="check the pose/intrinsics source")


def resized_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics ``(…,3,3)`` for images resized by ``sx`` horizontally and ``sy`` vertically (pixel-centre aware:
    the centre of pixel 0 sits at 0 in both)."""
    K = np.array(K, dtype=np.float64)
    K[..., 0, :2] *= sx
    K[..., 1, :2] *= sy
    K[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx - 0.5
    K[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy - 0.5
    return K


@dataclass
class Cameras:
    """A batch of ``N`` pinhole cameras sharing one image size.

    ``K``: ``(N,3,3)`` intrinsics in pixels; ``world_to_cam``: ``(N,4,4)`` OpenCV-convention view matrices.
    """

    K: np.ndarray
    world_to_cam: np.ndarray
    width: int
    height: int
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64)
        self.world_to_cam = np.asarray(self.world_to_cam, dtype=np.float64)
        if self.K.ndim == 2:
            self.K = np.broadcast_to(self.K, (len(self.world_to_cam), 3, 3)).copy()
        if self.K.shape[-2:] != (3, 3) or self.world_to_cam.shape[-2:] != (4, 4):
            raise InputError(f"camera shapes K{self.K.shape} world_to_cam{self.world_to_cam.shape} are not (N,3,3)/(N,4,4)")
        if len(self.K) != len(self.world_to_cam):
            raise InputError(f"{len(self.K)} intrinsics but {len(self.world_to_cam)} poses")
        _check_finite("intrinsics", self.K)
        _check_finite("pose", self.world_to_cam)
        if np.any(self.K[:, 0, 0] <= 0) or np.any(self.K[:, 1, 1] <= 0):
            raise InputError("camera focal length must be positive", fix="give fx, fy > 0 (or a field of view)")
        self.width, self.height = int(self.width), int(self.height)
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"camera size {self.width}x{self.height} must be positive")
        if self.names and len(self.names) != len(self):
            raise InputError(f"{len(self.names)} names for {len(self)} cameras")

    def __len__(self) -> int:
        return len(self.world_to_cam)

    def __getitem__(self, i: int) -> Camera:
        name = self.names[i] if self.names else ""
        return Camera(self.K[i], self.world_to_cam[i], self.width, self.height, name)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def cam_to_world(self) -> np.ndarray:
        return invert_pose(self.world_to_cam)

    @property
    def centers(self) -> np.ndarray:
        """Camera centres in world coordinates, ``(N,3)``."""
        return self.cam_to_world[:, :3, 3]

    @classmethod
    def from_cam_to_world(cls, K, cam_to_world, width, height, names=None, opengl: bool = False) -> Cameras:
        c2w = np.asarray(cam_to_world, dtype=np.float64)
        if opengl:
            c2w = opengl_to_opencv(c2w)
        return cls(K, invert_pose(c2w), width, height, list(names or []))

    @classmethod
    def stack(cls, cams: list[Camera]) -> Cameras:
        if not cams:
            raise InputError("no cameras given")
        w, h = cams[0].width, cams[0].height
        if any((c.width, c.height) != (w, h) for c in cams):
            raise InputError("cameras have different image sizes; group them by size first")
        return cls(np.stack([c.K for c in cams]), np.stack([c.world_to_cam for c in cams]), w, h,
                   [c.name for c in cams] if any(c.name for c in cams) else [])

    def cam_to_world_opengl(self) -> np.ndarray:
        return opencv_to_opengl(self.cam_to_world)

    def scaled(self, factor: float) -> Cameras:
        """The same cameras for images resized by ``factor`` (pixel-centre aware)."""
        K = resized_intrinsics(self.K, factor, factor)
        return Cameras(K, self.world_to_cam.copy(), round(self.width * factor), round(self.height * factor),
                       list(self.names))

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(M,3)`` → pixels ``(N,M,2)`` and depths ``(N,M)`` in every camera."""
        p = np.asarray(points, dtype=np.float64)
        pc = np.einsum("nij,mj->nmi", self.world_to_cam[:, :3, :3], p) + self.world_to_cam[:, None, :3, 3]
        z = pc[..., 2]
        uvw = np.einsum("nij,nmj->nmi", self.K, pc)
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[..., :2] / uvw[..., 2:3]
        return uv, z

    def unproject(self, i: int, pixels: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Pixels ``(M,2)`` with z-depths ``(M,)`` in camera ``i`` → world points ``(M,3)``."""
        px = np.asarray(pixels, dtype=np.float64)
        rays = np.linalg.solve(self.K[i], np.c_[px, np.ones(len(px))].T).T
        pc = rays * np.asarray(depth, dtype=np.float64)[:, None]
        c2w = invert_pose(self.world_to_cam[i])
        return pc @ c2w[:3, :3].T + c2w[:3, 3]

    def to_torch(self, device=None, dtype=None):
        """``(K, world_to_cam)`` as torch tensors, the layout gsplat's ``rasterization()`` takes."""
        import torch

        dtype = dtype or torch.float32
        return (torch.as_tensor(self.K, dtype=dtype, device=device),
                torch.as_tensor(self.world_to_cam, dtype=dtype, device=device))


@dataclass
class Camera:
    """One pinhole camera: ``K`` (3,3) pixels, ``world_to_cam`` (4,4) OpenCV convention, image size."""

    K: np.ndarray
    world_to_cam: np.ndarray
    width: int
    height: int
    name: str = ""

    def __post_init__(self) -> None:
        batch = Cameras(np.asarray(self.K)[None], np.asarray(self.world_to_cam)[None], self.width, self.height)
        self.K, self.world_to_cam = batch.K[0], batch.world_to_cam[0]
        self.width, self.height = batch.width, batch.height

    @property
    def cam_to_world(self) -> np.ndarray:
        return invert_pose(self.world_to_cam)

    @property
    def center(self) -> np.ndarray:
        return self.cam_to_world[:3, 3]

    @property
    def fov_x(self) -> float:
        return focal_to_fov(self.K[0, 0], self.width)

    @property
    def fov_y(self) -> float:
        return focal_to_fov(self.K[1, 1], self.height)

    def as_batch(self) -> Cameras:
        return Cameras(self.K[None], self.world_to_cam[None], self.width, self.height,
                       [self.name] if self.name else [])

    @classmethod
    def from_fov(cls, fov_x_rad: float, width: int, height: int, world_to_cam=None, name: str = "") -> Camera:
        f = fov_to_focal(fov_x_rad, width)
        w2c = np.eye(4) if world_to_cam is None else world_to_cam
        return cls(intrinsics(f, f, (width - 1) / 2, (height - 1) / 2), w2c, width, height, name)


def look_at(eye, target, up=(0.0, -1.0, 0.0)) -> np.ndarray:
    """World-to-camera (OpenCV) for a camera at ``eye`` looking at ``target``; ``up`` is world 'up' (−y default)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(-up, z)  # OpenCV: y points down, so 'down' = -up
    if np.linalg.norm(x) < 1e-9:
        raise InputError("look_at: viewing direction is parallel to the up vector")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([x, y, z], 1)
    c2w[:3, 3] = eye
    return invert_pose(c2w)
