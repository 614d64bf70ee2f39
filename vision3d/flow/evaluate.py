"""Flow evaluation with ptlflow's metric names, per sample and averaged (EPE averaged per image, then over images)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from vision3d.flow.datasets import FlowSample, iter_dataset
from vision3d.flow.metrics import flow_metrics
from vision3d.flow.registry import FlowEstimator, get_estimator

METRICS = ("epe", "px1", "px3", "px5", "flall")


def evaluate_sample(est: FlowEstimator, s: FlowSample) -> dict:
    """Metrics of one sample: all pixels, and ``_occ``/``_non_occ`` where an occlusion mask exists."""
    frames = s.frames[:max(2, est.frames_per_clip)] if est.frames_per_clip > 2 else s.frames[:2]
    tic = time.perf_counter()
    pred = est.clip(frames)[0]
    seconds = time.perf_counter() - tic
    row = {"sample": s.name, "frames_used": len(frames), "seconds": seconds}
    m = flow_metrics(pred, s.gt.flow, s.gt.valid_mask())
    row.update({k: m[k] for k in METRICS})
    if "occ" in s.masks:
        for suffix, region in (("_occ", s.masks["occ"]), ("_non_occ", ~s.masks["occ"])):
            mm = flow_metrics(pred, s.gt.flow, s.gt.valid_mask() & region)
            row.update({k + suffix: mm[k] for k in METRICS})
    return row


def evaluate(dataset: str, method: str, device: str = "cpu", checkpoint=None, max_samples: int | None = None,
             progress: Callable[[int, str], None] | None = None) -> tuple[list[dict], dict]:
    """Evaluate ``method`` on ``dataset``: per-sample rows and a summary (means, ms/pair, parameters)."""
    est = get_estimator(method, device, checkpoint)
    rows = []
    for i, s in enumerate(iter_dataset(dataset)):
        if max_samples is not None and i >= max_samples:
            break
        rows.append(evaluate_sample(est, s))
        if progress:
            progress(i + 1, s.name)
    keys = [k for k in rows[0] if k not in ("sample", "frames_used", "seconds")]
    summary = {"dataset": dataset, "method": method, "samples": len(rows),
               **{k: float(np.nanmean([r.get(k, np.nan) for r in rows])) for k in keys},
               "ms_per_pair": 1000 * float(np.mean([r["seconds"] for r in rows])), "parameters": est.parameters}
    return rows, summary
