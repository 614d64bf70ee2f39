"""Training-free depth for a moving camera: dense flow + two-view geometry, scale-consistent over a video.

Per frame ``t`` partners ahead and behind at growing offsets are used until the median angle between the
triangulated rays reaches ``target_parallax_deg`` (flow magnitude alone is fooled by rotation), and all
their depth maps are fused in inverse depth (short baselines measure near objects, long ones far ones; what
leaves the view on one side is seen on the other); dense
DIS flow both ways gives correspondences, forward–backward consistent ones feed a RANSAC essential matrix
(OpenCV, known or guessed intrinsics) and ``recoverPose``; every consistent pixel is triangulated in closed
form. Pixels are unreliable where the rays are nearly parallel (low parallax), where the flow disagrees
with the epipolar geometry (Sampson error: moving objects) or where the flow fails its consistency check;
the confidence map says so and the holes are filled by confidence-weighted push–pull interpolation in
inverse depth. Each frame's unknown scale is chained to the previous frame's by the median depth ratio at
flow-matched confident pixels, so the whole video shares one (unknown) scale: the output kind is
``relative`` (metric up to one global factor).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision3d.core.camera import resized_intrinsics
from vision3d.core.parallel import default_workers, ordered_map
from vision3d.errors import InputError
from vision3d.flow.classical import dis_flow, gray_u8
from vision3d.flow.consistency import fb_occlusion


@dataclass
class GeometricConfig:
    target_parallax_deg: float = 2.0  # stop searching partners once the median ray angle reaches this
    offsets: tuple[int, ...] = (2, 4, 8, 12, 16)  # partner offsets tried (ahead; behind near the end)
    sampson_px: float = 1.5  # epipolar error above this → moving / unreliable
    min_parallax_deg: float = 0.5  # ray angles below this → unreliable
    focal_guess: float = 1.0  # focal = focal_guess · max(W, H) when K is not given (~53° horizontal FoV)
    ransac_px: float = 1.0
    keep_confidence: float = 0.5  # below this the filled (smoothed) inverse depth replaces the raw value
    flow_preset: str = "medium"
    workers: int = 0  # frames processed in parallel; 0: one per CPU core
    # videos with at least this many pixels in all run in worker processes when there are 4 workers or more (the
    # pose refinement and much of the geometry hold the GIL: threads gave 1.4× on 16 cores); else threads
    process_pixels: int = 4_000_000
    # frames whose short side is larger are measured at this short side and the result resized back (0: never):
    # the flow, RANSAC and triangulation cost grows with the pixels, while a depth prior needs the shape
    work_short_side: int = 0


@dataclass
class TwoView:
    depth: np.ndarray  # (H,W) z-depth in the pair's unit baseline, NaN where not triangulated
    confidence: np.ndarray  # (H,W) in [0,1]
    flow: np.ndarray  # (2,H,W) flow to the partner
    inliers: float  # RANSAC inlier fraction
    parallax: float  # median ray angle (degrees) of the triangulated pixels


def guess_K(width: int, height: int, focal_guess: float = 1.0) -> np.ndarray:
    f = focal_guess * max(width, height)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])


def _apply_h(M: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``M @ [x, y, 1]`` for points ``(N,2)`` as three component arrays (elementwise work on whole columns is
    several times faster than ``(N,3) @ (3,3)`` products and row sums, and releases the GIL for threads)."""
    px, py = x[:, 0], x[:, 1]
    return tuple(M[i, 0] * px + M[i, 1] * py + M[i, 2] for i in range(3))


