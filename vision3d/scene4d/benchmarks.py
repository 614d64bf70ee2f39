"""The video → 4D evaluations of the issue, each a full ``video2scene`` run on real data scored with the paper's
metric: DAVIS (re-render PSNR/SSIM of the input frames, J&F of propagating the first-frame annotation),
TartanAir (ATE/RPE after a similarity alignment, with the geometric prior or the imported GT depth), and the
shipped synthetic clip (trajectory, depth, tracks against exact ground truth)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from vision3d.errors import InputError


def _run(video: Path, run_dir: Path, cfg, progress=None) -> tuple[dict, float]:
    from pipelines.video2scene import run_video2scene

    tic = time.perf_counter()
    res = run_video2scene(video, run_dir, cfg, progress=progress)
    stages = res.manifest["stages"]
    seconds = sum(float(stages[s].get("seconds", 0.0)) for s in stages)
    return res.manifest["metrics"], seconds if seconds > 0 else time.perf_counter() - tic


def eval_davis(seq: Path, annotations: Path, run_dir: Path, cfg, progress=None) -> dict:
    """Re-render PSNR/SSIM and mask propagation J&F (mean over frames 1..T-1, the DAVIS protocol)."""
    anns = sorted(annotations.glob("*.png"))
    if not anns:
        raise InputError("no annotation PNGs", path=annotations)
    cfg.outputs.mask = str(anns[0])
    m, secs = _run(seq, run_dir, cfg, progress)
    T, w, h = m["frames.n_frames"], m["frames.width"], m["frames.height"]
    masks = {"": run_dir / "masks" / "object"}
    for method in ("flow", "gaussians", "fused"):       # every propagation method on the same fit, beside the run's
        if method != cfg.masks.method:
            masks[f"_{method}"] = _propagated(run_dir, anns[0], method)
    out = {"frames": T, "size": f"{w}x{h}", "psnr": m["renders.psnr"], "ssim": m["renders.ssim"],
           "mask_method": cfg.masks.method, "seconds": secs, "gaussians": m["scene.n_gaussians"]}
    for suffix, pred in masks.items():
        out.update({k + suffix: v for k, v in mask_scores(pred, anns, T).items()})
    for method in ("flow", "gaussians"):
        out[f"track_on_object_{method}"] = track_on_object(run_dir, anns, method)
    return out


def track_on_object(run_dir: Path, anns: list[Path], method: str, n: int = 100) -> float:
    """A tracking check without point ground truth: ``n`` query points drawn (seeded) inside the first annotation
    (eroded by 2 px) are tracked with ``method``; the share of them tracked and inside the annotation, averaged
    over frames 1..T-1 (1 = every track stays on the object)."""
    from pipelines.video2scene import query_tracks
    from vision3d.scene4d.scene import Scene4D

    scene = Scene4D.load(run_dir)
    w, h, T = scene.width, scene.height, min(scene.n_frames, len(anns))
    gts = [cv2.resize((cv2.imread(str(a), cv2.IMREAD_GRAYSCALE) > 127).astype(np.uint8), (w, h),
                      interpolation=cv2.INTER_NEAREST) > 0 for a in anns[:T]]
    ys, xs = np.nonzero(cv2.erode(gts[0].astype(np.uint8), np.ones((5, 5), np.uint8)))
    if not len(xs):
        return float("nan")
    k = np.random.default_rng(0).choice(len(xs), min(n, len(xs)), replace=False)
    q = np.stack([np.zeros(len(k)), xs[k], ys[k]], 1).astype(np.float32)
    tr, _ = query_tracks(scene, q, run_dir, method)
    share = []
    for t in range(1, T):
        ok = np.isfinite(tr[:, t]).all(1)
        p = np.round(np.nan_to_num(tr[:, t])).astype(int)
        on = ok & (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
        on[on] = gts[t][p[on, 1], p[on, 0]]
        share.append(on.mean())
    return float(np.mean(share))


def _propagated(run_dir: Path, first: Path, method: str) -> list[np.ndarray]:
    """The first annotation propagated through a finished run with another method (``masks`` stage's)."""
    from pipelines.video2scene import propagate_object
    from vision3d.scene4d.scene import Scene4D
    from vision3d.scene4d.segment import PropagateConfig

    scene = Scene4D.load(run_dir)
    m = cv2.imread(str(first), cv2.IMREAD_GRAYSCALE) > 127
    m = cv2.resize(m.astype(np.uint8), (scene.width, scene.height), interpolation=cv2.INTER_NEAREST) > 0
    return list(propagate_object(run_dir, scene, m, PropagateConfig(method=method)))


def mask_scores(pred: Path | list[np.ndarray], anns: list[Path], n_frames: int) -> dict:
    """DAVIS J (region IoU), F (contour accuracy) and their mean over frames 1..T-1 of propagated masks (a folder
    of ``NNNNN.png`` or a list of arrays) against annotations resized to the masks' size."""
    from vision3d.scene4d.metrics import contour_accuracy, region_similarity

    J, F = [], []
    for t in range(1, min(n_frames, len(anns))):
        p = pred[t] if isinstance(pred, list) else cv2.imread(str(pred / f"{t:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
        gt = cv2.imread(str(anns[t]), cv2.IMREAD_GRAYSCALE)
        gt = cv2.resize((gt > 127).astype(np.uint8), p.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        J.append(region_similarity(p, gt))
        F.append(contour_accuracy(p, gt))
    j, f = float(np.mean(J)), float(np.mean(F))
    return {"J": j, "F": f, "JF": (j + f) / 2}


def eval_tartanair(root: Path, run_dir: Path, cfg, depth: str = "geometric", progress=None) -> dict:
    """ATE / RPE of the recovered cameras against TartanAir's, after a similarity alignment; ``depth`` is the
    prior (``geometric``, a learned model, or ``import`` = the GT depth maps, to separate the prior's error)."""
    from vision3d.io.cameras import read_tartanair_poses
    from vision3d.scene4d.metrics import trajectory_errors
    from vision3d.scene4d.scene import Scene4D

    frames = sorted((root / "image_left").glob("*.png"))
    gt = read_tartanair_poses(root / "pose_left.txt")
    cfg.depth.method = depth
    if depth == "import":
        cfg.depth.source, cfg.depth.kind = str(root / "depth_left"), "metric"
    s = cfg.frames.short_side / 480.0              # TartanAir: 640×480, f = 320, principal point at the centre
    cfg.scene.K = (320.0 * s, 320.0 * s, (320 + 0.5) * s - 0.5, (240 + 0.5) * s - 0.5)
    m, secs = _run(root / "image_left", run_dir, cfg, progress)
    scene = Scene4D.load(run_dir)
    T = scene.n_frames
    err = trajectory_errors(np.linalg.inv(scene.world_to_cam), gt.cam_to_world[:T])
    path = float(np.linalg.norm(np.diff(gt.cam_to_world[:T, :3, 3], axis=0), axis=1).sum())
    return {"frames": T, "depth": depth, **{k: err[k] for k in ("ate", "rpe_t", "rpe_r")}, "path_length": path,
            "psnr": m["renders.psnr"], "ssim": m["renders.ssim"], "seconds": secs, "frames_used": len(frames)}


def eval_synth(sample: Path, run_dir: Path, cfg, depth: str = "geometric", progress=None) -> dict:
    """The demo clip: trajectory, depth and track errors against its exact ground truth, and novel views of every
    fourth frame against the true scene rendered there; ``depth="import"`` gives GFlow the true depth maps (to
    separate the prior's error from the fit's)."""
    from vision3d.io.atomic import atomic_path
    from vision3d.scene4d.evaluate import evaluate_scene, novel_view_scores
    from vision3d.scene4d.scene import Scene4D
    from vision3d.synth.sample import load_sample_gt, load_sample_scene

    gt = load_sample_gt(sample / "gt.npz")
    cfg.depth.method = depth
    if depth == "import":
        folder = run_dir.parent / f"{run_dir.name}_gt_depth"
        folder.mkdir(parents=True, exist_ok=True)
        for t, d in enumerate(gt["depth"]):
            with atomic_path(folder / f"{t:05d}.npy") as tmp:
                np.save(tmp, d.astype(np.float32))
        cfg.depth.source, cfg.depth.kind = str(folder), "metric"
    m, secs = _run(sample / "clip.mp4", run_dir, cfg, progress)
    scene = Scene4D.load(run_dir)
    e = evaluate_scene(scene, gt)
    e.update(novel_view_scores(scene, load_sample_scene(sample), frames=range(0, scene.n_frames, 4)))
    return {"frames": m["frames.n_frames"], "depth": depth, "psnr": m["renders.psnr"], "ssim": m["renders.ssim"],
            **e, "seconds": secs}
