"""The video2scene job (GFlow): a video or frame folder → a 4D scene of still and moving Gaussians.

Stages: ``frames`` (decode, resize to the preset's short side) → ``flow`` (forward + backward, occlusion) →
``depth`` (the prior) → ``split`` (still/moving masks) → ``gflow`` (per-frame optimisation; per-frame checkpoints
in the stage's scratch folder, so a killed run continues at the frame it reached) → ``outputs`` (scene file,
cameras in three formats, tracks, masks) → ``renders`` (re-rendered input, novel-view orbit, depth and mask videos,
per-frame PSNR/SSIM). Re-running resumes; ``force`` recomputes a stage and everything after it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vision3d.errors import InputError
from vision3d.runner import ProgressFn, Runner, RunResult, Stage, StageContext
from vision3d.scene4d.segment import PropagateConfig


@dataclass
class FramesConfig:
    short_side: int = 160
    max_frames: int | None = None
    stride: int = 1


@dataclass
class FlowConfig:
    method: str = "dis"
    device: str = "cpu"


@dataclass
class DepthConfig:
    method: str = "geometric"       # multi-view geometry from the flow (GFlow's MASt3R prior is multi-view too)
    device: str = "cpu"
    source: str | None = None       # import: folder of depth maps
    kind: str | None = None
    scale: float | None = None
    # geometric depth of larger frames measured at this short side and resized (0: full size). 240 halves its time
    # on 2 cores at 480p, at some cost in accuracy (docs/results.md); on a 16-core GPU machine it was no faster
    # (43.5 s for blackswan's 50 frames, 40.9 s at full size in an earlier run), and the 480p fit with it re-renders
    # at 37.5 dB, so it stays off by default
    work_short_side: int = 0


@dataclass
class SplitConfig:
    threshold_px: float = 1.0       # Sampson distance in pixels at a short side of 160 (scaled with the frames)


@dataclass
class SceneConfig:
    preset: str = "fast"
    fov_deg: float | None = None
    K: tuple[float, float, float, float] | None = None     # fx, fy, cx, cy at the processing size
    device: str = "cpu"
    seed: int = 0
    iterations: float = 1.0           # scales every iteration count of the preset
    overrides: dict = field(default_factory=dict)


@dataclass
class OutputsConfig:
    query_points: str | None = None   # .npy/.txt of (t, x, y) rows in processing pixels
    mask: str | None = None           # first-frame object mask to propagate (any size; resized)


QUERY_METHODS = ("flow", "gaussians")


@dataclass
class TracksConfig:
    # how --query-points are tracked: flow (the optical flow chained from the query's frame both ways) or
    # gaussians (the nearest Gaussians carry them, the flow where none is left); flow stays on the object longer
    # on real video (docs/results.md)
    query_method: str = "flow"


@dataclass
class RendersConfig:
    orbit_frames: int = 60
    fps: float = 15.0


@dataclass
class Video2SceneConfig:
    frames: FramesConfig = field(default_factory=FramesConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    depth: DepthConfig = field(default_factory=DepthConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    renders: RendersConfig = field(default_factory=RendersConfig)
    masks: PropagateConfig = field(default_factory=PropagateConfig)
    tracks: TracksConfig = field(default_factory=TracksConfig)

    @classmethod
    def preset(cls, name: str) -> Video2SceneConfig:
        from vision3d.scene4d.config import GFlowConfig

        g = GFlowConfig.preset(name)
        return cls(frames=FramesConfig(short_side=g.short_side), scene=SceneConfig(preset=name))


# ------------------------------------------------------------------------------------------------------ helpers
def _frame_paths(run: Path) -> list[Path]:
    return sorted((run / "frames").glob("*.png"))


def _read_frame(p: Path) -> np.ndarray:
    from vision3d.io.images import read_image

    return read_image(p)


def _npy(path: Path, arr: np.ndarray, dtype=np.float16) -> None:
    from vision3d.io.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr.astype(dtype))


def _png_mask(path: Path, mask: np.ndarray) -> None:
    from vision3d.io.images import write_image

    write_image(path, mask.astype(np.float32))


def _read_mask(path: Path) -> np.ndarray:
    import cv2

    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise InputError("cannot read this mask image", path=path, fix="give a PNG mask (white = object)")
    return m > 127


def _size_for(w: int, h: int, short_side: int) -> tuple[int, int]:
    s = short_side / min(w, h)
    return max(8, int(round(w * s))), max(8, int(round(h * s)))


# ------------------------------------------------------------------------------------------------------- stages
def stage_frames(ctx: StageContext) -> dict:
    """Decode (streaming), resize so the short side is the preset's, write ``NNNNN.png``. A frame that fails to
    decode ends the video there with a warning (the frames before it are kept) unless it is the first."""
    import cv2

    from vision3d.core.frames import open_frames
    from vision3d.io.images import write_image

    c: FramesConfig = ctx.config
    src = open_frames(ctx.inputs["video"])
    w, h = _size_for(*src.native_size, c.short_side)
    total = len(src) if c.max_frames is None else min(len(src), c.max_frames * c.stride)
    n, note = 0, None
    it = iter(src)
    for i in range(total):
        try:
            frame = next(it)
        except StopIteration:
            break
        except InputError as e:
            if n < 2:
                raise
            note = f"stopped at frame {i}: {e}"
            break
        if i % c.stride:
            continue
        if not np.isfinite(frame).all():
            raise InputError(f"frame {i} contains NaN or inf pixels", path=ctx.inputs["video"])
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        write_image(ctx.out / f"{n:05d}.png", frame)
        n += 1
        ctx.progress(n, total // c.stride)
        if c.max_frames is not None and n >= c.max_frames:
            break
    if n < 2:
        raise InputError(f"the video has {n} readable frame(s); a 4D scene needs at least two",
                         path=ctx.inputs["video"], fix="give a longer video or a folder of several frames")
    if note:
        ctx.log(note)
    info = {"n_frames": n, "width": w, "height": h, "fps": float(src.fps), "native_size": list(src.native_size)}
    (ctx.out / "frames.json").write_text(json.dumps(info | ({"warning": note} if note else {})))
    return {"n_frames": n, "width": w, "height": h}


def stage_flow(ctx: StageContext) -> dict:
    """Forward and backward flow of every consecutive pair, and the forward–backward occlusion masks."""
    from vision3d.flow.registry import estimate

    frames = _frame_paths(ctx.run_dir)
    n = len(frames) - 1
    secs = []
    for r in estimate((_read_frame(p) for p in frames), ctx.config.method, backward=True, device=ctx.config.device):
        _npy(ctx.out / f"fw_{r.t:05d}.npy", r.forward)
        _npy(ctx.out / f"bw_{r.t:05d}.npy", r.backward)
        _png_mask(ctx.out / f"occ_{r.t:05d}.png", r.occlusion)
        secs.append(r.seconds)
        ctx.progress(r.t + 1, n)
    return {"method": ctx.config.method, "seconds_per_pair": float(np.mean(secs)), "pairs": n}


def stage_depth(ctx: StageContext) -> dict:
    """The depth prior of every frame (``NNNNN.npy``) and its kind (``depth.json``)."""
    from vision3d.depth.registry import METHODS, estimate

    c: DepthConfig = ctx.config
    frames = _frame_paths(ctx.run_dir)
    kind = None
    secs = []
    for t, r in enumerate(estimate((_read_frame(p) for p in frames), c.method, source=c.source, kind=c.kind,
                                   scale=c.scale, device=c.device, work_short_side=c.work_short_side)):
        _npy(ctx.out / f"{t:05d}.npy", r.depth, np.float32)
        kind = r.kind
        secs.append(r.seconds)
        ctx.progress(t + 1, len(frames))
    kind = kind or METHODS[c.method].kind
    (ctx.out / "depth.json").write_text(json.dumps({"method": c.method, "kind": kind}))
    return {"method": c.method, "kind": kind, "seconds_per_frame": float(np.mean(secs))}


def stage_split(ctx: StageContext) -> dict:
    """Moving masks per frame from the epipolar error of the forward flow (the last frame: its backward flow).
    Two passes, frames in parallel threads (the robust fits run in OpenCV, which releases the GIL): the camera-
    motion models of every frame, then the masks, with the homography-or-F choice made over neighbouring frames."""
    import cv2

    from vision3d.core.parallel import ordered_map
    from vision3d.scene4d.split import fit_motion, mask_from_fit, smooth_choice

    flow_dir = ctx.dep("flow")
    frames = _frame_paths(ctx.run_dir)
    n = len(frames)

    def load(t: int):
        k = min(t, n - 2)
        flow = np.load(flow_dir / f"{'fw' if t < n - 1 else 'bw'}_{k:05d}.npy").astype(np.float32)
        occ = None
        if t < n - 1:
            occ = cv2.imread(str(flow_dir / f"occ_{k:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
        return flow, occ, ctx.config.threshold_px * min(flow.shape[1:]) / 160

    def fit(t: int):
        flow, occ, thr = load(t)
        return fit_motion(flow, occ, threshold_px=thr)

    fits = list(ordered_map(fit, range(n)))
    h_only = smooth_choice([np.inf if f is None else f.h_score for f in fits])

    def mask(t: int):
        flow, occ, thr = load(t)
        return mask_from_fit(flow, fits[t], occ, threshold_px=thr, homography_only=h_only[t])

    fracs, models = [], []
    for t, r in enumerate(ordered_map(mask, range(n))):
        _png_mask(ctx.out / f"{t:05d}.png", r.moving)
        fracs.append(float(r.moving.mean()))
        models.append(r.model)
        ctx.progress(t + 1, n)
    return {"moving_fraction": float(np.mean(fracs)), "models": {m: models.count(m) for m in set(models)}}


def _intrinsics(c: SceneConfig, w: int, h: int, run: Path) -> tuple[np.ndarray, str]:
    from vision3d.core.camera import fov_to_focal

    if c.K is not None:
        fx, fy, cx, cy = c.K
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64), "given"
    if c.fov_deg is not None:
        f = fov_to_focal(np.deg2rad(c.fov_deg), w)
        return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]], np.float64), "given fov"
    from vision3d.scene4d.intrinsics import estimate_focal

    flows = [np.load(p).astype(np.float32) for p in sorted((run / "flow").glob("fw_*.npy"))[:: max(1, 1)][:12]]
    f, how = estimate_focal(flows, w, h)
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]], np.float64), how


def stage_scene(ctx: StageContext) -> dict:
    """GFlow frame by frame. After each frame the solver state and the frame's record go to ``ctx.scratch`` so a
    killed run continues there."""
    import cv2
    import torch

    from vision3d.io.atomic import atomic_path
    from vision3d.scene4d.optimize import FrameInput, GFlow
    from vision3d.scene4d.scene import assemble

    c: SceneConfig = ctx.config
    cfg = gflow_config(c)
    run = ctx.run_dir
    frames = _frame_paths(run)
    info = json.loads((run / "frames" / "frames.json").read_text())
    w, h = info["width"], info["height"]
    depth_info = json.loads((run / "depth" / "depth.json").read_text())
    kind = depth_info["kind"]
    if depth_info.get("method") == "import" and "prior_trust" not in c.overrides:
        # depth the user brings (a sensor, a strong model) is trusted: overruling it where the scene so far
        # disagrees kept stale Gaussians in place (with the true depth: TartanAir ATE 0.011 -> 0.008, the
        # synthetic clip's novel views 17.7 -> 23.5 dB at a 5 % shift; docs/results.md)
        cfg = cfg.replace(prior_trust=0.0)
    K, k_source = _intrinsics(c, w, h, run)
    torch.manual_seed(c.seed)
    solver = GFlow(cfg, K, w, h, kind, device=c.device, seed=c.seed)
    # per frame: the frame's record, the Gaussians retired with it (``retired/``) and the active state — written
    # in that order, so a state never refers to files that are missing; each checkpoint writes only what is new
    state_path, rec_dir, ret_dir = ctx.scratch / "state.npz", ctx.scratch / "records", ctx.scratch / "retired"
    rec_dir.mkdir(parents=True, exist_ok=True)
    ret_dir.mkdir(parents=True, exist_ok=True)
    start = 0
    if state_path.exists():
        with np.load(state_path) as s:
            t_done = int(s["t"])
            chunks = []
            for p in sorted(ret_dir.glob("*.npz")):
                if int(p.stem) <= t_done:
                    with np.load(p) as z:
                        chunks.append({k: z[k] for k in z.files})
            solver.load_state(s, chunks)
        start = solver.t + 1
        ctx.log(f"resuming at frame {start}")
    rows = json.loads((ctx.scratch / "rows.json").read_text()) if (ctx.scratch / "rows.json").exists() else []
    rows = rows[:start]
    for t in range(start, len(frames)):
        fin = occ = new = None
        if t > 0:
            fin = np.load(run / "flow" / f"fw_{t - 1:05d}.npy").astype(np.float32)
            occ = cv2.imread(str(run / "flow" / f"occ_{t - 1:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
            from vision3d.flow.consistency import fb_occlusion

            bw = np.load(run / "flow" / f"bw_{t - 1:05d}.npy").astype(np.float32)
            new = fb_occlusion(bw, fin)          # pixels of frame t with no match in frame t-1
        frame = FrameInput(_read_frame(frames[t]), np.load(run / "depth" / f"{t:05d}.npy").astype(np.float32),
                           _read_mask(run / "split" / f"{t:05d}.png"), fin, occ, new)
        r = solver.step(frame)
        with atomic_path(rec_dir / f"{t:05d}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **solver.frame_record())
        retired = solver.take_archived()
        if retired:
            with atomic_path(ret_dir / f"{t:05d}.npz") as tmp, open(tmp, "wb") as f:
                np.savez(f, **retired)
        with atomic_path(state_path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **solver.state(archive=False))
        rows.append({k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in r.items()})
        (ctx.scratch / "rows.json").write_text(json.dumps(rows))
        ctx.progress(t + 1, len(frames), f"{r['n']} Gaussians ({r['n_moving']} moving), PSNR {r['psnr']:.2f}")
    records = []
    for t in range(len(frames)):
        with np.load(rec_dir / f"{t:05d}.npz") as z:
            records.append({k: z[k] for k in z.files})
    scene = assemble(solver.state(), records, K, w, h)
    scene.save(ctx.out / "scene4d.npz")
    (ctx.out / "online.json").write_text(json.dumps({"rows": rows, "intrinsics": k_source,
                                                     "config": asdict(cfg)}, default=list))
    return {"n_gaussians": len(scene.moving), "n_moving": int(scene.moving.sum()),
            "online_psnr": float(np.mean([r["psnr"] for r in rows])), "intrinsics": k_source,
            "seconds": float(sum(r["seconds"] for r in rows))}


def _scene(run: Path):
    from vision3d.scene4d.scene import Scene4D

    return Scene4D.load(run / "scene" / "scene4d.npz")


def _render(g, V, K, w, h, features=None):
    """Render a scene state into one camera, on the GPU when there is one (gsplat), results on the CPU."""
    import dataclasses

    import torch

    from vision3d.render import rasterize

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cam = (torch.as_tensor(V, dtype=torch.float32, device=dev)[None],
           torch.as_tensor(K, dtype=torch.float32, device=dev)[None])
    with torch.no_grad():
        out = rasterize(g, cam, w, h, background=torch.zeros(3, device=dev),
                        features=None if features is None else torch.as_tensor(features, device=dev))
    return dataclasses.replace(out, **{f.name: getattr(out, f.name).cpu() for f in dataclasses.fields(out)
                                       if isinstance(getattr(out, f.name), torch.Tensor)})


def stage_cameras(ctx: StageContext) -> dict:
    """Intrinsics and per-frame poses as a TUM trajectory, a nerfstudio ``transforms.json`` and a COLMAP model."""
    from vision3d.io.cameras.colmap import write_colmap
    from vision3d.io.cameras.nerfstudio import write_transforms
    from vision3d.io.cameras.tum import write_tum_trajectory

    cams = _scene(ctx.run_dir).cameras
    names = [p.name for p in _frame_paths(ctx.run_dir)]
    write_tum_trajectory(ctx.out / "trajectory_tum.txt", cams)
    write_transforms(ctx.out / "transforms.json", cams, [f"../frames/{n}" for n in names])
    write_colmap(ctx.out / "colmap", cams, names)
    c = cams.centers
    return {"path_length": float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum()), "focal_px": float(cams.K[0, 0, 0])}


def query_tracks(scene, queries: np.ndarray, run: Path, method: str = "flow") -> tuple[np.ndarray, np.ndarray]:
    """Track given pixels ``(Q,3)`` rows ``(t, x, y)`` through a finished run. ``flow``: the optical flow chained
    from each query's frame, forwards and backwards (``fill_with_flow``). ``gaussians``: the visible Gaussians
    projecting nearest to each query at its frame carry it, by their mean displacement (inverse-distance weighted,
    over those present in each frame), and the flow where none is left. NaN where a chain ends (the point leaves
    the image or is occluded). Returns the tracks ``(Q,T,2)`` and their source per frame (1 the query or the
    Gaussians, 2 the flow, 0 none). One frame's positions and render in memory at a time."""
    from vision3d.scene4d.tracks import fill_with_flow

    if method not in QUERY_METHODS:
        raise InputError(f"unknown query tracking method {method!r}", fix=f"use one of {', '.join(QUERY_METHODS)}")
    T = scene.n_frames
    out = np.full((len(queries), T, 2), np.nan, np.float32)
    for q, (t, _, _) in enumerate(queries):
        if not 0 <= int(t) < T:
            raise InputError(f"query point {q} is at frame {int(t)}; the scene has frames 0..{T - 1}")
    ts = queries[:, 0].astype(int)

    def flow(kind: str):
        return lambda t: np.load(run / "flow" / f"{kind}_{t:05d}.npy").astype(np.float32)

    if method == "flow":
        out[np.arange(len(queries)), ts] = queries[:, 1:]
        return fill_with_flow(out, flow("fw"), flow("bw"), scene.width, scene.height)
    carriers: dict[int, tuple[np.ndarray, np.ndarray]] = {}     # query → (Gaussians that carry it, weights)
    for t in np.unique(ts):
        X = scene.positions_at(t)
        uv, front = scene.project(t, X)
        V = scene.world_to_cam[t]
        z = np.nan_to_num(X @ V[2, :3] + V[2, 3], nan=np.inf)
        d = _render(scene.gaussians_at(t), V, scene.K, scene.width, scene.height).depth[0].numpy()
        base = front & np.isfinite(uv).all(1) & scene.exists(t)
        for q in np.nonzero(ts == t)[0]:
            x, y = queries[q, 1:]
            xi, yi = int(np.clip(round(x), 0, scene.width - 1)), int(np.clip(round(y), 0, scene.height - 1))
            surface = base & (z <= d[yi, xi] * 1.1 + 1e-6)
            dist = np.linalg.norm(np.nan_to_num(uv, nan=1e9) - np.array([x, y]), axis=1)
            ok = surface if (surface & (dist < 3)).any() else base  # on the visible surface near it; else nearest
            dist[~ok] = np.inf
            near = np.argpartition(dist, 4)[:4] if len(dist) > 4 else np.arange(len(dist))   # the 4 nearest
            near = near[np.isfinite(dist[near])]
            if not len(near):
                continue
            carriers[q] = near, 1.0 / (dist[near] + 0.5)
    if carriers:
        _carry_queries(scene, queries, ts, carriers, out)
    return fill_with_flow(out, flow("fw"), flow("bw"), scene.width, scene.height)


