"""Scoring a 4D scene against exact ground truth (synthetic clips): camera trajectory (ATE/RPE after a
similarity alignment), rendered depth (abs_rel after median scaling) and 2D tracks (end-point error of the
Gaussians' projected motion against the true flow, per step and chained over the whole clip)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vision3d.render import rasterize
from vision3d.scene4d.metrics import trajectory_errors
from vision3d.scene4d.scene import Scene4D


def _resize_flow(flow: np.ndarray, w: int, h: int) -> np.ndarray:
    sx, sy = w / flow.shape[2], h / flow.shape[1]
    return np.stack([cv2.resize(flow[0], (w, h), interpolation=cv2.INTER_LINEAR) * sx,
                     cv2.resize(flow[1], (w, h), interpolation=cv2.INTER_LINEAR) * sy])


def evaluate_scene(scene: Scene4D, gt: dict) -> dict:
    """``gt``: ``world_to_cam (T,4,4)``, ``depth (T,H,W)`` metric, ``flow_fw (T-1,2,H,W)``, ``occ_fw (T-1,H,W)``
    at the ground truth's own resolution (rescaled here to the scene's)."""
    T, w, h = scene.n_frames, scene.width, scene.height
    gt_c2w = np.linalg.inv(np.asarray(gt["world_to_cam"], np.float64)[:T])
    out = trajectory_errors(np.linalg.inv(scene.world_to_cam), gt_c2w)
    out["path_length_gt"] = float(np.linalg.norm(np.diff(gt_c2w[:, :3, 3], axis=0), axis=1).sum())
    rels, const, rendered = [], [], []
    K = torch.as_tensor(scene.K, dtype=torch.float32)[None]
    for t in range(T):
        V = torch.as_tensor(scene.world_to_cam[t], dtype=torch.float32)[None]
        with torch.no_grad():
            r = rasterize(scene.gaussians_at(t), (V, K), w, h, mode="depth")
        d, a = r.depth[0].numpy(), r.alpha[0].numpy()
        rendered.append(d)
        g = cv2.resize(np.asarray(gt["depth"][t], np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
        ok = (a > 0.5) & (d > 0) & np.isfinite(g) & (g > 0)
        if ok.sum() > 10:
            s = np.median(g[ok]) / np.median(d[ok])
            rels.append(float(np.mean(np.abs(d[ok] * s - g[ok]) / g[ok])))
            const.append(float(np.mean(np.abs(np.median(g[ok]) - g[ok]) / g[ok])))
    out["depth_abs_rel"] = float(np.mean(rels)) if rels else float("nan")
    out["depth_abs_rel_constant"] = float(np.mean(const)) if const else float("nan")
    steps, zero = [], []
    X_next = scene.positions_at(0)
    for t in range(T - 1):                  # a frame's positions at a time: memory flat in the video's length
        X_t, X_next = X_next, scene.positions_at(t + 1)
        (p0, f0), (p1, f1) = scene.project(t, X_t), scene.project(t + 1, X_next)
        f = _resize_flow(np.asarray(gt["flow_fw"][t], np.float32), w, h)
        occ = cv2.resize(np.asarray(gt["occ_fw"][t], np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        ok = f0 & f1 & np.isfinite(p0).all(1) & np.isfinite(p1).all(1)
        ok &= (p0[:, 0] >= 0) & (p0[:, 0] <= w - 1) & (p0[:, 1] >= 0) & (p0[:, 1] <= h - 1)
        xi, yi = np.round(np.nan_to_num(p0[:, 0])).astype(int), np.round(np.nan_to_num(p0[:, 1])).astype(int)
        xi, yi = np.clip(xi, 0, w - 1), np.clip(yi, 0, h - 1)
        ok &= ~occ[yi, xi]
        # only Gaussians on the visible surface carry the pixel's motion: compare against the rendered depth
        V = scene.world_to_cam[t]
        z = np.nan_to_num(X_t @ V[2, :3] + V[2, 3], nan=np.inf)
        ok &= z <= rendered[t][yi, xi] * 1.05
        if ok.sum() < 5:
            continue
        gtf = f[:, yi[ok], xi[ok]].T
        steps.append(float(np.linalg.norm((p1[ok] - p0[ok]) - gtf, axis=1).mean()))
        zero.append(float(np.linalg.norm(gtf, axis=1).mean()))
    out["track_epe_step"] = float(np.mean(steps)) if steps else float("nan")
    out["track_epe_step_zero"] = float(np.mean(zero)) if zero else float("nan")
    return out