def _sampson(F: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Sampson distance (px²) of correspondences ``(N,2)`` under the fundamental matrix ``F``."""
    a0, a1, a2 = _apply_h(F, x0)
    b0, b1, _ = _apply_h(F.T, x1)
    num = (x1[:, 0] * a0 + x1[:, 1] * a1 + a2) ** 2
    return num / (a0 * a0 + a1 * a1 + b0 * b0 + b1 * b1 + 1e-12)


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


def refine_pose(R: np.ndarray, t: np.ndarray, x0: np.ndarray, x1: np.ndarray, K: np.ndarray,
                max_points: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares refinement of a relative pose (5 DoF) on all RANSAC inliers, minimising the Sampson
    error; the minimal-sample estimate alone leaves a rotation/translation bias that small baselines amplify."""
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    if len(x0) < 8:
        return R, t
    step = max(1, len(x0) // max_points)
    a, b = x0[::step], x1[::step]
    Kinv = np.linalg.inv(K)
    h0, h1 = np.c_[a, np.ones(len(a))], np.c_[b, np.ones(len(b))]

    def residual(p):
        Rm = Rotation.from_rotvec(p[:3]).as_matrix()
        tv = p[3:] / max(np.linalg.norm(p[3:]), 1e-12)
        F = Kinv.T @ _skew(tv) @ Rm @ Kinv
        Fx0, Ftx1 = h0 @ F.T, h1 @ F
        num = np.sum(h1 * Fx0, 1)
        return num / np.sqrt(Fx0[:, 0] ** 2 + Fx0[:, 1] ** 2 + Ftx1[:, 0] ** 2 + Ftx1[:, 1] ** 2 + 1e-12)

    p0 = np.r_[Rotation.from_matrix(R).as_rotvec(), t]
    sol = least_squares(residual, p0, loss="huber", f_scale=1.0, max_nfev=50)
    tv = sol.x[3:] / max(np.linalg.norm(sol.x[3:]), 1e-12)
    return Rotation.from_rotvec(sol.x[:3]).as_matrix(), tv


def _triangulate(R: np.ndarray, t: np.ndarray, x0: np.ndarray, x1: np.ndarray, Kinv: np.ndarray):
    """Closed-form two-ray triangulation ``d0·R r0 + t = d1·r1`` (least squares): depths along the rays
    (z-depth for ``d0``, since r0 has z = 1), and the angle between the rays in degrees."""
    a = _apply_h(R @ Kinv, x0)                       # R r0
    r1 = _apply_h(Kinv, x1)
    aa = a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
    bb = r1[0] * r1[0] + r1[1] * r1[1] + r1[2] * r1[2]
    ab = a[0] * r1[0] + a[1] * r1[1] + a[2] * r1[2]
    at = a[0] * t[0] + a[1] * t[1] + a[2] * t[2]
    bt = r1[0] * t[0] + r1[1] * t[1] + r1[2] * t[2]
    det = aa * bb - ab * ab
    with np.errstate(divide="ignore", invalid="ignore"):
        d0 = (-bb * at + ab * bt) / det
        d1 = (aa * bt - ab * at) / det
        cosang = ab / np.sqrt(aa * bb)
    return d0, d1, np.degrees(np.arccos(np.clip(cosang, -1, 1)))


def _in_front(R, t, x0, x1, Kinv) -> int:
    d0, d1, _ = _triangulate(R, t, x0[::10], x1[::10], Kinv)
    return int(np.sum((d0 > 0) & (d1 > 0)))


def two_view_depth(img0: np.ndarray, img1: np.ndarray, K: np.ndarray, cfg: GeometricConfig,
                   rng: np.random.Generator) -> TwoView | None:
    """Depth of ``img0`` from the pair (unit baseline); None when the geometry cannot be estimated."""
    h, w = img0.shape[:2]
    fw = dis_flow(img0, img1, cfg.flow_preset)
    bw = dis_flow(img1, img0, cfg.flow_preset)
    occ = fb_occlusion(fw, bw)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    x0 = np.stack([xs.ravel(), ys.ravel()], 1)
    x1 = x0 + fw.reshape(2, -1).T
    inside = (x1[:, 0] >= 0) & (x1[:, 0] <= w - 1) & (x1[:, 1] >= 0) & (x1[:, 1] <= h - 1)
    good = (~occ.ravel()) & inside
    idx = np.flatnonzero(good)
    if len(idx) < 50:
        return None
    pick = rng.choice(idx, size=min(len(idx), 6000), replace=False)
    E, mask = cv2.findEssentialMat(x0[pick], x1[pick], K, cv2.RANSAC, 0.999, cfg.ransac_px)
    if E is None or E.shape != (3, 3):
        return None
    n_in, R, t, _ = cv2.recoverPose(E, x0[pick], x1[pick], K, mask=mask.copy())
    Kinv = np.linalg.inv(K)
    inl = pick[mask.ravel() > 0]
    R, t = refine_pose(R, t.ravel(), x0[inl], x1[inl], K)
    if _in_front(R, -t, x0[inl], x1[inl], Kinv) > _in_front(R, t, x0[inl], x1[inl], Kinv):
        t = -t  # the Sampson error cannot tell t from −t: cheirality decides
    E = _skew(t) @ R
    F = Kinv.T @ E @ Kinv
    sampson = np.sqrt(_sampson(F, x0, x1))
    d0, d1, parallax = _triangulate(R, t, x0, x1, Kinv)
    # Inverse depth is what two views measure with uniform uncertainty (σ(1/d) ∝ flow error / baseline):
    # far pixels with tiny parallax still say "far", so keep them (clamped at 0) instead of dropping them.
    ok = good & np.isfinite(d0) & (sampson < cfg.sampson_px) & ~((d0 < 0) & (d1 < 0))
    front = ok & (d0 > 0) & (d1 > 0)
    med = float(np.median(parallax[front])) if front.any() else 0.0
    inv = np.clip(np.where(ok, 1.0 / np.where(d0 != 0, d0, np.inf), np.nan), 0, None)
    with np.errstate(divide="ignore"):
        depth = np.where(ok, 1.0 / inv, np.nan).reshape(h, w).astype(np.float32)
    # the pair's parallax (not each pixel's: a wrong match looks like a large parallax) scales confidence
    conf = (ok * np.clip(med / (4 * cfg.min_parallax_deg), 0, 1)
            * np.exp(-(sampson / cfg.sampson_px) ** 2)).reshape(h, w)
    if med < cfg.min_parallax_deg:
        conf[:] = 0  # the whole pair is too close to a pure rotation
    return TwoView(depth, conf.astype(np.float32), fw, float(n_in) / max(len(pick), 1), med)


def push_pull_fill(values: np.ndarray, weights: np.ndarray, levels: int = 12) -> np.ndarray:
    """Fill holes (weight 0) by confidence-weighted push–pull over an image pyramid; keeps known values."""
    vw = [np.nan_to_num(values * weights).astype(np.float32)]
    ws = [weights.astype(np.float32)]
    for _ in range(levels):
        if min(vw[-1].shape) <= 2:
            break
        vw.append(cv2.pyrDown(vw[-1]))
        ws.append(cv2.pyrDown(ws[-1]))
    filled = vw[-1] / np.maximum(ws[-1], 1e-8)
    for lv in range(len(vw) - 2, -1, -1):
        up = cv2.resize(filled, (vw[lv].shape[1], vw[lv].shape[0]), interpolation=cv2.INTER_LINEAR)
        wl = np.clip(ws[lv], 0, 1)
        own = vw[lv] / np.maximum(ws[lv], 1e-8)
        filled = wl * own + (1 - wl) * up
    return filled


def _pairs(frames, t: int, K: np.ndarray, cfg: GeometricConfig, rng, direction: int) -> list[TwoView]:
    """Two-view results with partners ``t + direction·k`` for growing ``k``, until the median parallax
    reaches the target (every one is kept: near objects are measured best by short baselines, far ones
    by long baselines)."""
    out = []
    for k in cfg.offsets:
        s = t + direction * k
        if not 0 <= s < len(frames):
            break
        tv = two_view_depth(frames[t], frames[s], K, cfg, rng)
        if tv is not None and np.isfinite(tv.depth).any():
            out.append(tv)
            if tv.parallax >= cfg.target_parallax_deg:
                break
    return out


def _fuse(views: list[TwoView]) -> tuple[np.ndarray, np.ndarray] | None:
    """Fuse two-view depths (each in its own unit-baseline scale) into one depth + confidence.

    Every view is scaled to the most confident one by the median depth ratio where both are confident,
    then the views are averaged in inverse depth, weighted by confidence; what leaves the view on one side,
    or is lost by a long baseline, is usually measured by another pair.
    """
    views = [v for v in views if v.confidence.sum() > 0]
    if not views:
        return None
    views.sort(key=lambda v: -float(v.confidence.mean()))
    ref = views[0]
    num = np.where(np.isfinite(ref.depth), ref.confidence / np.where(np.isfinite(ref.depth), ref.depth, 1), 0)
    den = np.where(np.isfinite(ref.depth), ref.confidence, 0)
    best = den.copy()
    for v in views[1:]:
        both = (ref.confidence > 0.3) & (v.confidence > 0.3) & np.isfinite(ref.depth) & np.isfinite(v.depth)
        if both.sum() < 100:
            continue
        scale = float(np.median(ref.depth[both] / v.depth[both]))
        wv = np.where(np.isfinite(v.depth), v.confidence, 0)
        num += wv / np.where(np.isfinite(v.depth), v.depth * scale, 1)
        den += wv
        best = np.maximum(best, wv)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(den > 0, den / num, np.nan).astype(np.float32)
    return depth, best.astype(np.float32)


def geometric_depths(frames: list[np.ndarray], K: np.ndarray | None = None, cfg: GeometricConfig | None = None,
                     seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Scale-consistent depth and confidence for every frame of a video (at least two frames)."""
    cfg = cfg or GeometricConfig()
    n = len(frames)
    if n < 2:
        raise InputError("geometric depth needs a moving camera: give at least two frames of a video",
                         fix="use a learned method (futuredepth/primedepth) for single images")
    h, w = frames[0].shape[:2]
    K = guess_K(w, h, cfg.focal_guess) if K is None else np.asarray(K, np.float64)
    if 0 < cfg.work_short_side < min(h, w):
        return _at_work_size(frames, K, cfg, seed)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    prev_depth, prev_conf = None, None
    # frames are independent until their scales are chained: workers do the flow and geometry, results in order;
    # they need only the grey frames (what the flow sees), sent once to each worker
    gray = [gray_u8(f) for f in frames]
    workers = cfg.workers or default_workers()
    if n * h * w >= cfg.process_pixels and workers >= 4:     # processes start slowly: worth it with many cores
        views = ordered_map(_view_task, range(n), workers, processes=True, initializer=_set_job,
                            initargs=((gray, K, cfg, seed),))
    else:
        views = ordered_map(lambda t: _frame_views(gray, t, K, cfg, seed), range(n), workers)
    for fused, chain in views:
        depth, conf, valid = _chained(fused, chain, prev_depth, prev_conf, out, h, w)
        out.append((_densify(depth, conf, valid, out, cfg, h, w), conf.astype(np.float32)))
        prev_depth, prev_conf = np.where(valid, depth, np.nan), conf
    # express everything relative to the median depth of the first frame (one global unknown scale)
    ref = float(np.median(out[0][0]))
    return [(d / max(ref, 1e-9), c) for d, c in out]


def _at_work_size(frames, K: np.ndarray, cfg: GeometricConfig, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``geometric_depths`` at short side ``cfg.work_short_side``, resized back: depth in inverse depth (linear
    there, as the filling is), confidence linearly."""
    import dataclasses

    h, w = frames[0].shape[:2]
    s = cfg.work_short_side / min(h, w)
    ws, hs = max(2, round(w * s)), max(2, round(h * s))
    sx, sy = ws / w, hs / h
    Ks = resized_intrinsics(K, sx, sy)
    small = [cv2.resize(f, (ws, hs), interpolation=cv2.INTER_AREA) for f in frames]
    res = geometric_depths(small, Ks, dataclasses.replace(cfg, work_short_side=0), seed)

    def up(a: np.ndarray) -> np.ndarray:
        return cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)

    return [((1.0 / np.maximum(up(1.0 / np.maximum(d, 1e-9)), 1e-9)).astype(np.float32), up(c).astype(np.float32))
            for d, c in res]


_JOB: tuple | None = None      # (grey frames, K, config, seed) of the video a worker process is given


def _set_job(job: tuple) -> None:
    global _JOB
    _JOB = job
    cv2.setNumThreads(1)     # one OpenCV thread per worker process: a thread pool in each oversubscribes the cores


def _view_task(t: int):
    gray, K, cfg, seed = _JOB
    return _frame_views(gray, t, K, cfg, seed)


def _frame_views(frames, t: int, K: np.ndarray, cfg: GeometricConfig, seed: int):
    """Frame ``t``'s fused two-view depth (or None) and the flow from frame ``t-1`` that chains its scale; each
    frame draws from its own random stream, so the result does not depend on the number of threads."""
    rng = np.random.default_rng([seed, t])
    fused = _fuse(_pairs(frames, t, K, cfg, rng, +1) + _pairs(frames, t, K, cfg, rng, -1))
    return fused, (dis_flow(frames[t - 1], frames[t], cfg.flow_preset) if t > 0 else None)


def _chained(fused, f, prev_depth, prev_conf, out, h: int, w: int):
    """A frame's depth and confidence at the previous frame's scale (median ratio at flow-matched confident
    pixels; ``f``: the flow from the previous frame), and where it was measured."""
    if fused is None:
        depth = np.full((h, w), np.nan, np.float32)
        conf = np.zeros((h, w), np.float32)
    else:
        depth, conf = fused
    if prev_depth is not None and np.isfinite(depth).any():
        # chain the scale: frame t-1's depth sampled where its pixels moved to in frame t
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        mx, my = xs + f[0], ys + f[1]
        dt = cv2.remap(np.nan_to_num(depth, nan=0), mx, my, cv2.INTER_NEAREST, borderValue=0)
        ct = cv2.remap(conf, mx, my, cv2.INTER_NEAREST, borderValue=0)
        m = (prev_conf > 0.3) & (ct > 0.3) & (dt > 0) & np.isfinite(prev_depth)
        if m.sum() > 100:
            depth = depth * float(np.median(prev_depth[m] / dt[m]))
        elif out:
            depth = depth * float(np.nanmedian(out[-1][0]) / max(np.nanmedian(depth), 1e-9))
    valid = np.isfinite(depth) & (conf > 0)
    return depth, conf, valid


def _densify(depth, conf, valid, out, cfg: GeometricConfig, h: int, w: int) -> np.ndarray:
    """Holes filled by push–pull in inverse depth; confident pixels keep their triangulated value."""
    if valid.any():
        inv_obs = np.where(valid, 1.0 / np.where(valid, depth, 1), 0)
        inv = push_pull_fill(inv_obs, conf * valid)
        keep = valid & (conf >= cfg.keep_confidence)  # trusted pixels keep their triangulated value
        inv = np.where(keep, inv_obs, inv)
        # a floor on inverse depth: nothing farther than twice the far end of the well-measured pixels
        floor = 0.5 * float(np.percentile(inv[keep] if keep.sum() > 100 else inv[valid], 5))
        dense = (1.0 / np.maximum(inv, max(floor, 1e-9))).astype(np.float32)
    elif out:
        dense = out[-1][0].copy()
    else:
        dense = np.ones((h, w), np.float32)
    return dense
