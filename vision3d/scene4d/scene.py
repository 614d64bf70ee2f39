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
FORMAT = "vision3d-scene4d/2"
FORMAT_DENSE = "vision3d-scene4d/1"     # (T, M, …) per-frame arrays, NaN where absent: still read


@dataclass
class FrameRows:
    """Per-frame values of a subset of Gaussians, stored frame by frame without padding: frame ``t``'s entries are
    ``rows[ptr[t]:ptr[t+1]]`` (indices into the subset) with ``values[k][ptr[t]:ptr[t+1]]``. Memory grows with
    the Gaussians alive per frame, not with (frames × every Gaussian ever), which a long video makes quadratic."""

    ptr: np.ndarray                  # (T+1,) int64
    rows: np.ndarray                 # (R,) int64
    values: dict[str, np.ndarray]    # (R, …) each

    def at(self, t: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        a, b = int(self.ptr[t]), int(self.ptr[t + 1])
        return self.rows[a:b], {k: v[a:b] for k, v in self.values.items()}

    def dense(self, t: int, key: str, n: int, dtype=np.float32) -> np.ndarray:
        """Frame ``t``'s ``key`` values as ``(n, …)`` with NaN where not recorded."""
        rows, vals = self.at(t)
        out = np.full((n, *self.values[key].shape[1:]), np.nan, dtype)
        out[rows] = vals[key]
        return out

    @classmethod
    def from_frames(cls, frames: list[tuple[np.ndarray, dict[str, np.ndarray]]], keys, shapes: dict,
                    dtypes: dict) -> FrameRows:
        """From ``[(rows, {key: values}), …]`` per frame."""
        ptr = np.zeros(len(frames) + 1, np.int64)
        ptr[1:] = np.cumsum([len(r) for r, _ in frames])
        rows = np.concatenate([r for r, _ in frames]).astype(np.int64) if frames else np.zeros(0, np.int64)
        values = {k: (np.concatenate([v[k] for _, v in frames]).astype(dtypes[k]) if frames
                      else np.zeros((0, *shapes[k]), dtypes[k])) for k in keys}
        return cls(ptr, rows, values)

    @classmethod
    def from_dense(cls, arrays: dict[str, np.ndarray]) -> FrameRows:
        """From ``(T, n, …)`` arrays with NaN where absent (the first key decides presence)."""
        first = next(iter(arrays.values()))
        T, n = first.shape[:2]
        frames = []
        for t in range(T):
            ok = np.isfinite(first[t].reshape(n, -1)).all(1)
            frames.append((np.nonzero(ok)[0], {k: v[t][ok] for k, v in arrays.items()}))
        return cls.from_frames(frames, list(arrays), {k: v.shape[2:] for k, v in arrays.items()},
                               {k: v.dtype for k, v in arrays.items()})


@dataclass
class Scene4D:
    """``params``: final raw parameters of every Gaussian ``(N,…)`` (RGB colours); ``moving``/``birth`` ``(N,)``;
    ``dynamic``: per-frame position, rotation, scale, opacity and colour of the moving Gaussians that exist in each
    frame (rows index ``moving_index``); ``K``, ``width``, ``height``, ``world_to_cam (T,4,4)``; ``still``:
    optional per-frame colours (``colors``) and/or opacity logits (``opacity_logits``) of still Gaussians (rows
    index ``still_index``, float16) when the solver let their appearance change from frame to frame;
    ``death``: optional ``(N,)`` frame from which a Gaussian is no longer part of the scene (it left the view and
    was retired; −1: never)."""

    params: dict[str, np.ndarray]
    moving: np.ndarray
    birth: np.ndarray
    dynamic: FrameRows
    K: np.ndarray
    width: int
    height: int
    world_to_cam: np.ndarray
    still: FrameRows | None = None
    death: np.ndarray | None = None

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
        alive = np.zeros(int(self.moving.sum()), bool)
        alive[self.dynamic.at(t)[0]] = True
        return alive

    def still_appearance(self, t: int, key: str) -> np.ndarray | None:
        """Frame ``t``'s ``colors`` ``(S,3)`` or ``opacity_logits`` ``(S,)`` of the still Gaussians (NaN where not
        recorded), or None when the scene keeps one value per Gaussian."""
        if self.still is None or key not in self.still.values:
            return None
        return self.still.dense(self._check_frame(t), key, int((~self.moving).sum()))

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
        rows, vals = self.dynamic.at(t)
        for k in DYNAMIC:
            p[k][mi[rows]] = vals[k]
        ok = self.moving_alive(t)
        if self.still is not None:
            srows, svals = self.still.at(t)
            si = self.still_index[srows]
            for k, v in svals.items():
                p[k][si] = v.astype(np.float32)
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

    def moving_at(self, t: int) -> Gaussians:
        """The moving Gaussians alive at frame ``t`` (``split_at(t)[1]``) without building the still ones: the
        per-frame moving-object masks need only these."""
        t = self._check_frame(t)
        mi = self.moving_index
        p = {k: v[mi] for k, v in self.params.items()}
        rows, vals = self.dynamic.at(t)
        for k in DYNAMIC:
            p[k][rows] = vals[k]
        g = Gaussians(means=p["means"], quats=p["quats"], log_scales=p["log_scales"],
                      opacity_logits=p["opacity_logits"], colors=p["colors"])
        return g.subset(self.moving_alive(t))

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

    def positions_at(self, t: int, index: np.ndarray | None = None) -> np.ndarray:
        """World position ``(N,3)`` of every Gaussian (or those in ``index``) at frame ``t``: still ones where they
        are, moving ones at their state of frame ``t`` (NaN where they have none). One frame at a time: memory
        stays that of one frame however long the video."""
        t = self._check_frame(t)
        sel = np.arange(len(self.moving)) if index is None else np.asarray(index, np.int64)
        out = self.params["means"][sel].astype(np.float32)
        col = np.full(len(self.moving), -1, np.int64)          # Gaussian → row of ``out``
        col[sel] = np.arange(len(sel))
        cm = col[self.moving_index]
        out[cm[cm >= 0]] = np.nan
        rows, vals = self.dynamic.at(t)
        c = cm[rows]
        out[c[c >= 0]] = vals["means"][c >= 0]
        return out

    def project(self, t: int, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel positions ``(n,2)`` of world points ``X (n,3)`` in frame ``t``'s camera, and whether each is in
        front of it."""
        V = self.world_to_cam[self._check_frame(t)]
        cam = X @ V[:3, :3].T.astype(np.float32) + V[:3, 3].astype(np.float32)
        z = cam[:, 2]
        f, c = np.array([self.K[0, 0], self.K[1, 1]]), np.array([self.K[0, 2], self.K[1, 2]])
        uv = (cam[:, :2] / np.where(np.abs(z) > 1e-9, z, 1e-9)[:, None] * f + c).astype(np.float32)
        return uv, (z > 1e-6) & np.isfinite(z)

    def tracks3d(self, index: np.ndarray | None = None) -> np.ndarray:
        """World position of every Gaussian (or those in ``index``) at every frame ``(T,N,3)`` (still ones
        constant; NaN where a moving one has no state). Dense: for a subset, or small scenes (``positions_at``
        gives one frame)."""
        return np.stack([self.positions_at(t, index) for t in range(self.n_frames)])

    def tracks2d(self, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pixel projection of every Gaussian (or those in ``index``) in every frame ``(T,N,2)`` and whether it
        is in front of the camera. Dense, like ``tracks3d``."""
        per = [self.project(t, self.positions_at(t, index)) for t in range(self.n_frames)]
        return np.stack([p[0] for p in per]), np.stack([p[1] for p in per])

    # ------------------------------------------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        from vision3d.io.atomic import atomic_path
        from vision3d.io.npz import write_npz

        arrays = {f"p_{k}": v.astype(np.float32) for k, v in self.params.items()}
        arrays.update({f"d_{k}": v.astype(np.float16 if k not in ("means", "log_scales") else np.float32)
                       for k, v in self.dynamic.values.items()})
        arrays.update(d_ptr=self.dynamic.ptr, d_rows=self.dynamic.rows.astype(np.int32), moving=self.moving,
                      birth=self.birth.astype(np.int32), K=self.K, world_to_cam=self.world_to_cam,
                      size=np.array([self.width, self.height]), format=np.array(FORMAT))
        if self.still is not None:
            arrays.update({f"s_{k}": v.astype(np.float16) for k, v in self.still.values.items()})
            arrays.update(s_ptr=self.still.ptr, s_rows=self.still.rows.astype(np.int32))
        if self.death is not None:
            arrays["death"] = self.death.astype(np.int32)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            write_npz(f, arrays)
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
            fmt = str(z["format"])
            if fmt not in (FORMAT, FORMAT_DENSE):
                raise InputError(f"unsupported scene format {fmt}", path=path, fix="re-run v3d video2scene")
            params = {k[2:]: z[k] for k in z.files if k.startswith("p_")}
            w, h = (int(v) for v in z["size"])
            death = z["death"].astype(np.int64) if "death" in z.files else None
            if fmt == FORMAT_DENSE:
                dynamic = FrameRows.from_dense({k: z[f"d_{k}"].astype(np.float32) for k in DYNAMIC})
                old = {k: z[n] for k, n in (("colors", "s_colors"), ("opacity_logits", "s_opacity")) if n in z.files}
                still = FrameRows.from_dense(old) if old else None
            else:
                dynamic = FrameRows(z["d_ptr"].astype(np.int64), z["d_rows"].astype(np.int64),
                                    {k: z[f"d_{k}"].astype(np.float32) for k in DYNAMIC})
                sv = {k: z[f"s_{k}"] for k in ("colors", "opacity_logits") if f"s_{k}" in z.files}
                still = FrameRows(z["s_ptr"].astype(np.int64), z["s_rows"].astype(np.int64), sv) if sv else None
            return cls(params, z["moving"].astype(bool), z["birth"].astype(np.int64), dynamic, z["K"], w, h,
                       z["world_to_cam"], still, death)
        except (KeyError, ValueError, OSError) as e:
            raise InputError(f"not a readable 4D scene file ({e})", path=path) from None


def assemble(final: dict[str, np.ndarray], records: list[dict], K: np.ndarray, width: int, height: int) -> Scene4D:
    """Build a ``Scene4D`` from the solver's final state (``means … colors``, ``moving``, ``birth``, ``ids``,
    ``poses``) and the per-frame records of moving Gaussians (``ids`` and their ``DYNAMIC`` values; optionally
    ``still_ids``/``still_colors``/``still_opacity``, the appearance still Gaussians had at that frame)."""
    ids = np.asarray(final["ids"], np.int64)
    moving = final["moving"].astype(bool)

    def lookup(subset: np.ndarray):
        """ids → row in ``subset`` (−1 where not in it), vectorised through a table over the id range."""
        table = np.full(int(ids.max()) + 2 if len(ids) else 1, -1, np.int64)
        table[ids[subset]] = np.arange(len(subset))
        return lambda q: table[np.clip(np.asarray(q, np.int64), -1, len(table) - 1)]

    def rows_of(find, rec_ids, values: dict) -> tuple[np.ndarray, dict]:
        r = find(rec_ids)
        ok = r >= 0
        return r[ok], {k: np.asarray(v)[ok] for k, v in values.items()}

    mi, si = np.nonzero(moving)[0], np.nonzero(~moving)[0]
    find_m, find_s = lookup(mi), lookup(si)
    dyn_shapes = {k: final[k].shape[1:] for k in DYNAMIC}
    dynamic = FrameRows.from_frames([rows_of(find_m, r["ids"], {k: r[k] for k in DYNAMIC}) for r in records],
                                    DYNAMIC, dyn_shapes, dict.fromkeys(DYNAMIC, np.float32))
    still = None
    keys = [(k, n) for k, n in (("colors", "still_colors"), ("opacity_logits", "still_opacity"))
            if records and all(n in r for r in records)]
    if keys and all("still_ids" in r for r in records):
        still = FrameRows.from_frames([rows_of(find_s, r["still_ids"], {k: r[n] for k, n in keys}) for r in records],
                                      [k for k, _ in keys], {k: final[k].shape[1:] for k, _ in keys},
                                      {k: np.float16 for k, _ in keys})
    params = {k: final[k] for k in ("means", "quats", "log_scales", "opacity_logits", "colors")}
    death = np.asarray(final["death"], np.int64) if "death" in final else None
    return Scene4D(params, moving, final["birth"], dynamic, np.asarray(K, np.float64), width, height,
                   np.asarray(final["poses"], np.float64), still, death)
