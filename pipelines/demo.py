"""The demo job on the shipped synthetic clip: decode → flow (DIS) → evaluate against exact GT → I/O round trip.

It exercises what vision3d has today end to end on a sample that ships with the repo; the video → 4D job
will replace it as the demo once it exists (issue 6).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision3d.runner import ProgressFn, Runner, RunResult, Stage, StageContext

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "assets" / "samples" / "synth_clip"


@dataclass
class DecodeConfig:
    max_side: int = 512


@dataclass
class FlowConfig:
    method: str = "dis"
    preset: str = "medium"


def stage_decode(ctx: StageContext) -> dict:
    """Stream the clip's frames to PNGs (random access for later stages) and record what the video is."""
    from vision3d.core.frames import open_frames
    from vision3d.io.atomic import write_json
    from vision3d.io.images import write_image

    frames = open_frames(ctx.inputs["video"], max_side=ctx.config.max_side)
    (ctx.out / "frames").mkdir()
    n = len(frames)
    for i, f in enumerate(frames):
        write_image(ctx.out / "frames" / f"{i:05d}.png", f)
        ctx.progress(i + 1, n)
    write_json(ctx.out / "video.json", frames.describe())
    return {"frames": n, "width": frames.width, "height": frames.height}


def stage_flow(ctx: StageContext) -> dict:
    """Forward flow for every consecutive pair: ``.flo`` files, colour-wheel PNGs and an MP4."""
    import time

    from vision3d.core.frames import open_frames
    from vision3d.flow.classical import dis_flow, farneback_flow
    from vision3d.flow.viz import flow_to_color
    from vision3d.io.flow import write_flow
    from vision3d.io.images import write_image
    from vision3d.io.video import VideoWriter

    frames = open_frames(ctx.dep("decode") / "frames")
    cfg = ctx.config
    estimate = (lambda a, b: dis_flow(a, b, cfg.preset)) if cfg.method == "dis" else farneback_flow
    (ctx.out / "vis").mkdir()
    n, seconds = len(frames) - 1, 0.0
    with VideoWriter(ctx.out / "flow.mp4", fps=min(frames.fps, 10)) as video:
        for t, a, b in frames.pairs():
            t0 = time.perf_counter()
            flow = estimate(a, b)
            seconds += time.perf_counter() - t0
            write_flow(ctx.out / f"{t:05d}.flo", flow)
            vis = flow_to_color(flow)
            write_image(ctx.out / "vis" / f"{t:05d}.png", vis)
            video.write(np.concatenate([a, vis], axis=1))
            ctx.progress(t + 1, n)
    return {"pairs": n, "ms_per_pair": 1000 * seconds / max(n, 1)}


def stage_evaluate(ctx: StageContext) -> dict:
    """Compare the estimated flow with the exact ground truth (all pixels and non-occluded pixels)."""
    from vision3d.flow.metrics import flow_metrics
    from vision3d.io.atomic import write_json
    from vision3d.io.flow import read_flow
    from vision3d.synth.sample import load_sample_gt

    gt = load_sample_gt(ctx.inputs["gt"])
    flows, occ = gt["flow_fw"], gt["occ_fw"]
    rows = []
    for t in range(len(flows)):
        pred = read_flow(ctx.dep("flow") / f"{t:05d}.flo").flow
        rows.append({"pair": t, **{f"{k}_all": v for k, v in flow_metrics(pred, flows[t]).items()},
                     **{f"{k}_noc": v for k, v in flow_metrics(pred, flows[t], ~occ[t]).items()},
                     "epe_zero_flow": flow_metrics(np.zeros_like(pred), flows[t])["epe"]})
        ctx.progress(t + 1, len(flows))
    write_json(ctx.out / "per_pair.json", rows)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("epe_all", "epe_noc", "px1_all", "px3_all",
                                                               "flall_all", "epe_zero_flow")}
    return mean


