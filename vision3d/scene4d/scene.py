"""``Scene4D``: the result of GFlow in one compact file (``scene4d.npz``): still Gaussians once, the per-frame
states of the moving ones, the cameras. ``gaussians_at(t)`` gives the 3D Gaussians of frame ``t``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision3d.core.camera import Cameras
from vision3d.core.gaussians import Gaussians
from vision3d.errors import InputError

DYNAMIC = ("means", "quats", "log_scales", "opacity_logits", "colors")
FORMAT = "vision3d-scene4d/1"


@dataclass
class Scene4D:
    """``params``: final raw parameters of every Gaussian ``(N,…)`` (RGB colours); ``moving``/``birth`` ``(N,)``;
    ``dynamic[k]``: ``(T, M, …)`` per-frame values (position, rotation, scale, opacity, colour) of the ``M`` moving
    Gaussians (rows follow
    ``moving_index``, NaN before a Gaussian is born); ``K``, ``width``, ``height``, ``world_to_cam (T,4,4)``;
    ``still_colors``/``still_opacity``: optional ``(T, S, 3)``/``(T, S)`` per-frame colours and opacity logits of
    the ``S`` still Gaussians (rows follow ``still_index``; NaN where not recorded; float16) when the solver let
    their appearance change from frame to frame;
    ``death``: optional ``(N,)`` frame from which a Gaussian is no longer part of the scene (it left the view and
    was retired; −1: never)."""

    params: dict[str, np.ndarray]
    moving: np.ndarray
    birth: np.ndarray
    dynamic: dict[str, np.ndarray]
    K: np.ndarray
    width: int
    height: int
    world_to_cam: np.ndarray
    still_colors: np.ndarray | None = None
    death: np.ndarray | None = None
    still_opacity: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return len(self.world_to_cam)

    @property
    def moving_index(self) -> np.ndarray:
        return np.nonzero(self.moving)[0]

    @property
    def still_index(self) -> np.ndarray:
        return np.nonzero(~self.moving)[0]

    def moving_alive(self, t: int) -> np.ndarray:
        """``(M,)`` which moving Gaussians exist at frame ``t``."""
        m = len(self.moving_index)
        return np.isfinite(self.dynamic["means"][t].reshape(m, 3)).all(1) if m else np.zeros(0, bool)

    @property
    def cameras(self) -> Cameras:
        T = self.n_frames
        return Cameras(K=np.repeat(self.K[None], T, 0), world_to_cam=self.world_to_cam.copy(), width=self.width,
                       height=self.height, names=[f"{i:05d}" for i in range(T)])

    def _check_frame(self, t: int) -> int:
        if not -self.n_frames <= t < self.n_frames:
            raise InputError(f"frame {t} is out of range: the scene has {self.n_frames} frames (0..{self.n_frames - 1})")
        return t % self.n_frames

    def gaussians_at(self, t: int, born_by_t: bool = True) -> Gaussians:
        """Still Gaussians (born by frame ``t`` unless ``born_by_t=False``) + the moving ones alive at ``t``."""
        t = self._check_frame(t)
        p = {k: v.copy() for k, v in self.params.items()}
        mi = self.moving_index
        alive = np.ones(len(self.moving), bool)
        ok = self.moving_alive(t)
        for k in DYNAMIC:
            p[k][mi[ok]] = self.dynamic[k][t][ok]
        if self.still_colors is not None:
            sc = self.still_colors[t].astype(np.float32)
            rec = np.isfinite(sc).all(1)
            p["colors"][self.still_index[rec]] = sc[rec]
        if self.still_opacity is not None:
            so = self.still_opacity[t].astype(np.float32)
            rec = np.isfinite(so)
            p["opacity_logits"][self.still_index[rec]] = so[rec]
        alive[mi[~ok]] = False
        if born_by_t:
            alive &= self.exists(t)
        g = Gaussians(means=p["means"], quats=p["quats"], log_scales=p["log_scales"],
                      opacity_logits=p["opacity_logits"], colors=p["colors"])
        return g.subset(alive)

    def split_at(self, t: int) -> tuple[Gaussians, Gaussians]:
        """(still, moving) Gaussians of frame ``t`` (all still ones, the moving ones alive at ``t``)."""
        t = self._check_frame(t)
        g = self.gaussians_at(t, born_by_t=False)
        is_mov = self.moving[self.alive_index(t)]
        return g.subset(~is_mov), g.subset(is_mov)

    def exists(self, t: int) -> np.ndarray:
        """``(N,)`` which Gaussians are part of frame ``t``: born by then, not yet retired, and (moving ones)
        with a state at ``t``."""
        t = self._check_frame(t)
        ok = self.birth <= t
        if self.death is not None:
            ok &= (self.death < 0) | (t < self.death)
        ok[self.moving_index[~self.moving_alive(t)]] = False
        return ok

    def alive_index(self, t: int) -> np.ndarray:
        """Indices of the Gaussians ``gaussians_at(t, born_by_t=False)`` returns, in its order."""
        t = self._check_frame(t)
        alive = np.ones(len(self.moving), bool)
        alive[self.moving_index[~self.moving_alive(t)]] = False
        return np.nonzero(alive)[0]

    def tracks3d(self) -> np.ndarray:
        """World position of every Gaussian at every frame ``(T,N,3)`` (still ones constant; NaN before birth
        for moving ones)."""
        T = self.n_frames
        out = np.repeat(self.params["means"][None], T, 0).astype(np.float32)
        out[:, self.moving_index] = self.dynamic["means"]
        return out

    def tracks2d(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel projection of every Gaussian in every frame ``(T,N,2)`` and whether it is in front of the camera."""
        X = self.tracks3d()
        R, tr = self.world_to_cam[:, :3, :3], self.world_to_cam[:, :3, 3]
        cam = np.einsum("tij,tnj->tni", R, X) + tr[:, None]
        z = cam[..., 2]
        uv = cam[..., :2] / np.where(np.abs(z) > 1e-9, z, 1e-9)[..., None]
        uv = uv * np.array([self.K[0, 0], self.K[1, 1]]) + np.array([self.K[0, 2], self.K[1, 2]])
        return uv.astype(np.float32), (z > 1e-6) & np.isfinite(z)

    # ------------------------------------------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        from vision3d.io.atomic import atomic_path

        arrays = {f"p_{k}": v.astype(np.float32) for k, v in self.params.items()}
        arrays.update({f"d_{k}": v.astype(np.float16 if k not in ("means", "log_scales") else np.float32)
                       for k, v in self.dynamic.items()})
        arrays.update(moving=self.moving, birth=self.birth.astype(np.int32), K=self.K, world_to_cam=self.world_to_cam,
                      size=np.array([self.width, self.height]), format=np.array(FORMAT))
        if self.still_colors is not None:
            arrays["s_colors"] = self.still_colors.astype(np.float16)
        if self.death is not None:
            arrays["death"] = self.death.astype(np.int32)
        if self.still_opacity is not None:
            arrays["s_opacity"] = self.still_opacity.astype(np.float16)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Scene4D:
        path = Path(path)
        if path.is_dir():
            path = path / "scene" / "scene4d.npz" if (path / "scene").is_dir() else path / "scene4d.npz"
        if not path.is_file():
            raise InputError("no 4D scene here", path=path, fix="give a video2scene run folder or its scene4d.npz")
        try:
            z = np.load(path, allow_pickle=False)
            if str(z["format"]) != FORMAT:
                raise InputError(f"unsupported scene format {z['format']}", path=path)
            params = {k[2:]: z[k] for k in z.files if k.startswith("p_")}
            dynamic = {k[2:]: z[k].astype(np.float32) for k in z.files if k.startswith("d_")}
            w, h = (int(v) for v in z["size"])
            still = z["s_colors"] if "s_colors" in z.files else None  # float16, (T, S, 3): kept compact
            death = z["death"].astype(np.int64) if "death" in z.files else None
            opac = z["s_opacity"] if "s_opacity" in z.files else None
            return cls(params, z["moving"].astype(bool), z["birth"].astype(np.int64), dynamic, z["K"], w, h,
                       z["world_to_cam"], still, death, opac)
        except (KeyError, ValueError, OSError) as e:
            raise InputError(f"not a readable 4D scene file ({e})", path=path) from None


