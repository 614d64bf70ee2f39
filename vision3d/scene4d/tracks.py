"""``tracks.npz``: every Gaussian of a 4D scene as a 2D and 3D track, stored frame by frame for the Gaussians that
are part of each frame (a dense ``(T, N, …)`` array grows with frames × every Gaussian ever born: 200 MB for 50
frames at 160p, over 1 GB at 480p, nearly all of it empty or repeated).

Layout (format ``vision3d-tracks/2``, plain numpy arrays):

- per Gaussian ``(N,)``: ``moving``, ``birth``, ``death`` (first frame it is no longer part of, −1: never) and
  ``xyz (N,3)``: its world position (still Gaussians keep it; moving ones: see ``moving_xyz``);
- per frame, the Gaussians of frame ``t`` are ``index[ptr[t]:ptr[t+1]]`` with their pixel positions ``uv`` and
  ``in_front`` (in front of that frame's camera) in the same rows;
- moving Gaussians' world positions per frame: ``moving_index/moving_xyz`` rows ``moving_ptr[t]:moving_ptr[t+1]``.

``Tracks.load(path)`` reads it (and format 1, the dense arrays); ``frame(t)`` and ``dense(index)`` give either view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision3d.errors import InputError

FORMAT = "vision3d-tracks/2"


@dataclass
class Tracks:
    """The tracks of one scene (see the module docstring for the meaning of each array)."""

    moving: np.ndarray
    birth: np.ndarray
    death: np.ndarray
    xyz: np.ndarray
    ptr: np.ndarray
    index: np.ndarray
    uv: np.ndarray
    in_front: np.ndarray
    moving_ptr: np.ndarray
    moving_index: np.ndarray
    moving_xyz: np.ndarray
    extra: dict[str, np.ndarray]          # e.g. ``queries`` and ``query_tracks`` (``--query-points``)

    @property
    def n_frames(self) -> int:
        return len(self.ptr) - 1

    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(index, uv, in_front)`` of the Gaussians that are part of frame ``t``."""
        if not 0 <= t < self.n_frames:
            raise InputError(f"frame {t} is out of range: the tracks have frames 0..{self.n_frames - 1}")
        a, b = int(self.ptr[t]), int(self.ptr[t + 1])
        return self.index[a:b], self.uv[a:b], self.in_front[a:b]

    def dense(self, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(uv (T,n,2), xyz (T,n,3), in_front (T,n))`` of the Gaussians in ``index`` (all: mind the memory),
        NaN / False where a Gaussian is not part of a frame."""
        sel = np.arange(len(self.moving)) if index is None else np.asarray(index, np.int64)
        col = np.full(len(self.moving), -1, np.int64)
        col[sel] = np.arange(len(sel))
        T, n = self.n_frames, len(sel)
        uv = np.full((T, n, 2), np.nan, np.float32)
        xyz = np.full((T, n, 3), np.nan, np.float32)
        front = np.zeros((T, n), bool)
        for t in range(T):
            idx, u, f = self.frame(t)
            c = col[idx]
            k = c >= 0
            uv[t, c[k]], front[t, c[k]] = u[k], f[k]
            xyz[t, c[k]] = self.xyz[idx[k]]
            a, b = int(self.moving_ptr[t]), int(self.moving_ptr[t + 1])
            cm = col[self.moving_index[a:b]]
            xyz[t, cm[cm >= 0]] = self.moving_xyz[a:b][cm >= 0]
        return uv, xyz, front

    @classmethod
    def from_scene(cls, scene, extra: dict[str, np.ndarray] | None = None) -> Tracks:
        """The tracks of a ``Scene4D``, built a frame at a time (memory: the result plus one frame)."""
        T = scene.n_frames
        ptr, mptr = np.zeros(T + 1, np.int64), np.zeros(T + 1, np.int64)
        idx, uvs, fronts, midx, mxyz = [], [], [], [], []
        mi = scene.moving_index
        for t in range(T):
            here = np.nonzero(scene.exists(t))[0]
            X = scene.positions_at(t, here)
            uv, front = scene.project(t, X)
            idx.append(here.astype(np.int32))
            uvs.append(uv)
            fronts.append(front)
            ptr[t + 1] = ptr[t] + len(here)
            rows, vals = scene.dynamic.at(t)
            midx.append(mi[rows].astype(np.int32))
            mxyz.append(np.asarray(vals["means"], np.float32))
            mptr[t + 1] = mptr[t] + len(rows)
        death = scene.death if scene.death is not None else np.full(len(scene.moving), -1)
        def cat(parts, shape, dt):
            return np.concatenate(parts) if parts else np.zeros(shape, dt)

        return cls(moving=scene.moving.astype(bool), birth=scene.birth.astype(np.int32),
                   death=death.astype(np.int32), xyz=scene.params["means"].astype(np.float32), ptr=ptr,
                   index=cat(idx, (0,), np.int32), uv=cat(uvs, (0, 2), np.float32),
                   in_front=cat(fronts, (0,), bool), moving_ptr=mptr, moving_index=cat(midx, (0,), np.int32),
                   moving_xyz=cat(mxyz, (0, 3), np.float32), extra=dict(extra or {}))

    def save(self, path: str | Path) -> Path:
        """Write ``tracks.npz`` atomically (a killed run leaves no half-written file)."""
        from vision3d.io.atomic import atomic_path

        arrays = {k: getattr(self, k) for k in ("moving", "birth", "death", "xyz", "ptr", "index", "uv", "in_front",
                                                "moving_ptr", "moving_index", "moving_xyz")}
        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
            np.savez(f, format=np.array(FORMAT), **arrays, **self.extra)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Tracks:
        """Read ``tracks.npz`` (format 2, or format 1's dense ``tracks2d``/``tracks3d``/``in_front`` arrays)."""
        path = Path(path)
        try:
            z = np.load(path)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read tracks file: {e}", path=path, fix="re-run v3d video2scene") from e
        with z:
            d = {k: z[k] for k in z.files}
        keys = ("moving", "birth", "death", "xyz", "ptr", "index", "uv", "in_front", "moving_ptr", "moving_index",
                "moving_xyz")
        if "format" in d and str(d["format"]) == FORMAT:
            missing = [k for k in keys if k not in d]
            if missing:
                raise InputError(f"tracks file lacks {', '.join(missing)}", path=path, fix="re-run v3d video2scene")
            return cls(**{k: d.pop(k) for k in keys}, extra={k: v for k, v in d.items() if k != "format"})
        if "tracks2d" in d and "tracks3d" in d:
            return cls._from_dense(d)
        raise InputError("not a vision3d tracks file", path=path, fix="give the tracks/tracks.npz of a v3d run")

    @classmethod
    def _from_dense(cls, d: dict[str, np.ndarray]) -> Tracks:
        uv, X, front = d.pop("tracks2d"), d.pop("tracks3d"), d.pop("in_front")
        moving, birth = d.pop("moving").astype(bool), d.pop("birth").astype(np.int32)
        death = d.pop("death").astype(np.int32)
        T, N = uv.shape[:2]
        t_idx = np.arange(T)[:, None]
        here = (birth[None] <= t_idx) & ((death[None] < 0) | (t_idx < death[None])) & np.isfinite(X).all(2)
        counts = here.sum(1)
        ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        tt, nn = np.nonzero(here)
        mv = moving[nn]
        mcounts = np.bincount(tt[mv], minlength=T)
        first = np.where(np.isfinite(X).all(2).any(0), np.isfinite(X).all(2).argmax(0), 0)
        return cls(moving=moving, birth=birth, death=death, xyz=X[first, np.arange(N)].astype(np.float32), ptr=ptr,
                   index=nn.astype(np.int32), uv=uv[tt, nn].astype(np.float32), in_front=front[tt, nn],
                   moving_ptr=np.concatenate([[0], np.cumsum(mcounts)]).astype(np.int64),
                   moving_index=nn[mv].astype(np.int32), moving_xyz=X[tt[mv], nn[mv]].astype(np.float32),
                   extra={k: v for k, v in d.items() if k != "format"})


def fill_with_flow(tracks: np.ndarray, forward, backward, width: int, height: int,
                   max_fb_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Continue point tracks ``(Q,T,2)`` through the frames where they are NaN by chaining the optical flow from
    the nearest frame that has a position: forward after it (``forward(t)``: flow ``t → t+1``, ``(2,H,W)``) and
    backward before it (``backward(t)``: flow ``t+1 → t``). A chain stops where the point leaves the image or the
    forward–backward check fails (it is occluded). Returns the tracks and ``source (Q,T)`` int8: 0 none, 1 given,
    2 carried by the flow. One frame's flow at a time; vectorised over the points."""
    from vision3d.scene4d.init import bilinear

    out = tracks.astype(np.float32).copy()
    T = out.shape[1]
    source = np.where(np.isfinite(out).all(2), 1, 0).astype(np.int8)

    def sample(field: np.ndarray, p: np.ndarray) -> np.ndarray:
        return bilinear(np.moveaxis(field, 0, -1), p)

    def step(t_from: int, t_to: int, there, back) -> None:
        todo = np.nonzero((source[:, t_to] == 0) & (source[:, t_from] > 0))[0]
        if not len(todo):
            return
        p = out[todo, t_from]
        f = there(min(t_from, t_to))
        q = p + sample(f, p)
        b = back(min(t_from, t_to))
        ok = (np.linalg.norm(q + sample(b, q) - p, axis=1) <= max_fb_px) & (q[:, 0] >= 0) & \
            (q[:, 0] <= width - 1) & (q[:, 1] >= 0) & (q[:, 1] <= height - 1)
        out[todo[ok], t_to] = q[ok]
        source[todo[ok], t_to] = 2

    for t in range(T - 1):                              # forward, after each track's last given frame
        step(t, t + 1, forward, backward)
    for t in range(T - 1, 0, -1):                       # backward, before its first
        step(t, t - 1, backward, forward)
    return out, source
