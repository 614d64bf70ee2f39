"""Object-mask propagation through a video (``--mask``): a first-frame mask carried frame by frame by the backward
optical flow, by the fitted scene's Gaussians (GFlow's segmentation use), or by both.

The flow carries the previous mask back-to-front (each pixel of frame ``t`` takes the mask where its backward
flow lands, kept soft between frames); pixels the forward–backward check finds newly uncovered are background
revealed behind the moving object, not the object, and leave the mask (without that the mask grows at the
object's trailing edge).

GFlow labels the Gaussians under the first mask and draws their projection. On real video the labels drift: the
object's Gaussians that the still/moving split called still stay where they were, densification covers the object
with newborns, and the moving ones' tracks accumulate error. On the DAVIS sequences in the shared data the flow
alone carries the mask better (docs/results.md), so it is the default; ``gaussians`` and ``fused`` stay selectable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

METHODS = ("flow", "gaussians", "fused")


@dataclass
class PropagateConfig:
    """How a first-frame object mask is carried through the video."""

    method: str = "flow"      # flow | gaussians | fused
    share: float = 0.5        # the labelled Gaussians' share of a pixel's rendered opacity for it to be the object
    min_alpha: float = 0.3    # pixels the scene barely covers are never the object by the Gaussians' vote
    surface_tol: float = 0.15  # a Gaussian is on the visible surface when its depth ≤ rendered depth × (1 + tol)
    flow_weight: float = 0.5  # fused: weight of the flow-carried mask against the labelled Gaussians' share

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown mask propagation method {self.method!r}; use one of {', '.join(METHODS)}")


def _pixel(scene, t: int, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rounded pixel (x, y) of world points in frame ``t``, whether they land in the image in front of the camera,
    and their camera depth."""
    uv, front = scene.project(t, X)
    V = scene.world_to_cam[t]
    z = X @ V[2, :3] + V[2, 3]
    u = np.nan_to_num(uv, nan=-1.0)
    ok = front & (u[:, 0] >= 0) & (u[:, 0] <= scene.width - 1) & (u[:, 1] >= 0) & (u[:, 1] <= scene.height - 1)
    xi = np.clip(np.round(u[:, 0]), 0, scene.width - 1).astype(int)
    yi = np.clip(np.round(u[:, 1]), 0, scene.height - 1).astype(int)
    return xi, yi, ok, np.nan_to_num(z, nan=np.inf)


def carry(mask: np.ndarray, backward_flow: np.ndarray) -> np.ndarray:
    """``(H,W)`` float: a (soft) mask of frame ``t − 1`` carried into frame ``t`` by the backward flow (bilinear)."""
    from vision3d.flow.consistency import sample_at

    return sample_at(mask[None].astype(np.float32), backward_flow)[0]


def propagate_mask(scene, mask0: np.ndarray, render: Callable, backward_flow: Callable[[int], np.ndarray],
                   moving_mask: Callable[[int], np.ndarray] | None = None,
                   cfg: PropagateConfig | None = None,
                   uncovered: Callable[[int], np.ndarray] | None = None) -> Iterator[np.ndarray]:
    """Masks ``(H,W)`` bool of the object given by ``mask0`` (frame 0, at the scene's size), one per frame.

    ``backward_flow(t)`` is the ``(2,H,W)`` flow from frame ``t`` to ``t − 1``; ``uncovered(t)`` the pixels of
    frame ``t`` not visible in ``t − 1`` (never carried into the mask). For ``gaussians``/``fused``:
    ``render(t, features)`` renders frame ``t``'s Gaussians (those in ``scene.exists(t)``, in index order) with a
    per-Gaussian feature column and returns ``(features (H,W), alpha (H,W), depth (H,W))``; ``moving_mask(t)`` is
    the split's moving pixels of frame ``t`` (``fused``: flow-carried pixels there stay the object).
    """
    cfg = cfg or PropagateConfig()
    mask0 = np.asarray(mask0, bool)

    def carried(t: int, prev: np.ndarray) -> np.ndarray:
        soft = carry(prev, backward_flow(t))
        return soft if uncovered is None else np.where(uncovered(t), 0.0, soft)

    if cfg.method == "flow":
        # the carried mask stays soft from frame to frame: thresholding it every frame erodes it step by step
        soft = mask0.astype(np.float32)
        yield mask0
        for t in range(1, scene.n_frames):
            soft = carried(t, soft)
            yield soft > 0.5
        return
    obj = np.zeros(len(scene.birth), bool)
    obj_moving = True
    prev = None
    for t in range(scene.n_frames):
        idx = np.nonzero(scene.exists(t))[0]
        xi, yi, ok, z = _pixel(scene, t, scene.positions_at(t, idx))
        if t == 0:
            _, _, depth = render(0, np.zeros((len(idx), 1), np.float32))
            on = ok & mask0[yi, xi] & (z <= depth[yi, xi] * (1 + cfg.surface_tol) + 1e-6)
            obj[idx[on]] = True
            # the object's motion class, by most of its Gaussians: Gaussians of the other class inside its mask
            # are its surroundings, which a flow-carried mask reaches as its edges drift
            obj_moving = bool(scene.moving[obj].mean() > 0.5) if obj.any() else True
        else:
            # Gaussians born now inside the previous mask carried here, of the object's motion class, join it:
            # densification refines the object's surface with newborns, which would otherwise hide it
            soft = carried(t, prev)
            new = (scene.birth[idx] == t) & ok & (scene.moving[idx] == obj_moving)
            obj[idx[new & (soft[yi, xi] > 0.5)]] = True
        feat, alpha, _ = render(t, obj[idx].astype(np.float32)[:, None])
        share = feat / np.maximum(alpha, 1e-6)
        if t > 0 and cfg.method == "fused":
            # where the scene barely covers a pixel, the flow alone speaks
            share = np.where(alpha > cfg.min_alpha, share, soft)
            mask = cfg.flow_weight * soft + (1 - cfg.flow_weight) * share > cfg.share
            if moving_mask is not None and obj_moving:
                mask |= (soft > 0.5) & moving_mask(t)
        else:
            mask = (share > cfg.share) & (alpha > cfg.min_alpha)
        prev = mask
        yield mask
