"""``evaluate(method, dataset)``: depth metrics per sample (after the method kind's alignment), flicker for
video datasets with poses, time per frame."""

from __future__ import annotations

import numpy as np

from vision3d.depth.datasets import iter_depth_dataset
from vision3d.depth.metrics import align as do_align
from vision3d.depth.metrics import align_sequence, covisible, depth_metrics, reprojection_flicker
from vision3d.depth.registry import METHODS, estimate


def constant_depth(samples) -> list[np.ndarray]:
    """The constant-depth baseline (any constant: alignment gives it the median GT depth)."""
    return [np.ones(s.depth.shape, np.float32) for s in samples]


def _pair_flicker(a0: np.ndarray, a1: np.ndarray, s0, s1) -> float:
    T = np.linalg.inv(s1.cam_to_world) @ s0.cam_to_world
    return reprojection_flicker(a0, a1, s0.K, T, covisible(s0.depth, s1.depth, s0.K, T))


def _flicker(aligned: list[np.ndarray], samples) -> float:
    """Mean reprojection flicker of consecutive, already aligned depth maps."""
    return float(np.nanmean([_pair_flicker(a0, a1, s0, s1) for a0, a1, s0, s1
                             in zip(aligned[:-1], aligned[1:], samples[:-1], samples[1:])]))


def _pairwise_flicker(preds, samples, valids, kind: str, how: str) -> float:
    """Flicker with one alignment per consecutive pair: only what changes between the two frames counts —
    neither slow drift over the video (TAE's concern) nor the jitter of aligning each frame on its own."""
    fl = []
    for i in range(len(samples) - 1):
        s0, s1 = samples[i], samples[i + 1]
        a0, a1 = align_sequence(preds[i:i + 2], [s0.depth, s1.depth], valids[i:i + 2], kind, how)
        fl.append(_pair_flicker(a0, a1, s0, s1))
    return float(np.nanmean(fl))


def evaluate(method: str, dataset: str, align: str = "auto", **kw) -> dict:
    """Mean metrics of ``method`` (or ``constant``) on ``dataset``; rows per sample under ``samples``.

    Video datasets with poses also get ``flicker`` (one alignment per consecutive pair), ``flicker_frame`` (each
    frame aligned to its ground truth on its own, which adds the alignments' own frame-to-frame jitter) and the
    video protocol's ``tae`` / ``abs_rel_video`` (one alignment for the whole video, so scale drift counts)."""
    samples = list(iter_depth_dataset(dataset))
    if method == "constant":
        kind, preds, secs = "relative", constant_depth(samples), [0.0] * len(samples)
    else:
        K = samples[0].K if kw.pop("use_gt_intrinsics", True) else None
        res = list(estimate((s.image for s in samples), method, K=K, **kw))
        kind, preds, secs = METHODS[method].kind if method != "import" else res[0].kind, \
            [r.depth for r in res], [r.seconds for r in res]
    rows, aligned, valids = [], [], []
    for s, p, sec in zip(samples, preds, secs):
        m = depth_metrics(p, s.depth, kind, align, cap=s.cap, mask=s.eval_mask())
        rows.append({"sample": s.name, **m, "seconds": sec})
        valid = np.isfinite(s.depth) & (s.depth > 1e-3) & s.eval_mask() & np.isfinite(p)
        if s.cap is not None:
            valid &= s.depth <= s.cap
        valids.append(valid)
        aligned.append(do_align(p, s.depth, valid, kind, align))
    out = {k: float(np.mean([r[k] for r in rows])) for k in ("abs_rel", "delta1", "rmse", "seconds")}
    if all(s.cam_to_world is not None and s.K is not None for s in samples) and len(samples) > 1:
        out["flicker"] = _pairwise_flicker(preds, samples, valids, kind, align)
        out["flicker_frame"] = _flicker(aligned, samples)
        video = align_sequence(preds, [s.depth for s in samples], valids, kind, align)
        out["tae"] = _flicker(video, samples)
        out["abs_rel_video"] = float(np.mean([depth_metrics(v, s.depth, "metric", "none", cap=s.cap,
                                                            mask=s.eval_mask())["abs_rel"]
                                              for v, s in zip(video, samples)]))
    out["samples"] = rows
    out["kind"] = kind
    return out