def _carry_queries(scene, queries: np.ndarray, ts: np.ndarray, carriers: dict, out: np.ndarray) -> None:
    """Fill ``out[q]`` with the weighted mean displacement of each query's carrier Gaussians."""
    # the carriers' tracks once for all queries (per query, each would be a pass over every frame)
    used = np.unique(np.concatenate([near for near, _ in carriers.values()]))
    uv_used, _ = scene.tracks2d(used)
    for q, (near, wts) in carriers.items():
        uvn = uv_used[:, np.searchsorted(used, near)]
        disp = uvn - uvn[ts[q]][None]
        # weighted over the carriers present in each frame; NaN where none is (not a track frozen in place)
        w = np.where(np.isfinite(disp).all(2), wts[None], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[q] = queries[q, 1:] + np.nansum(disp * w[..., None], 1) / w.sum(1)[:, None]


def stage_tracks(ctx: StageContext) -> dict:
    """Every Gaussian is a track: per-frame pixel positions and world positions (``tracks.npz``, format
    ``vision3d-tracks/2``: rows per frame for the Gaussians of that frame; ``Tracks.load`` reads it); with
    ``--query-points``, the tracks of those pixels (``query_tracks``, ``query_source``)."""
    from vision3d.scene4d.tracks import Tracks

    scene = _scene(ctx.run_dir)
    extra, metrics = {}, {}
    qp = ctx.inputs.get("query_points")
    if qp:
        q = np.load(qp) if str(qp).endswith(".npy") else np.loadtxt(qp, ndmin=2)
        if q.ndim != 2 or q.shape[1] != 3:
            raise InputError(f"query points must be rows of (t, x, y), got shape {q.shape}", path=qp)
        tracks, source = query_tracks(scene, q, ctx.run_dir, ctx.config.query_method)
        extra = {"queries": q.astype(np.float32), "query_tracks": tracks, "query_source": source}
        metrics["query_frames_by_flow"] = float((source == 2).mean())
    tracks = Tracks.from_scene(scene, extra)
    tracks.save(ctx.out / "tracks.npz")
    return {"n_tracks": len(tracks.moving), "n_queries": len(extra.get("queries", [])),
            "rows": len(tracks.index), **metrics}


def stage_masks(ctx: StageContext) -> dict:
    """Per-frame moving-object masks (the moving Gaussians' rendered coverage); with a first-frame object mask,
    that object propagated through the video (``object/NNNNN.png``) by the backward flow, the labelled Gaussians
    or both (``vision3d.scene4d.segment``)."""
    scene = _scene(ctx.run_dir)
    fr = []
    for t in range(scene.n_frames):
        moving = scene.moving_at(t)
        a = _render(moving, scene.world_to_cam[t], scene.K, scene.width, scene.height).alpha[0].numpy() \
            if len(moving) else np.zeros((scene.height, scene.width), np.float32)
        _png_mask(ctx.out / f"{t:05d}.png", a > 0.5)
        fr.append(float((a > 0.5).mean()))
        ctx.progress(t + 1, scene.n_frames)
    if "mask" not in ctx.inputs:
        return {"moving_fraction": float(np.mean(fr)), "object": False}
    import cv2

    m = _read_mask(ctx.inputs["mask"])
    m = cv2.resize(m.astype(np.uint8), (scene.width, scene.height), interpolation=cv2.INTER_NEAREST) > 0
    (ctx.out / "object").mkdir()
    area = []
    for t, mask in enumerate(propagate_object(ctx.run_dir, scene, m, ctx.config)):
        _png_mask(ctx.out / "object" / f"{t:05d}.png", mask)
        area.append(float(mask.mean()))
    return {"moving_fraction": float(np.mean(fr)), "object": True, "object_fraction": float(np.mean(area))}


def propagate_object(run: Path, scene, mask0: np.ndarray, cfg: PropagateConfig):
    """Masks of the object given by ``mask0`` (frame 0, at the scene's size) in every frame of a run whose flow,
    split and scene stages are done (an iterator, a frame at a time)."""
    import functools

    from vision3d.flow.consistency import fb_occlusion
    from vision3d.scene4d.segment import propagate_mask

    def render(t: int, features: np.ndarray):
        out = _render(scene.gaussians_at(t), scene.world_to_cam[t], scene.K, scene.width, scene.height,
                      features=features)
        return out.features[0, ..., 0].numpy(), out.alpha[0].numpy(), out.depth[0].numpy()

    @functools.lru_cache(maxsize=1)          # read once per frame by the carry and the uncovered check
    def backward_flow(t: int) -> np.ndarray:
        return np.load(run / "flow" / f"bw_{t - 1:05d}.npy").astype(np.float32)

    def moving_mask(t: int) -> np.ndarray:
        return _read_mask(run / "split" / f"{t:05d}.png")

    def uncovered(t: int) -> np.ndarray:
        return fb_occlusion(backward_flow(t), np.load(run / "flow" / f"fw_{t - 1:05d}.npy").astype(np.float32))

    return propagate_mask(scene, mask0, render, backward_flow, moving_mask, cfg, uncovered)


def orbit_poses(scene, n: int, radius_frac: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """A novel-view path: while time runs through the video, the camera circles its input position at
    ``radius_frac`` of the scene's median depth, looking at the median-depth point. Returns ``(frame (n,),
    world_to_cam (n,4,4))``."""
    from vision3d.core.camera import look_at

    T = scene.n_frames
    ts = np.minimum((np.arange(n) * T) // n, T - 1)
    X = scene.params["means"][~scene.moving] if (~scene.moving).any() else scene.params["means"]
    V0 = scene.world_to_cam[0]
    depth = float(np.median(X @ V0[2, :3] + V0[2, 3])) if len(X) else 1.0
    depth = depth if np.isfinite(depth) and depth > 0 else 1.0
    out = []
    for k, t in enumerate(ts):
        c2w = np.linalg.inv(scene.world_to_cam[t])
        centre, R = c2w[:3, 3], c2w[:3, :3]
        target = centre + R[:, 2] * depth
        a = 2 * np.pi * k / n
        eye = centre + radius_frac * depth * (np.cos(a) * R[:, 0] + np.sin(a) * R[:, 1])
        out.append(look_at(eye, target, up=-R[:, 1]))
    return ts, np.stack(out)


def image_scores(pred, gt: np.ndarray) -> dict:
    """PSNR (dB) and SSIM (11×11 Gaussian window) of a rendered ``(H,W,3)`` image against the input frame."""
    import kornia
    import torch

    g = torch.as_tensor(gt, dtype=torch.float32)
    pred = torch.as_tensor(pred, dtype=torch.float32).clamp(0, 1)
    mse = float((pred - g).square().mean())
    ssim = float(kornia.metrics.ssim(pred.permute(2, 0, 1)[None], g.permute(2, 0, 1)[None], 11).mean())
    return {"psnr": -10 * float(np.log10(max(mse, 1e-10))), "ssim": ssim}


def stage_renders(ctx: StageContext) -> dict:
    """Re-rendered input (beside the input), novel-view orbit, depth and moving-mask videos; per-frame PSNR/SSIM
    of the re-render against the input frames."""
    from vision3d.depth.viz import depth_to_color
    from vision3d.io.atomic import write_json
    from vision3d.io.video import VideoWriter

    scene = _scene(ctx.run_dir)
    frames = _frame_paths(ctx.run_dir)
    fps = ctx.config.fps
    rows, depths = [], []
    with VideoWriter(ctx.out / "rerender.mp4", fps=fps) as vr, VideoWriter(ctx.out / "masks.mp4", fps=fps) as vm:
        for t in range(scene.n_frames):
            gt = _read_frame(frames[t])
            out = _render(scene.gaussians_at(t), scene.world_to_cam[t], scene.K, scene.width, scene.height)
            pred = out.colors[0].clamp(0, 1)
            rows.append({"frame": t, **image_scores(pred, gt)})
            vr.write(np.concatenate([gt, pred.numpy()], 1))
            mask = _read_mask(ctx.dep("masks") / f"{t:05d}.png")
            tint = gt.copy()
            tint[mask] = 0.5 * tint[mask] + 0.5 * np.array([1.0, 0.1, 0.1])
            vm.write(tint)
            depths.append(np.where(out.alpha[0].numpy() > 0.5, out.depth[0].numpy(), np.nan))
            ctx.progress(t + 1, scene.n_frames + ctx.config.orbit_frames)
    allv = np.concatenate([d[np.isfinite(d)] for d in depths]) if depths else np.ones(1)
    lo, hi = (float(np.percentile(1 / allv, 2)), float(np.percentile(1 / allv, 98))) if allv.size else (0.1, 1.0)
    with VideoWriter(ctx.out / "depth.mp4", fps=fps) as vd:
        for d in depths:
            vd.write(depth_to_color(d, "metric", lo=lo, hi=hi))
    ts, poses = orbit_poses(scene, ctx.config.orbit_frames)
    with VideoWriter(ctx.out / "novel_orbit.mp4", fps=fps) as vo:
        for k, (t, V) in enumerate(zip(ts, poses)):
            # the Gaussians of frame t, as in the re-render: adding every still Gaussian of the video (those born
            # for later views included) cost 3.6 dB on the synthetic clip's novel views (docs/results.md)
            out = _render(scene.gaussians_at(int(t)), V, scene.K, scene.width, scene.height)
            vo.write(out.colors[0].clamp(0, 1).numpy())
            ctx.progress(scene.n_frames + k + 1, scene.n_frames + ctx.config.orbit_frames)
    metrics = {"psnr": float(np.mean([r["psnr"] for r in rows])), "ssim": float(np.mean([r["ssim"] for r in rows])),
               "per_frame": rows}
    write_json(ctx.out / "metrics.json", metrics)
    return {"psnr": metrics["psnr"], "ssim": metrics["ssim"], "frames": scene.n_frames}


def gflow_config(c: SceneConfig):
    """The GFlow settings a scene config stands for: its preset, iterations scaled, overrides applied."""
    from vision3d.scene4d.config import GFlowConfig

    return GFlowConfig.preset(c.preset).scaled(c.iterations).replace(**c.overrides)


def video2scene_stages(c: Video2SceneConfig) -> list[Stage]:
    """The job's stages (other jobs, such as the demo, append their own)."""
    return [
        Stage("frames", stage_frames, c.frames, files=["video"], outputs=["frames.json"]),
        Stage("flow", stage_flow, c.flow, deps=["frames"]),
        Stage("depth", stage_depth, c.depth, deps=["frames"], outputs=["depth.json"]),
        Stage("split", stage_split, c.split, deps=["flow"], version=2),   # 2: model chosen over neighbouring frames
        Stage("scene", stage_scene, c.scene, deps=["frames", "flow", "depth", "split"], version=2,
              outputs=["scene4d.npz"], resolved=gflow_config(c.scene)),   # 2: newborns start half-seen
        Stage("cameras", stage_cameras, None, deps=["scene"],
              outputs=["trajectory_tum.txt", "transforms.json", "colmap"]),
        Stage("tracks", stage_tracks, c.tracks, deps=["scene", "flow"], version=3,  # 3: query tracks continued by flow
              files=["query_points"] if c.outputs.query_points else [], outputs=["tracks.npz"]),
        Stage("masks", stage_masks, c.masks, deps=["scene", "flow", "split"], version=2,  # 2: propagation methods
              files=["mask"] if c.outputs.mask else []),
        Stage("renders", stage_renders, c.renders, deps=["scene", "masks"],
              outputs=["rerender.mp4", "novel_orbit.mp4", "depth.mp4", "metrics.json"]),
    ]


def video2scene_inputs(video: str | Path, c: Video2SceneConfig) -> dict:
    inputs = {"video": video}
    if c.outputs.query_points:
        inputs["query_points"] = c.outputs.query_points
    if c.outputs.mask:
        inputs["mask"] = c.outputs.mask
    return inputs


def run_video2scene(video: str | Path, out: str | Path, config: Video2SceneConfig | None = None, force=None,
                    progress: ProgressFn | None = None) -> RunResult:
    """Run (or resume) the whole job; returns the runner's result (manifest with every stage's metrics)."""
    from vision3d.depth.registry import check_method as check_depth
    from vision3d.flow.registry import check_method as check_flow
    from vision3d.scene4d.config import GFlowConfig

    c = config or Video2SceneConfig()
    check_flow(c.flow.method)           # a typo fails now, not after minutes of decoding and flow
    check_depth(c.depth.method, c.depth.source)
    GFlowConfig.preset(c.scene.preset)
    return Runner(out, "video2scene", progress).run(video2scene_stages(c), video2scene_inputs(video, c), force=force)