def assemble(final: dict[str, np.ndarray], records: list[dict], K: np.ndarray, width: int, height: int) -> Scene4D:
    """Build a ``Scene4D`` from the solver's final state (``means … colors``, ``moving``, ``birth``, ``ids``,
    ``poses``) and the per-frame records of moving Gaussians (``ids`` and their ``DYNAMIC`` values; optionally
    ``still_ids``/``still_colors``/``still_opacity``, the appearance still Gaussians had at that frame)."""
    ids = final["ids"]
    moving = final["moving"].astype(bool)
    mi = np.nonzero(moving)[0]
    row_of = {int(i): r for r, i in enumerate(ids[mi])}
    T = len(records)
    dynamic = {k: np.full((T, len(mi), *final[k].shape[1:]), np.nan, np.float32) for k in DYNAMIC}
    for t, rec in enumerate(records):
        rows = np.array([row_of.get(int(i), -1) for i in rec["ids"]], np.int64)
        ok = rows >= 0
        for k in DYNAMIC:
            dynamic[k][t, rows[ok]] = rec[k][ok]
    still_colors = still_opacity = None
    if records and all("still_ids" in r for r in records):
        si = np.nonzero(~moving)[0]
        srow = {int(i): r for r, i in enumerate(ids[si])}
        if all("still_colors" in r for r in records):
            still_colors = np.full((T, len(si), 3), np.nan, np.float16)
        if all("still_opacity" in r for r in records):
            still_opacity = np.full((T, len(si)), np.nan, np.float16)
        for t, rec in enumerate(records):
            rows = np.array([srow.get(int(i), -1) for i in rec["still_ids"]], np.int64)
            ok = rows >= 0
            if still_colors is not None:
                still_colors[t, rows[ok]] = rec["still_colors"][ok]
            if still_opacity is not None:
                still_opacity[t, rows[ok]] = rec["still_opacity"][ok]
    params = {k: final[k] for k in ("means", "quats", "log_scales", "opacity_logits", "colors")}
    death = np.asarray(final["death"], np.int64) if "death" in final else None
    return Scene4D(params, moving, final["birth"], dynamic, np.asarray(K, np.float64), width, height,
                   np.asarray(final["poses"], np.float64), still_colors, death, still_opacity)