def stage_roundtrip(ctx: StageContext) -> dict:
    """Write and re-read every format the demo's data fits: flow, depth, cameras and frame-0 Gaussians."""
    from vision3d.core import Cameras, DepthMap, FlowField, Gaussians
    from vision3d.io import cameras as camio
    from vision3d.io.depth import read_depth, write_depth
    from vision3d.io.flow import read_flow, write_flow
    from vision3d.io.images import read_image
    from vision3d.io.splats import read_splats, write_splats
    from vision3d.synth.sample import load_sample_gt

    gt = load_sample_gt(ctx.inputs["gt"])
    cams = Cameras(gt["K"], gt["world_to_cam"], gt["width"], gt["height"])
    out, err = ctx.out, {}
    flow = FlowField(gt["flow_fw"][0])
    for ext, tol in ((".flo", 0.0), (".npy", 0.0), (".png", 1 / 64)):
        back = read_flow(write_flow(out / f"flow0{ext}", flow))
        err[f"flow{ext}"] = float(np.abs(back.flow - flow.flow).max())
        if err[f"flow{ext}"] > tol + 1e-6:
            raise RuntimeError(f"flow {ext} round trip is off by {err[f'flow{ext}']:.3g} px")
    depth = DepthMap(gt["depth"][0])
    for ext in (".npy", ".pfm", ".png"):
        back = read_depth(write_depth(out / f"depth0{ext}", depth, scale=1000.0))  # png records its scale
        err[f"depth{ext}"] = float(np.nanmax(np.abs(back.depth - depth.depth)))
    ctx.progress(1, 3)
    c2w = cams.cam_to_world
    camio.write_tum_trajectory(out / "trajectory_tum.txt", c2w)
    _, c2w_back = camio.read_tum_trajectory(out / "trajectory_tum.txt")
    err["tum"] = float(np.abs(c2w_back - c2w).max())
    camio.write_colmap(out / "colmap", cams)
    err["colmap"] = float(max(np.abs(c.world_to_cam - w).max() for c, w in
                              zip(camio.read_colmap(out / "colmap"), cams.world_to_cam)))
    camio.write_transforms(out / "transforms.json", cams)
    err["transforms"] = float(np.abs(camio.read_transforms(out / "transforms.json").world_to_cam
                                     - cams.world_to_cam).max())
    ctx.progress(2, 3)
    # Frame 0 as Gaussians: one per pixel, unprojected with the exact depth (a splat file any viewer opens).
    img = read_image(ctx.dep("decode") / "frames" / "00000.png")
    h, w = depth.shape
    ys, xs = np.mgrid[0:h:2, 0:w:2]
    px = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    z = depth.depth[ys.ravel(), xs.ravel()]
    pts = cams.unproject(0, px, z)
    g = Gaussians.from_points(pts, img[ys.ravel(), xs.ravel()], scale=(z * 1.2 / cams.K[0, 0, 0]), opacity=0.95)
    for ext in (".ply", ".splat"):
        back = read_splats(write_splats(out / f"frame0{ext}", g))
        err[f"splats{ext}"] = float(np.abs(back.means - g.means).max())
    (out / "errors.json").write_text(json.dumps(err, indent=2))
    ctx.progress(3, 3)
    return {"max_roundtrip_error": max(err.values()), "gaussians": len(g)}


def demo_stages() -> list[Stage]:
    return [
        Stage("decode", stage_decode, DecodeConfig(), files=["video"], outputs=["video.json"]),
        Stage("flow", stage_flow, FlowConfig(), deps=["decode"], outputs=["flow.mp4"]),
        Stage("evaluate", stage_evaluate, deps=["flow"], files=["gt"], outputs=["per_pair.json"]),
        Stage("roundtrip", stage_roundtrip, deps=["decode"], files=["gt"], outputs=["frame0.ply", "errors.json"]),
    ]


def run_demo(run_dir: str | Path, force: str | None = None, progress: ProgressFn | None = None,
             sample: Path = SAMPLE) -> RunResult:
    """Run the demo job on ``sample`` (a folder with ``clip.mp4`` and ``gt.npz``) into ``run_dir``."""
    from vision3d.errors import InputError

    if not (sample / "clip.mp4").is_file() or not (sample / "gt.npz").is_file():
        raise InputError("sample clip is missing", path=sample, fix="restore assets/ from git")
    inputs = {"video": sample / "clip.mp4", "gt": sample / "gt.npz"}
    return Runner(run_dir, "demo", progress).run(demo_stages(), inputs, force=force)
