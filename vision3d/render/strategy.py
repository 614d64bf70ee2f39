"""Adaptive density control for 3DGS fitting on any device: clone, split, prune and opacity reset.

The same rules and defaults as gsplat's ``DefaultStrategy`` (which the fit uses on CUDA): a Gaussian whose
mean screen-space gradient (in NDC units) exceeds ``grow_grad2d`` is cloned when small (max scale ≤
``grow_scale3d`` × scene extent) or split in two when large (children sampled from it, scales ÷ 1.6);
Gaussians with opacity < ``prune_opa`` (and, after the first reset, too large ones) are removed; opacities are
reset to ≤ 2·``prune_opa`` every ``reset_every`` steps. Adam moments follow each edit (zero for new ones).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vision3d.render.projection import quat_to_rotmat


@dataclass
class DensifyConfig:
    prune_opa: float = 0.005
    grow_grad2d: float = 0.0002
    grow_scale3d: float = 0.01
    prune_scale3d: float = 0.1
    refine_start_iter: int = 500
    refine_stop_iter: int = 15_000
    reset_every: int = 3000
    refine_every: int = 100
    max_gaussians: int | None = None  # growth stops at this count (keeps CPU runs bounded)


def edit_params(params: torch.nn.ParameterDict, optimizers: dict, fn: Callable[[str, torch.Tensor], torch.Tensor],
                state_fn: Callable[[str, torch.Tensor], torch.Tensor]) -> None:
    """Replace every parameter by ``fn(name, p)`` and each Adam moment by ``state_fn(name, moment)``."""
    for name in list(params.keys()):
        old = params[name]
        new = torch.nn.Parameter(fn(name, old.detach()), requires_grad=old.requires_grad)
        opt = optimizers[name]
        st = opt.state.pop(old, None)
        opt.param_groups[0]["params"] = [new]
        if st:
            opt.state[new] = {k: (state_fn(name, v) if isinstance(v, torch.Tensor) and v.dim() > 0 else v)
                              for k, v in st.items()}
        params[name] = new


class DensifyStrategy:
    """Clone/split/prune with gsplat's ``initialize_state`` / ``step_*_backward`` protocol."""

    def __init__(self, cfg: DensifyConfig | None = None):
        self.cfg = cfg or DensifyConfig()

    def initialize_state(self, scene_scale: float = 1.0) -> dict:
        return {"grad2d": None, "count": None, "scene_scale": scene_scale}

    def step_pre_backward(self, params, optimizers, state, step, info) -> None:
        """Nothing to do: the render was asked to keep the 2D-mean gradients."""

    def step_post_backward(self, params, optimizers, state, step: int, info: dict) -> dict:
        """Accumulate gradient statistics; refine and reset on schedule. Returns counts of what changed."""
        cfg = self.cfg
        if step >= cfg.refine_stop_iter:
            return {}
        self._accumulate(params, state, info)
        changed = {}
        if step > cfg.refine_start_iter and step % cfg.refine_every == 0:
            changed = self._refine(params, optimizers, state, step)
        if step > 0 and step % cfg.reset_every == 0:
            self._reset_opacity(params, optimizers)
        return changed

    def _accumulate(self, params, state, info: dict) -> None:
        out, width, height = info["out"], info["width"], info["height"]
        grads = out.screen_grad()
        n = len(params["means"])
        if state["grad2d"] is None or len(state["grad2d"]) != n:
            state["grad2d"] = torch.zeros(n, device=params["means"].device)
            state["count"] = torch.zeros(n, device=params["means"].device)
        if grads is None:
            return
        c = grads.shape[0]
        g = grads.detach().clone()
        g[..., 0] *= width / 2.0 * c
        g[..., 1] *= height / 2.0 * c
        vis = out.visible
        cam, gid = vis.nonzero(as_tuple=True)
        state["grad2d"].index_add_(0, gid, g[cam, gid].norm(dim=-1))
        state["count"].index_add_(0, gid, torch.ones_like(gid, dtype=torch.float32))

    @torch.no_grad()
    def _refine(self, params, optimizers, state, step: int) -> dict:
        cfg, scale = self.cfg, state["scene_scale"]
        n = len(params["means"])
        avg = state["grad2d"] / state["count"].clamp_min(1)
        high = avg > cfg.grow_grad2d
        small = torch.exp(params["scales"]).max(-1).values <= cfg.grow_scale3d * scale
        dupli, split = high & small, high & ~small
        if cfg.max_gaussians is not None:
            room = max(0, cfg.max_gaussians - n)
            if int(dupli.sum() + split.sum()) > room:  # keep the largest gradients that fit
                order = torch.argsort(avg * high, descending=True)
                allowed = torch.zeros(n, dtype=torch.bool, device=avg.device)
                allowed[order[:room]] = True
                dupli, split = dupli & allowed, split & allowed
        n_dup, n_split = int(dupli.sum()), int(split.sum())
        if n_dup:
            idx = dupli.nonzero().squeeze(1)
            edit_params(params, optimizers, lambda _, p: torch.cat([p, p[idx]]),
                        lambda _, v: torch.cat([v, torch.zeros_like(v[idx])]))
            split = torch.cat([split, torch.zeros(n_dup, dtype=torch.bool, device=split.device)])
        if n_split:
            self._split(params, optimizers, split)
        opa = torch.sigmoid(params["opacities"])
        prune = opa < cfg.prune_opa
        if step > cfg.reset_every:
            prune |= torch.exp(params["scales"]).max(-1).values > cfg.prune_scale3d * scale
        n_prune = int(prune.sum())
        if n_prune:
            keep = (~prune).nonzero().squeeze(1)
            edit_params(params, optimizers, lambda _, p: p[keep], lambda _, v: v[keep])
        state["grad2d"] = state["count"] = None
        return {"cloned": n_dup, "split": n_split, "pruned": n_prune}

    @staticmethod
    def _split(params, optimizers, mask: torch.Tensor) -> None:
        sel = mask.nonzero().squeeze(1)
        rest = (~mask).nonzero().squeeze(1)
        scales = torch.exp(params["scales"][sel])
        rot = quat_to_rotmat(params["quats"][sel])
        offsets = torch.einsum("nij,bnj->bni", rot, scales * torch.randn(2, len(sel), 3, device=scales.device))
        children = {"means": (params["means"][sel] + offsets).reshape(-1, 3),
                    "scales": torch.log(scales / 1.6).repeat(2, 1)}

        def grow(name, p):
            new = children[name] if name in children else p[sel].repeat(2, *([1] * (p.dim() - 1)))
            return torch.cat([p[rest], new])

        edit_params(params, optimizers, grow,
                    lambda _, v: torch.cat([v[rest], torch.zeros((2 * len(sel),) + v.shape[1:], device=v.device,
                                                                  dtype=v.dtype)]))

    @torch.no_grad()
    def _reset_opacity(self, params, optimizers) -> None:
        cap = math.log(2 * self.cfg.prune_opa / (1 - 2 * self.cfg.prune_opa))
        edit_params(params, optimizers,
                    lambda name, p: p.clamp_max(cap) if name == "opacities" else p,
                    lambda name, v: torch.zeros_like(v) if name == "opacities" else v)
