"""What a path holds, read into viewer-ready arrays: a video2scene run (4D Gaussians, cameras, frames, masks,
tracks), a fit-splats run or a 3DGS ``.ply`` (static splats), a mesh (``.glb/.obj/.ply`` with faces) or a point
cloud. Nothing here talks to a browser; ``viewers.app`` turns it into a viser scene."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vision3d.core.gaussians import Gaussians, sh0_to_rgb, sigmoid
from vision3d.errors import InputError

MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".stl", ".off")
DEFAULT_MAX_GAUSSIANS = 400_000      # above this the page stops being interactive in a laptop browser


@dataclass
class Splats:
    """Gaussians as viser draws them: centres, world covariances, RGB in [0, 1], opacity in [0, 1]."""

    centers: np.ndarray
    covariances: np.ndarray
    rgbs: np.ndarray
    opacities: np.ndarray

    @classmethod
    def from_gaussians(cls, g: Gaussians) -> Splats:
        rgb = g.colors if g.colors is not None else sh0_to_rgb(g.sh[:, 0, :])
        return cls(g.means.astype(np.float32), g.covariances().astype(np.float32),
                   np.clip(rgb, 0, 1).astype(np.float32), sigmoid(g.opacity_logits)[:, None].astype(np.float32))

    def __len__(self) -> int:
        return len(self.centers)

    def subset(self, index: np.ndarray) -> Splats:
        return Splats(self.centers[index], self.covariances[index], self.rgbs[index], self.opacities[index])


@dataclass
class Content:
    """Everything one ``v3d view`` shows. ``kind``: ``scene4d`` | ``splats`` | ``mesh`` | ``points`` | ``partial``."""

    kind: str
    title: str
    still: Splats | None = None
    still_life: np.ndarray | None = None        # (n, 2) 4D runs: the frames [first, end) each still Gaussian is in
    moving: list[Splats] | None = None          # per frame (4D runs)
    world_to_cam: np.ndarray | None = None      # (T,4,4), OpenCV cameras
    K: np.ndarray | None = None
    size: tuple[int, int] | None = None         # (width, height) of the frames
    frames: list[Path] = field(default_factory=list)
    masks: list[Path] = field(default_factory=list)
    tracks3d: np.ndarray | None = None          # (T, n, 3) subsampled moving-Gaussian tracks (NaN: not alive)
    tracks2d: np.ndarray | None = None          # (T, n, 2) their pixel positions
    track_colors: np.ndarray | None = None      # (n, 3) uint8
    mesh: object | None = None                  # trimesh.Trimesh
    points: np.ndarray | None = None
    point_colors: np.ndarray | None = None
    metrics: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return len(self.world_to_cam) if self.world_to_cam is not None else 0

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """A robust box around what is drawn (2–98 % percentiles, so a few far Gaussians do not shrink the view)."""
        pts = [a for a in (None if self.still is None else self.still.centers, self.points,
                           None if self.mesh is None else np.asarray(self.mesh.vertices)) if a is not None and len(a)]
        if not pts:
            return np.full(3, -1.0), np.full(3, 1.0)
        p = np.concatenate(pts)
        return np.percentile(p, 2, axis=0), np.percentile(p, 98, axis=0)


def _budget(n_total: int, max_gaussians: int) -> float:
    return 1.0 if n_total <= max_gaussians else max_gaussians / n_total


MAX_STILL_GROUPS = 2048     # scene nodes for the still Gaussians' lifetimes: visibility flags, not resends


def life_groups(life: np.ndarray, max_groups: int = MAX_STILL_GROUPS) -> tuple[np.ndarray, np.ndarray]:
    """Group Gaussians by their lifetimes ``life (n, 2)`` = frames ``[first, end)`` so that a viewer can show one
    frame's still Gaussians by switching whole groups on and off. Beyond ``max_groups`` distinct lifetimes, ends
    are rounded up to a common step, then (very long videos) firsts down: a Gaussian may then show a few frames
    late or early, never go missing from a frame it is in. Late costs less than early: a retired Gaussian was
    hidden or out of view for frames before it left, one born for a later view covers the current picture (DAVIS
    blackswan's 160p fit, docs/results.md). Returns each Gaussian's group and the groups' ``(k, 2)`` spans."""
    life = np.asarray(life, np.int64).reshape(-1, 2)
    if not len(life):
        return np.zeros(0, np.int64), np.zeros((0, 2), np.int64)
    lives, which = np.unique(life, axis=0, return_inverse=True)      # the search runs on distinct lifetimes
    span = max(int(lives[:, 1].max() - lives[:, 0].min()), 1)
    for step_first, step_end in [(1, q) for q in range(1, span + 1)] + [(p, span) for p in range(2, span + 1)]:
        q = np.stack([lives[:, 0] // step_first * step_first, -(-lives[:, 1] // step_end) * step_end], 1)
        spans, group = np.unique(q, axis=0, return_inverse=True)
        if len(spans) <= max_groups:
            break
    return group.reshape(-1)[which.reshape(-1)], spans


def _manifest_metrics(run: Path) -> tuple[dict, dict]:
    """``(metrics, stages)`` from a run's manifest.json (empty when absent or unreadable)."""
    try:
        m = json.loads((run / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}, {}
    return m.get("metrics", {}), m.get("stages", {})


def load_scene4d_run(run: Path, max_gaussians: int, max_tracks: int = 400, seed: int = 0) -> Content:
    """A video2scene run: still Gaussians once, moving ones per frame, cameras, frames, masks and tracks. When the
    scene stage did not finish, what exists (frames, flow, depth, ...) is listed and what is missing is said."""
    from vision3d.scene4d.scene import Scene4D

    metrics, stages = _manifest_metrics(run)
    frames = sorted((run / "frames").glob("*.png"))
    scene_file = run / "scene" / "scene4d.npz"
    if not scene_file.is_file():
        done = [s for s, v in stages.items() if v.get("status", "done") == "done"] or \
            [d.name for d in sorted(run.iterdir()) if d.is_dir() and not d.name.startswith(".")]
        order = ["frames", "flow", "depth", "split", "scene", "cameras", "tracks", "masks", "renders"]
        c = Content("partial", f"{run.name} (unfinished video2scene run)", frames=frames, metrics=metrics,
                    missing=[s for s in order if s not in done])
        c.notes.append(f"finished stages: {', '.join(done) or 'none'}; re-run `v3d video2scene ... -o {run}` "
                       "to resume")
        return c
    scene = Scene4D.load(scene_file)
    T = scene.n_frames
    rng = np.random.default_rng(seed)
    n_still, n_mov = int((~scene.moving).sum()), int(scene.moving.sum())
    frac = _budget(n_still + n_mov, max_gaussians)
    g_all = scene.gaussians_at(0, born_by_t=False)
    alive0 = scene.alive_index(0)
    still_idx = np.nonzero(~scene.moving[alive0])[0]
    still = Splats.from_gaussians(g_all.subset(still_idx))
    # each still Gaussian's frames: born at ``birth``, part of the scene until retired (``death``) or the end
    rows = alive0[still_idx]
    death = np.full(len(rows), T, np.int64) if scene.death is None else np.where(scene.death[rows] < 0, T,
                                                                                 scene.death[rows])
    life = np.stack([scene.birth[rows].astype(np.int64), death], 1)
    notes = []
    if frac < 1:
        keep = np.sort(rng.choice(len(still), int(len(still) * frac), replace=False))
        still, life = still.subset(keep), life[keep]
        notes.append(f"showing {frac:.0%} of the Gaussians ({max_gaussians:,} of {n_still + n_mov:,}; "
                     "--max-gaussians raises the budget)")
    keep_mov = None if frac >= 1 else np.sort(rng.choice(n_mov, int(n_mov * frac), replace=False))
    moving = []
    for t in range(T):
        m = Splats.from_gaussians(scene.moving_at(t))
        if keep_mov is not None:
            alive = scene.moving_alive(t)
            rows = np.nonzero(alive)[0]                      # moving rows alive at t, in moving_at's order
            m = m.subset(np.isin(rows, keep_mov))
        moving.append(m)
    # tracks: a fixed random subset of moving Gaussians, so a track keeps its identity over the timeline
    mi = scene.moving_index
    pick = np.sort(rng.choice(len(mi), min(max_tracks, len(mi)), replace=False)) if len(mi) else np.zeros(0, int)
    t3 = scene.tracks3d(mi[pick]) if len(pick) else np.zeros((T, 0, 3), np.float32)
    uv, front = scene.tracks2d(mi[pick])
    t2 = np.where(front[..., None], uv, np.nan) if len(pick) else np.zeros((T, 0, 2), np.float32)
    colors = (np.clip(scene.params["colors"][mi[pick]], 0, 1) * 255).astype(np.uint8) if len(pick) else \
        np.zeros((0, 3), np.uint8)
    masks = sorted((run / "masks").glob("*.png"))
    c = Content("scene4d", run.name, still=still, still_life=life, moving=moving, world_to_cam=scene.world_to_cam,
                K=scene.K, size=(scene.width, scene.height), frames=frames[:T], masks=masks[:T], tracks3d=t3,
                tracks2d=t2, track_colors=colors, metrics=metrics, notes=notes)
    for what, path in (("masks", run / "masks"), ("renders", run / "renders" / "metrics.json")):
        if not path.exists():
            c.missing.append(what)
    return c


def load_splats(path: Path, max_gaussians: int, seed: int = 0) -> Content:
    """A 3DGS ``.ply``/``.splat``; a PLY without Gaussian fields is shown as a point cloud."""
    from vision3d.io.splats import read_point_cloud, read_splats

    try:
        g = read_splats(path)
    except InputError as e:
        if "not a 3DGS splat file" not in str(e):
            raise
        pts, cols = read_point_cloud(path)
        c = Content("points", path.name, points=np.asarray(pts, np.float32),
                    point_colors=None if cols is None else np.asarray(cols))
        c.notes.append("not a Gaussian splat file: shown as a point cloud")
        return c
    s = Splats.from_gaussians(g)
    c = Content("splats", path.name, still=s)
    if len(s) > max_gaussians:
        keep = np.sort(np.random.default_rng(seed).choice(len(s), max_gaussians, replace=False))
        c.still = s.subset(keep)
        c.notes.append(f"showing {max_gaussians:,} of {len(s):,} Gaussians (--max-gaussians raises the budget)")
    return c


def load(path: str | Path, max_gaussians: int = DEFAULT_MAX_GAUSSIANS) -> Content:
    """Read whatever ``path`` is; an :class:`InputError` says what it is not and what would work."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", path=p)
    if max_gaussians < 1:
        raise InputError(f"--max-gaussians {max_gaussians} must be at least 1")
    if p.is_dir():
        metrics, _ = _manifest_metrics(p)
        job = ""
        try:
            job = json.loads((p / "manifest.json").read_text()).get("job", "")
        except (OSError, ValueError):
            pass
        if job == "video2scene" or (p / "scene" / "scene4d.npz").is_file():
            return load_scene4d_run(p, max_gaussians)
        ply = next((q for q in (p / "fit" / "splats.ply", p / "splats.ply") if q.is_file()), None)
        if ply is not None:
            c = load_splats(ply, max_gaussians)
            c.title, c.metrics = p.name, metrics
            return c
        meshes = sorted(q for q in p.rglob("*") if q.suffix.lower() in (".glb", ".obj") and q.is_file())
        if meshes:
            c = load(meshes[0], max_gaussians)
            c.metrics = metrics
            return c
        raise InputError("not a result folder: no manifest of a known job, scene, splats or mesh inside", path=p,
                         fix="give a run folder written by `v3d video2scene`/`v3d fit-splats`, or a .ply/.glb/.obj")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return load_scene4d_run(p.parent.parent if p.parent.name == "scene" else p.parent, max_gaussians)
    if suffix == ".splat":
        return load_splats(p, max_gaussians)
    if suffix == ".ply":
        from vision3d.io.ply import read_ply_vertices

        v = read_ply_vertices(p)
        if "f_dc_0" in v or "opacity" in v:
            return load_splats(p, max_gaussians)
        if _ply_has_faces(p):
            return _load_mesh(p)
        return load_splats(p, max_gaussians)          # shown as a point cloud, with a note
    if suffix in MESH_SUFFIXES:
        return _load_mesh(p)
    raise InputError(f"cannot view a {suffix or 'suffix-less'} file", path=p,
                     fix="give a run folder, a 3DGS .ply/.splat, a point-cloud .ply or a .glb/.obj mesh")


def _ply_has_faces(p: Path) -> bool:
    with open(p, "rb") as f:
        head = f.read(4096).split(b"end_header")[0]
    for line in head.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == b"element" and parts[1] == b"face":
            return int(parts[2]) > 0
    return False


def _load_mesh(p: Path) -> Content:
    from vision3d.io.mesh import read_mesh

    mesh = read_mesh(p)
    return Content("mesh", p.name, mesh=mesh, metrics={"vertices": len(mesh.vertices), "faces": len(mesh.faces)})
