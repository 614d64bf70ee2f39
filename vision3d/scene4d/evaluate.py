"""Scoring a 4D scene against exact ground truth (synthetic clips): camera trajectory (ATE/RPE after a
similarity alignment), rendered depth (abs_rel after median scaling), 2D tracks (end-point error of the
Gaussians' projected motion against the true flow, per step and chained over the whole clip) and, where the
synthetic scene itself is at hand, novel views (the true scene rendered from cameras moved off the input ones)."""

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


NOVEL_DIRECTIONS = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0]])


def _masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(-10 * np.log10(max(float(np.mean((np.clip(a[mask], 0, 1) - b[mask]) ** 2)), 1e-10)))


def _covisible(D_new: np.ndarray, V_new: np.ndarray, D_in: np.ndarray, V_in: np.ndarray, K: np.ndarray,
               tol: float = 0.02) -> np.ndarray:
    """Pixels of a view (true depth ``D_new``, pose ``V_new``) whose surface point the input camera ``V_in`` (true
    depth ``D_in``) sees too: in its image and within ``tol`` of its depth there (DyCheck's co-visibility)."""
    h, w = D_new.shape
    ys, xs = np.mgrid[0:h, 0:w]
    z = np.where(np.isfinite(D_new), D_new, 0.0)
    cam = np.stack([(xs - K[0, 2]) / K[0, 0] * z, (ys - K[1, 2]) / K[1, 1] * z, z], -1).reshape(-1, 3)
    M = V_in @ np.linalg.inv(V_new)
    q = cam @ M[:3, :3].T + M[:3, 3]
    zq = q[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.round(q[:, 0] / zq * K[0, 0] + K[0, 2])
        v = np.round(q[:, 1] / zq * K[1, 1] + K[1, 2])
    ok = (z.reshape(-1) > 0) & (zq > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    ui, vi = np.where(ok, u, 0).astype(int), np.where(ok, v, 0).astype(int)
    d = D_in[vi, ui]
    ok &= np.isfinite(d) & (np.abs(d - zq) <= tol * zq)
    return ok.reshape(h, w)


def novel_view_scores(scene: Scene4D, spec, shifts=(0.05, 0.1), frames=None) -> dict:
    """PSNR of views the video never showed: each input camera moved sideways and up/down by ``shifts`` × the
    frame's median true depth (four directions, same orientation), the scene rendered there against the true
    scene (``spec``, a ``vision3d.synth`` ``SceneSpec``) rendered there, over the pixels the input camera saw
    (co-visible, as DyCheck scores monocular novel views: what was never seen cannot be known). The move is
    expressed in the reconstruction's units through the frame's depth scale (median true / median rendered
    depth), so this scores the 3D structure seen from camera ``t``, not the trajectory's drift (ATE does that).
    Two renders are scored: the Gaussians of frame ``t`` (``novel_psnr_*``, what the re-render shows) and every
    still Gaussian of the video with frame ``t``'s moving ones (``novel_all_psnr_*``, what the orbit video
    shows); the peer is the input frame itself, as if the view had not moved (``novel_static_psnr_*``).
    ``novel_covisible_*``: the share of pixels scored. The scene's own intrinsics are used for its renders."""
    from vision3d.core.camera import Camera, resized_intrinsics
    from vision3d.synth.render import render_frame

    w, h = scene.width, scene.height
    Kg = resized_intrinsics(spec.K, w / spec.width, h / spec.height)
    K = torch.as_tensor(scene.K, dtype=torch.float32)[None]

    def render(g, V: np.ndarray):
        with torch.no_grad():
            r = rasterize(g, (torch.as_tensor(V, dtype=torch.float32)[None], K), w, h,
                          background=torch.zeros(3))
        return r.colors[0].numpy(), r.depth[0].numpy(), r.alpha[0].numpy()

    def truth(t: int, V: np.ndarray):
        f = render_frame(spec, t, Camera(Kg, V, w, h))
        img = f.image[..., :3].astype(np.float32)
        return (img / 255.0 if f.image.dtype == np.uint8 else img), f.depth

    scores: dict[str, list[float]] = {}
    for t in (range(scene.n_frames) if frames is None else frames):
        g_t, g_all = scene.gaussians_at(t), scene.gaussians_at(t, born_by_t=False)
        V, Vg = scene.world_to_cam[t], np.asarray(spec.world_to_cam[t], np.float64)
        img0, d, a = render(g_t, V)
        gt0, D = truth(t, Vg)
        ok = (a > 0.5) & (d > 0) & np.isfinite(D) & (D > 0)
        if ok.sum() < 10:
            continue
        s = float(np.median(D[ok]) / np.median(d[ok]))
        scores.setdefault("novel_psnr_0", []).append(_masked_psnr(img0, gt0, np.ones_like(ok)))
        for m in shifts:
            for u in NOVEL_DIRECTIONS:
                delta = m * float(np.median(D[np.isfinite(D)])) * u          # camera moves by +delta (its axes)
                T_gt, T_rec = np.eye(4), np.eye(4)
                T_gt[:3, 3], T_rec[:3, 3] = -delta, -delta / s
                want, D_new = truth(t, T_gt @ Vg)
                seen = _covisible(D_new, T_gt @ Vg, D, Vg, Kg)
                if seen.sum() < 10:
                    continue
                for key, g in (("novel_psnr", g_t), ("novel_all_psnr", g_all)):
                    scores.setdefault(f"{key}_{m:g}", []).append(_masked_psnr(render(g, T_rec @ V)[0], want, seen))
                scores.setdefault(f"novel_static_psnr_{m:g}", []).append(_masked_psnr(gt0, want, seen))
                scores.setdefault(f"novel_covisible_{m:g}", []).append(float(seen.mean()))
    return {k: float(np.mean(v)) for k, v in scores.items()}
