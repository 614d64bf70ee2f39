"""Trajectory and mask metrics with the field's definitions: ATE after a similarity (Umeyama) alignment, RPE
(translation, rotation in degrees) between consecutive frames after the same alignment (evo's defaults), and
DAVIS region similarity J (IoU) and contour accuracy F."""

from __future__ import annotations

import numpy as np


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """``s, R, t`` minimising ``Σ|dst − (s·R·src + t)|²`` for point sets ``(n,3)`` (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1
    R = U @ S @ Vt
    var = (xs ** 2).sum() / len(src)
    s = float(np.trace(np.diag(D) @ S) / var) if with_scale and var > 1e-12 else 1.0
    return s, R, mu_d - s * R @ mu_s


def trajectory_errors(est_c2w: np.ndarray, gt_c2w: np.ndarray) -> dict:
    """``ate`` (RMSE of camera centres, GT units), ``rpe_t`` (mean translational drift per frame, GT units) and
    ``rpe_r`` (degrees) after aligning the estimated trajectory to the ground truth with a similarity."""
    est_c2w, gt_c2w = np.asarray(est_c2w, np.float64), np.asarray(gt_c2w, np.float64)
    if len(est_c2w) != len(gt_c2w) or len(gt_c2w) < 2:
        raise ValueError("trajectories need the same number (>= 2) of poses")
    ce, cg = est_c2w[:, :3, 3], gt_c2w[:, :3, 3]
    degenerate = np.ptp(cg, axis=0).max() < 1e-9 or np.ptp(ce, axis=0).max() < 1e-9
    s, R, t = (1.0, np.eye(3), cg.mean(0) - ce.mean(0)) if degenerate else umeyama(ce, cg)
    aligned = np.repeat(np.eye(4)[None], len(est_c2w), 0)
    aligned[:, :3, :3] = R @ est_c2w[:, :3, :3]
    aligned[:, :3, 3] = s * ce @ R.T + t
    ate = float(np.sqrt(((aligned[:, :3, 3] - cg) ** 2).sum(1).mean()))
    rt, rr = [], []
    for i in range(len(gt_c2w) - 1):
        dg = np.linalg.inv(gt_c2w[i]) @ gt_c2w[i + 1]
        de = np.linalg.inv(aligned[i]) @ aligned[i + 1]
        err = np.linalg.inv(dg) @ de
        rt.append(np.linalg.norm(err[:3, 3]))
        rr.append(np.degrees(np.arccos(np.clip((np.trace(err[:3, :3]) - 1) / 2, -1, 1))))
    return {"ate": ate, "rpe_t": float(np.mean(rt)), "rpe_r": float(np.mean(rr)), "scale": s}


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """DAVIS J: IoU of two boolean masks (1 when both are empty)."""
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def contour_accuracy(pred: np.ndarray, gt: np.ndarray, bound_frac: float = 0.008) -> float:
    """DAVIS F: F-measure of boundary pixels matched within ``bound_frac`` of the image diagonal."""
    import cv2

    def boundary(m):
        m = m.astype(np.uint8)
        return (m - cv2.erode(m, np.ones((3, 3), np.uint8))) > 0

    bp, bg = boundary(pred), boundary(gt)
    if not bp.any() and not bg.any():
        return 1.0
    if not bp.any() or not bg.any():
        return 0.0
    r = max(1, int(np.ceil(bound_frac * np.hypot(*pred.shape))))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    gd = cv2.dilate(bg.astype(np.uint8), disk) > 0
    pd = cv2.dilate(bp.astype(np.uint8), disk) > 0
    precision = (bp & gd).sum() / bp.sum()
    recall = (bg & pd).sum() / bg.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))
