"""Smooth rigid motion of a camera or a layer, defined for any real time ``t`` (in frames)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision3d.errors import InputError


def so3_exp(w) -> np.ndarray:
    """Rotation matrix for the axis-angle vector ``w`` (Rodrigues; exact near zero)."""
    w = np.asarray(w, dtype=np.float64)
    theta = float(np.linalg.norm(w))
    k = np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])
    if theta < 1e-8:
        return np.eye(3) + k + 0.5 * k @ k
    return np.eye(3) + np.sin(theta) / theta * k + (1 - np.cos(theta)) / theta**2 * k @ k


_EYE3 = np.eye(3)


def _det3(r: np.ndarray) -> float:
    (a, b, c), (d, e, f), (g, h, i) = r.tolist()
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def _vec3(name: str, v) -> np.ndarray:
    a = np.zeros(3) if v is None else np.array(v, dtype=np.float64).reshape(-1)
    if a.shape != (3,) or not np.isfinite(a).all():
        raise InputError(f"motion {name} must be 3 finite numbers, got {v!r}")
    return a


@dataclass
class RigidMotion:
    """Local-to-world pose over time, rotating about the local origin:

    ``R(t) = Exp(omega t + alpha t²/2) R0`` and ``p(t) = p0 + velocity t + accel t²/2``, where ``pose0 = [R0|p0]``.
    Angular terms are world-frame axis-angle vectors in radians per frame; linear terms are in world units.
    """

    pose0: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    accel: np.ndarray = field(default_factory=lambda: np.zeros(3))
    omega: np.ndarray = field(default_factory=lambda: np.zeros(3))
    alpha: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        p = np.asarray(self.pose0, dtype=np.float64)
        if p.shape != (4, 4) or not np.all(np.isfinite(p)):
            raise InputError(f"motion pose0 must be a finite 4x4 matrix, got shape {p.shape}")
        r = p[:3, :3]
        if float(np.abs(r.T @ r - _EYE3).max()) > 1e-6 or _det3(r) < 0:
            raise InputError("motion pose0 rotation is not a proper rotation matrix")
        self.pose0 = p
        self.velocity, self.accel = _vec3("velocity", self.velocity), _vec3("accel", self.accel)
        self.omega, self.alpha = _vec3("omega", self.omega), _vec3("alpha", self.alpha)

    @property
    def is_static(self) -> bool:
        return not (self.velocity.any() or self.accel.any() or self.omega.any() or self.alpha.any())

    def pose(self, t: float) -> np.ndarray:
        """Local-to-world 4×4 at time ``t`` (frames; fractional times are allowed)."""
        t = float(t)
        out = self.pose0.copy()
        if self.is_static:
            return out
        out[:3, :3] = so3_exp(self.omega * t + 0.5 * self.alpha * t * t) @ self.pose0[:3, :3]
        out[:3, 3] = self.pose0[:3, 3] + self.velocity * t + 0.5 * self.accel * t * t
        return out

    def poses(self, n: int) -> np.ndarray:
        """Poses at frames ``0..n-1``, ``(n,4,4)``."""
        return np.stack([self.pose(t) for t in range(n)])

    @classmethod
    def static(cls, pose) -> RigidMotion:
        return cls(np.asarray(pose, dtype=np.float64))
