"""3D Gaussians in the 3DGS parameterisation (gsplat's semantics).

``means (N,3)``, ``quats (N,4)`` wxyz (unnormalised allowed), ``log_scales (N,3)``, ``opacity_logits (N,)``
and either RGB ``colors (N,3)`` in [0,1] or spherical-harmonic coefficients ``sh (N,K,3)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from vision3d.errors import InputError

SH_C0 = 0.28209479177387814  # the degree-0 SH basis constant (3DGS stores colour as f_dc = (rgb-0.5)/C0)


def rgb_to_sh0(rgb: np.ndarray) -> np.ndarray:
    return (np.asarray(rgb) - 0.5) / SH_C0


def sh0_to_rgb(sh0: np.ndarray) -> np.ndarray:
    return np.asarray(sh0) * SH_C0 + 0.5


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p / (1 - p))


@dataclass
class Gaussians:
    """A set of 3D Gaussians; arrays are numpy float32 (use ``to_torch`` for optimisation/rendering)."""

    means: np.ndarray
    quats: np.ndarray
    log_scales: np.ndarray
    opacity_logits: np.ndarray
    colors: np.ndarray | None = None
    sh: np.ndarray | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                setattr(self, f.name, np.asarray(v, dtype=np.float32))
        n = len(self.means)
        expect = {"means": (n, 3), "quats": (n, 4), "log_scales": (n, 3), "opacity_logits": (n,)}
        for name, shape in expect.items():
            if getattr(self, name).shape != shape:
                raise InputError(f"Gaussians.{name} has shape {getattr(self, name).shape}, expected {shape}")
        if (self.colors is None) == (self.sh is None):
            raise InputError("Gaussians need exactly one of colors (N,3) or sh (N,K,3)")
        if self.colors is not None and self.colors.shape != (n, 3):
            raise InputError(f"Gaussians.colors has shape {self.colors.shape}, expected ({n}, 3)")
        if self.sh is not None:
            k = self.sh.shape[1] if self.sh.ndim == 3 else -1
            if self.sh.ndim != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3 or round(np.sqrt(k)) ** 2 != k:
                raise InputError(f"Gaussians.sh has shape {self.sh.shape}, expected ({n}, (d+1)^2, 3)")

    def __len__(self) -> int:
        return len(self.means)

    @property
    def sh_degree(self) -> int:
        return 0 if self.sh is None else round(np.sqrt(self.sh.shape[1])) - 1

    @property
    def rgb(self) -> np.ndarray:
        """Base colour (view-independent part) in [0,1]."""
        return self.colors if self.colors is not None else np.clip(sh0_to_rgb(self.sh[:, 0]), 0, 1)

    @property
    def opacities(self) -> np.ndarray:
        return sigmoid(self.opacity_logits).astype(np.float32)

    @property
    def scales(self) -> np.ndarray:
        return np.exp(self.log_scales)

    def finite_mask(self) -> np.ndarray:
        """Gaussians whose every parameter is finite (NaNs from a diverged optimisation are dropped by callers)."""
        ok = np.ones(len(self), bool)
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                ok &= np.isfinite(v.reshape(len(self), -1)).all(1)
        return ok & (np.linalg.norm(self.quats, axis=1) > 0)

    def subset(self, index) -> Gaussians:
        return Gaussians(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                            for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[Gaussians]) -> Gaussians:
        if not parts:
            raise InputError("nothing to concatenate")
        if len({p.colors is None for p in parts}) != 1:
            raise InputError("cannot concatenate RGB and SH Gaussians")
        return cls(**{f.name: None if getattr(parts[0], f.name) is None
                      else np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    @classmethod
    def from_points(cls, points, colors, scale: float | np.ndarray = 0.01, opacity: float = 0.5) -> Gaussians:
        """Isotropic Gaussians at ``points`` with the given RGB colours (a common initialisation)."""
        points = np.asarray(points, dtype=np.float32)
        n = len(points)
        s = np.broadcast_to(np.asarray(scale, dtype=np.float32).reshape(-1, 1), (n, 3)) if np.ndim(scale) else \
            np.full((n, 3), scale, np.float32)
        q = np.zeros((n, 4), np.float32)
        q[:, 0] = 1
        return cls(points, q, np.log(np.maximum(s, 1e-12)), np.full(n, logit(opacity), np.float32),
                   colors=np.asarray(colors, np.float32))

    def covariances(self) -> np.ndarray:
        """World-space covariance matrices ``(N,3,3)`` = R S Sᵀ Rᵀ."""
        from vision3d.core.camera import quat_to_rotmat

        r = quat_to_rotmat(self.quats)
        m = r * self.scales[:, None, :]
        return m @ np.swapaxes(m, 1, 2)

    def to_torch(self, device=None, requires_grad: bool = False) -> dict:
        """A dict of float32 tensors keyed like the fields (for optimisers and ``rasterize``)."""
        import torch

        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = torch.tensor(v, dtype=torch.float32, device=device, requires_grad=requires_grad)
        return out

    @classmethod
    def from_torch(cls, params: dict) -> Gaussians:
        return cls(**{k: v.detach().cpu().numpy() for k, v in params.items() if v is not None})
