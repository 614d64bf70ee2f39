"""GFlow's per-frame optimisation: frame 0 fits Gaussians alone; every later frame runs the camera-only step (C1)
on still Gaussians, moves the moving Gaussians along the optical flow, then the Gaussian-only step (C2).

Losses (paper §3.4, weights in ``GFlowConfig``): ``λp(MSE + 1 − SSIM) + λd·depth + λf·flow + λi·isotropy``. The
depth prior is aligned to the render by a robust scale and shift (GFlow's learnable ``a, b``, solved in closed
form) and compared as relative L1; the flow term is the MSE (pixels) between each Gaussian's projected-centre
displacement and the optical flow at its previous projection. Still Gaussians keep their centre, rotation and
scales once born (``freeze_still``); their colours and opacities adapt every frame and the scene file keeps them
per frame (``frame_record``), so each frame re-renders exactly as fitted. (The authors' code zeroes colour
gradients after frame 0: ``freeze_colors``, off in both presets.)
Pixel-wise densification adds Gaussians where content is new (flow occlusion, empty render) at the start of C2,
and where the photometric error stays high later; near-transparent Gaussians are pruned after each frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from vision3d.errors import InputError
from vision3d.render import rasterize
from vision3d.scene4d.config import GFlowConfig
from vision3d.scene4d.image_loss import ImageLoss
from vision3d.scene4d.init import bilinear, gaussians_from_pixels, sample_pixels, texture_probability
from vision3d.scene4d.pose import apply_increment, predict_next
from vision3d.scene4d.prior import align_to_render, fit_prior_affine, initial_affine, initial_depth

PARAMS = ("means", "quats", "log_scales", "opacity_logits", "colors")


@dataclass
class FrameInput:
    """What one frame brings: image ``(H,W,3)``, raw depth prior ``(H,W)``, moving mask, the optical flow from the
    previous frame to this one (``flow_in``, in the previous frame's pixels), which of this frame's pixels
    have no match in the previous one (``new_content``) and, when the camera is known (a calibrated rig, COLMAP,
    an oracle run), its world-to-camera ``pose``: the camera step is then skipped."""

    image: np.ndarray
    prior: np.ndarray
    moving: np.ndarray
    flow_in: np.ndarray | None = None
    occluded_in: np.ndarray | None = None
    new_content: np.ndarray | None = None
    pose: np.ndarray | None = None


class GFlow:
    """The growing 4D scene and the per-frame solver. ``step(frame)`` processes the next frame."""

    def __init__(self, config: GFlowConfig, K: np.ndarray, width: int, height: int, depth_kind: str,
                 device: str = "cpu", seed: int = 0):
        self.cfg, self.K, self.W, self.H, self.kind = config, np.asarray(K, np.float64), int(width), int(height), depth_kind
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)
        self.p: dict[str, torch.Tensor] = {}
        # bookkeeping lives on the same device as the parameters (masks index them every iteration)
        self.moving = torch.zeros(0, dtype=torch.bool, device=self.device)
        self.birth = torch.zeros(0, dtype=torch.long, device=self.device)
        self.ids = torch.zeros(0, dtype=torch.long, device=self.device)
        self.unseen = torch.zeros(0, dtype=torch.long, device=self.device)  # frames in a row outside the view
        # retired Gaussians (left the view, or pruned after earlier frames saw them): kept for the scene file, in
        # chunks (one per retirement) so that a checkpoint writes only what is new
        self._chunks: list[dict[str, np.ndarray]] = []
        self._chunks_taken = 0
        self.next_id = 0
        self.poses: list[np.ndarray] = []
        self.t = -1
        self._prev_depth: np.ndarray | None = None      # rendered depth of the previous frame (0 where empty)
        self._prior_affine: tuple[float, float] | None = None   # the depth prior's last accepted scale/shift
        self._prior_corr = float("nan")            # how well this frame's prior followed the render (diagnostic)
        self._prev_moving = np.zeros((self.H, self.W), bool)
        self._Kt = torch.as_tensor(self.K, dtype=torch.float32, device=self.device)
        self._black = torch.zeros(3, device=self.device)      # render background (made once: renders are hot)
        self._record: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------------------------------- bookkeeping
    @property
    def still_colors_vary(self) -> bool:
        """Whether still Gaussians' colours may change after their first frame (then they are stored per frame)."""
        return "colors" not in self.cfg.freeze_still and not self.cfg.freeze_colors

    @property
    def still_opacity_varies(self) -> bool:
        """Whether still Gaussians' opacities may change after their first frame (then they are stored per frame)."""
        return "opacity_logits" not in self.cfg.freeze_still

    @property
    def n(self) -> int:
        return 0 if not self.p else len(self.p["means"])

    def _add(self, g: dict[str, np.ndarray], moving: np.ndarray) -> None:
        n = len(g["means"])
        if n == 0:
            return
        room = self.cfg.max_gaussians - self.n
        if room <= 0:
            return
        if n > room:
            keep = self.rng.choice(n, room, replace=False)
            g, moving, n = {k: v[keep] for k, v in g.items()}, moving[keep], room
        new = {k: torch.as_tensor(g[k], dtype=torch.float32, device=self.device) for k in PARAMS}
        self.p = new if not self.p else {k: torch.cat([self.p[k].detach(), new[k]]) for k in PARAMS}
        dev = self.device
        self.moving = torch.cat([self.moving, torch.as_tensor(moving, dtype=torch.bool, device=dev)])
        self.birth = torch.cat([self.birth, torch.full((n,), self.t, dtype=torch.long, device=dev)])
        self.ids = torch.cat([self.ids, torch.arange(self.next_id, self.next_id + n, device=dev)])
        self.unseen = torch.cat([self.unseen, torch.zeros(n, dtype=torch.long, device=dev)])
        self.next_id += n

    def _make_room(self) -> int:
        """Before a frame: when the active set is near ``max_gaussians``, retire the Gaussians that matter least
        (longest unseen, then the most transparent) so that this frame's new content and densification find room
        — a full set otherwise takes almost nothing new, and a forward-moving camera then stops fitting (TartanAir:
        39 → 20 dB from the frame the 80k cap was reached). Retired ones stay in the frames that saw them."""
        cfg = self.cfg
        reserve = int(cfg.n_init * (0.25 + cfg.densify_ratio * len(cfg.densify_steps)))
        excess = self.n - max(cfg.max_gaussians - reserve, 0)
        if excess <= 0:
            return 0
        opacity = self.p["opacity_logits"].detach()
        # least useful first: longest unseen, then lowest opacity (one key: unseen dominates)
        key = -self.unseen.double() * 1e3 + torch.sigmoid(opacity).double()
        gone = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        gone[torch.argsort(key)[:excess]] = True
        return self._archive(gone, self.t)

    def _keep(self, mask: torch.Tensor) -> None:
        self.p = {k: v.detach()[mask] for k, v in self.p.items()}
        self.moving, self.birth, self.ids = self.moving[mask], self.birth[mask], self.ids[mask]
        self.unseen = self.unseen[mask]

    def _retire(self, pose: np.ndarray, depth: torch.Tensor, alpha: torch.Tensor) -> int:
        """Move Gaussians that have been unseen for ``retire_after`` frames in a row — outside the view, or behind
        the rendered surface (``depth``/``alpha`` of this frame's render) — to the archive: they stay in the scene
        for the frames they were seen in, but no longer cost time or count against ``max_gaussians``, so a
        moving camera and densification keep finding room for new content."""
        if self.cfg.retire_after <= 0 or not self.n:
            return 0
        V = torch.as_tensor(pose, dtype=torch.float32, device=self.device)
        uv, z = self._project(self.p["means"], V)
        m = 0.1 * max(self.W, self.H)
        inside = (z > 1e-3) & (uv[:, 0] > -m) & (uv[:, 0] < self.W + m) & (uv[:, 1] > -m) & (uv[:, 1] < self.H + m)
        xi = uv[:, 0].round().clamp(0, self.W - 1).long()
        yi = uv[:, 1].round().clamp(0, self.H - 1).long()
        on_screen = inside & (uv[:, 0] >= 0) & (uv[:, 0] <= self.W - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= self.H - 1)
        hidden = on_screen & (alpha[yi, xi] > 0.95) & (z > 1.1 * depth[yi, xi] + 1e-3)
        seen = inside & ~hidden
        self.unseen = torch.where(seen, torch.zeros_like(self.unseen), self.unseen + 1)
        return self._archive(self.unseen >= self.cfg.retire_after, self.t + 1)  # fitted with this frame

    def _archive(self, gone: torch.Tensor, death: int) -> int:
        """Move the Gaussians in ``gone`` from the active set to the archive; from frame ``death`` on they are no
        longer part of the scene (the frames before still render them as they were)."""
        n = int(gone.sum())
        if n:
            out = self._arrays(gone)
            out["death"] = np.full(n, death, np.int64)
            self._chunks.append(out)
            self._keep(~gone)
        return n

    @property
    def archive(self) -> dict[str, np.ndarray]:
        """Every retired Gaussian (parameters, bookkeeping, ``death``), or {} when none."""
        return _concat(self._chunks)

    def take_archived(self) -> dict[str, np.ndarray]:
        """The Gaussians retired since the last call ({} when none): what a checkpoint has not written yet."""
        new = _concat(self._chunks[self._chunks_taken:])
        self._chunks_taken = len(self._chunks)
        return new

    def _arrays(self, mask: torch.Tensor | None = None) -> dict[str, np.ndarray]:
        """Active Gaussians' parameters and bookkeeping as numpy arrays (all, or those in ``mask``)."""
        sel = (lambda v: v) if mask is None else (lambda v: v[mask])
        out = {k: sel(v.detach()).cpu().numpy() for k, v in self.p.items()}
        out.update(moving=sel(self.moving).cpu().numpy(), birth=sel(self.birth).cpu().numpy(),
                   ids=sel(self.ids).cpu().numpy())
        return out

    def _spawn(self, image, depth, pose, prob, count: int, moving_mask, opacity: float | None = None) -> int:
        if count <= 0 or prob.sum() <= 0:
            return 0
        xy, p = sample_pixels(prob, count, self.rng)
        if not len(xy):
            return 0
        n_total = max(count / max(float(prob[prob > 0].size) / prob.size, 1e-6), count)
        g = gaussians_from_pixels(image, depth, self.K, pose, xy, p, int(n_total),
                                  self.cfg.opacity_init if opacity is None else opacity, self.rng)
        mv = bilinear(moving_mask.astype(np.float32), xy).reshape(-1) > 0.5
        ok = np.isfinite(g["means"]).all(1) & np.isfinite(g["log_scales"]).all(1)
        self._add({k: v[ok] for k, v in g.items()}, mv[ok])
        return int(ok.sum())

    # ---------------------------------------------------------------------------------------------- render
    def render(self, pose: np.ndarray | torch.Tensor, index: torch.Tensor | None = None, params=None):
        p = params or self.p
        g = {k: (v if index is None else v[index]) for k, v in p.items()}
        V = pose if isinstance(pose, torch.Tensor) else torch.as_tensor(pose, dtype=torch.float32, device=self.device)
        # values are checked once per frame (``_check_finite``): a check per render syncs a GPU every iteration
        return rasterize(g, (V[None], self._Kt[None]), self.W, self.H, backend=self.cfg.backend,
                         background=self._black, validate=False)

    def _check_finite(self) -> None:
        """One host synchronisation per frame instead of one per render and tensor."""
        if not self.n:
            return
        bad = torch.stack([~torch.isfinite(v.detach().reshape(self.n, -1)).all(1) for v in self.p.values()]).any(0)
        n_bad = int(bad.sum())
        if n_bad:
            raise InputError(f"{n_bad} Gaussians became NaN or inf at frame {self.t}",
                             fix="check the depth prior (v3d depth) or try --depth futuredepth; report it with --debug")

    def _project(self, means: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cam = means @ V[:3, :3].T + V[:3, 3]
        z = cam[:, 2]
        uv = cam[:, :2] / z.clamp_min(1e-6)[:, None] * torch.stack([self._Kt[0, 0], self._Kt[1, 1]]) + \
            torch.stack([self._Kt[0, 2], self._Kt[1, 2]])
        return uv, z

    # ------------------------------------------------------------------------------------------------ losses
    def _iso(self, log_scales: torch.Tensor) -> torch.Tensor:
        if not len(log_scales):
            return log_scales.sum()
        return self.cfg.lambda_iso * torch.exp(log_scales).std(dim=1).mean()

    def _depth_term(self, target: torch.Tensor, mask: torch.Tensor):
        """What the depth loss needs for one step, fixed while the step runs: the valid pixels as weights that
        already divide by their count and the target's median (relative L1), or None with under 10 valid pixels."""
        m = mask & (target > 0)
        count = int(m.sum())
        if count < 10:
            return None
        return m.float() / (count * target[m].median().clamp_min(1e-6))

    def _flow_targets(self, means_prev: torch.Tensor, flow: np.ndarray, occluded: np.ndarray | None):
        """Previous projections of ``means_prev`` and where the flow says they went; visibility-weighted."""
        Vp = torch.as_tensor(self.poses[-1], dtype=torch.float32, device=self.device)
        uv0, z0 = self._project(means_prev, Vp)
        uv0n = uv0.detach().cpu().numpy()
        inside = (uv0n[:, 0] >= 0) & (uv0n[:, 0] <= self.W - 1) & (uv0n[:, 1] >= 0) & (uv0n[:, 1] <= self.H - 1)
        inside &= z0.detach().cpu().numpy() > 1e-3
        f = np.stack([bilinear(flow[0], uv0n), bilinear(flow[1], uv0n)], 1).reshape(-1, 2)
        ok = inside.copy()
        if occluded is not None:
            ok &= bilinear(occluded.astype(np.float32), uv0n).reshape(-1) < 0.5
        if self._prev_depth is not None:     # only Gaussians in front (the flow belongs to the visible surface)
            dz = bilinear(self._prev_depth, uv0n).reshape(-1)
            ok &= (z0.detach().cpu().numpy() <= dz * 1.05 + 1e-3) | (dz <= 0)
        target = uv0.detach() + torch.as_tensor(f, dtype=torch.float32, device=self.device)
        return uv0.detach(), target, torch.as_tensor(ok, device=self.device)

    # ------------------------------------------------------------------------------------------------ steps
    def _optimiser(self, iters: int, lr: float, params, start: int = 0):
        """Adam with GFlow's linear decay to ``lr_end_factor``·lr over ``iters``; ``params`` is a list of tensors
        (all at ``lr``) or of ``(tensor, lr)`` pairs; ``start`` resumes the schedule (a fresh optimiser after
        densification)."""
        groups = [{"params": [p], "lr": lr} if isinstance(p, torch.Tensor) else {"params": [p[0]], "lr": p[1]}
                  for p in params]
        for g in groups:
            g["base_lr"] = g["lr"]
        opt = torch.optim.Adam(groups, fused=self.device.type == "cuda")   # one kernel for all groups on a GPU
        end = self.cfg.lr_end_factor

        class Linear:
            def __init__(self):
                self.i = start
                self.step()

            def step(self):
                f = 1 - (1 - end) * min(self.i, iters) / max(iters, 1)
                for grp in opt.param_groups:
                    grp["lr"] = grp["base_lr"] * f
                self.i += 1

        return opt, Linear()

    def _gaussian_step(self, image: np.ndarray, pose: np.ndarray, iters: int, depth_target: np.ndarray,
                       depth_mask: np.ndarray, densify_at: tuple[int, ...], flow_info=None) -> dict:
        """Gaussians only (camera fixed): photometric + depth (on ``depth_mask``) + flow (moving Gaussians) +
        isotropy; still centres and old colours frozen; error-driven densification at ``densify_at``."""
        gt = torch.as_tensor(image, dtype=torch.float32, device=self.device)
        D = torch.as_tensor(depth_target, dtype=torch.float32, device=self.device)
        Dw = self._depth_term(D, torch.as_tensor(depth_mask, device=self.device))
        V = torch.as_tensor(pose, dtype=torch.float32, device=self.device)
        image_loss = ImageLoss(gt, D, Dw, self.cfg.lambda_photo, self.cfg.lambda_depth)
        loss = None
        step = 0
        while step < iters:
            leaves = {k: v.detach().clone().requires_grad_(True) for k, v in self.p.items()}
            lrs = {"colors": self.cfg.lr_color, "opacity_logits": self.cfg.lr_opacity, "means": self.cfg.lr_means}
            opt, sched = self._optimiser(iters, self.cfg.lr_gauss,
                                         [(v, self.cfg.lr_gauss if lrs.get(k) is None else lrs[k]) for k, v in leaves.items()], start=step)
            old = self.birth < self.t
            # still Gaussians: ``freeze_still`` parameters fixed once born (centres always after frame 0); the paper
            # preset also freezes every old colour (the code zeroes colour gradients after frame 0)
            frozen = {k: (~self.moving & old) if k in self.cfg.freeze_still else None for k in PARAMS}
            frozen["means"] = ~self.moving if self.t > 0 else None
            if self.cfg.freeze_colors:
                frozen["colors"] = old
            # gradients are multiplied by these (no boolean indexing in the loop: it would sync a GPU every step)
            keep = {k: (~m).float().view(-1, *[1] * (leaves[k].dim() - 1)) for k, m in frozen.items()
                    if m is not None and bool(m.any())}
            flow = self._flow_subset(flow_info)
            stop = min([s for s in densify_at if s > step] + [iters])
            for _it in range(step, stop):
                out = self.render(V, params=leaves)
                iso = self._iso(leaves["log_scales"])
                loss = image_loss(out.colors[0], out.depth[0], out.alpha[0]) + iso
                if flow is not None:
                    idx, target = flow
                    uv, _ = self._project(leaves["means"][idx], V)
                    flow_term = self.cfg.lambda_flow * (uv - target).square().sum(1).mean()
                    loss = loss + flow_term
                opt.zero_grad(set_to_none=True)
                loss.backward()
                for k, m in keep.items():
                    if leaves[k].grad is not None:
                        leaves[k].grad.mul_(m)
                opt.step()
                sched.step()
            step = stop
            self.p = {k: v.detach() for k, v in leaves.items()}
            if step < iters:                  # error-driven densification, then a fresh optimiser
                with torch.no_grad():
                    err = (self.render(V).colors[0] - gt).abs().mean(-1).cpu().numpy()
                prob = np.where(err > self.cfg.densify_error, err, 0.0)
                self._spawn(image, depth_target, pose, prob / max(prob.sum(), 1e-12),
                            int(self.cfg.densify_ratio * self.cfg.n_init), self._moving_now,
                            opacity=self.cfg.densify_opacity)
        if loss is None:
            return {"loss": float("nan")}
        # the last iteration's loss and its isotropy and flow terms (the rest is photometric + depth)
        return {"loss": float(loss.detach()), "loss_iso": float(iso.detach()),
                "loss_flow": float(flow_term.detach()) if flow is not None else 0.0}

    def _flow_subset(self, flow_info):
        """``(index, target)`` of the Gaussians with a valid flow target (indices into the current arrays, which
        densification only appends to), or None."""
        if flow_info is None:
            return None
        idx, target, ok = flow_info
        if not len(idx) or not bool(ok.any()):
            return None
        return idx[ok], target[ok]

    def _pnp_init(self, frame: FrameInput) -> np.ndarray | None:
        """A closed-form start for C1: the previous frame's rendered still surface, carried by the optical flow,
        gives 3D–2D matches; PnP + RANSAC on them. None when there are too few reliable matches."""
        import cv2

        from vision3d.scene4d.init import unproject

        if self._prev_depth is None or frame.flow_in is None:
            return None
        step = max(2, int(np.sqrt(self.W * self.H / 3000)))
        ys, xs = np.mgrid[step // 2:self.H:step, step // 2:self.W:step]
        ok = (self._prev_depth[ys, xs] > 0) & ~self._prev_moving[ys, xs]
        if frame.occluded_in is not None:
            ok &= ~frame.occluded_in[ys, xs]
        if ok.sum() < 30:
            return None
        xy = np.stack([xs[ok], ys[ok]], 1).astype(np.float64)
        X = unproject(xy, self._prev_depth[ys, xs][ok], self.K, self.poses[-1]).astype(np.float64)
        x = xy + np.stack([frame.flow_in[0][ys, xs][ok], frame.flow_in[1][ys, xs][ok]], 1)
        guess = predict_next(self.poses)
        rvec, _ = cv2.Rodrigues(guess[:3, :3])
        tvec = guess[:3, 3:4].copy()
        # the tolerance follows the resolution (flow errors in pixels grow with it): 1.5 px at short side 160
        tol = 1.5 * max(1.0, min(self.W, self.H) / 160)
        try:
            good, rvec, tvec, inl = cv2.solvePnPRansac(X, x, self.K, None, rvec, tvec, useExtrinsicGuess=True,
                                                       iterationsCount=200, reprojectionError=tol,
                                                       confidence=0.999, flags=cv2.SOLVEPNP_ITERATIVE)
        except cv2.error:
            return None
        if not good or inl is None or len(inl) < max(20, 0.3 * len(X)):
            return None
        pose = np.eye(4)
        pose[:3, :3] = cv2.Rodrigues(rvec)[0]
        pose[:3, 3] = tvec.reshape(3)
        return pose if np.isfinite(pose).all() else None

    def _camera_step(self, image: np.ndarray, frame: FrameInput, inits: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        """Camera only (Gaussians fixed): photometric loss of the still Gaussians outside moving regions, plus the
        flow of still Gaussians' projected centres. Starts from the first of ``inits`` (name → pose: PnP, then
        constant velocity) unless its loss is over ``start_loss_ratio`` times another's; returns the final pose (the
        start if the step made the loss worse), stopping once converged (``cam_window``/``cam_converged``), and what
        happened (start, loss before and after, how far it moved, iterations run)."""
        gt = torch.as_tensor(image, dtype=torch.float32, device=self.device)
        still = torch.nonzero(~self.moving).reshape(-1)
        first = next(iter(inits.values()))
        with torch.no_grad():
            mov_alpha = self.render(first, torch.nonzero(self.moving).reshape(-1)).alpha[0] if bool(self.moving.any()) \
                else torch.zeros(self.H, self.W, device=self.device)
        mask = (~torch.as_tensor(frame.moving, device=self.device)) & (mov_alpha < 0.5)
        flow = None
        if frame.flow_in is not None and len(still):
            sub = still if len(still) <= 4000 else still[torch.as_tensor(
                self.rng.choice(len(still), 4000, replace=False), device=self.device)]
            _, target, ok = self._flow_targets(self.p["means"][sub], frame.flow_in, frame.occluded_in)
            flow = self._flow_subset((sub, target, ok))
        image_loss = ImageLoss(gt, None, None, self.cfg.lambda_photo, self.cfg.lambda_depth, mask=mask)

        def loss_at(V: torch.Tensor, eager: bool = False) -> torch.Tensor:
            out = self.render(V, still)
            terms = image_loss.terms if eager else image_loss
            loss = terms(out.colors[0], out.depth[0], out.alpha[0])
            if flow is not None:
                sub, target = flow
                uv, _ = self._project(self.p["means"][sub], V)
                loss = loss + self.cfg.lambda_flow * (uv - target).square().sum(1).mean()
            return loss

        with torch.no_grad():     # a wrong PnP pose (flow matches on a failed frame) must not be the start
            start = {k: float(loss_at(torch.as_tensor(p, dtype=torch.float32, device=self.device), eager=True))
                     for k, p in inits.items()}
        # PnP (geometry) unless its start is clearly worse than the alternative's (a failed match set): the
        # photometric loss alone is biased by the model's own errors and, trusted on small differences, let the
        # camera drift (TartanAir with GT depth: ATE 0.012 → 0.040)
        how = next(iter(inits))
        best = min(start, key=start.get)
        if start[how] > self.cfg.start_loss_ratio * start[best]:
            how = best
        base = torch.as_tensor(inits[how], dtype=torch.float32, device=self.device)
        omega = torch.full((3,), 1e-6, device=self.device, requires_grad=True)
        v = torch.zeros(3, device=self.device, requires_grad=True)
        opt, sched = self._optimiser(self.cfg.cam_iters, self.cfg.lr_cam, [omega, v])
        # the best loss seen, kept on the device (no host synchronisation in the loop), tells when the step has
        # converged; the pose returned is the last one (the lowest-loss iterate trusts the loss's noise: TartanAir
        # ATE 0.10–0.13 over three seeds against 0.06–0.09) unless it ends worse than it started
        best = torch.full((), np.inf, device=self.device)
        window, last, ran = self.cfg.cam_window, None, 0
        for it in range(self.cfg.cam_iters):
            loss = loss_at(apply_increment(base, omega, v))
            with torch.no_grad():
                best = torch.minimum(best, loss.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ran = it + 1
            if window > 0 and ran % window == 0 and ran < self.cfg.cam_iters and self.cfg.cam_converged > 0:
                now = float(best)                   # converged: the best loss stopped improving
                if last is not None and now > last * (1 - self.cfg.cam_converged):
                    break
                last = now
        with torch.no_grad():
            pose = apply_increment(base, omega, v)
            end = float(loss_at(pose, eager=True))
            if end > start[how]:        # Adam wandered off a good start: a worse camera cannot be undone later
                omega.zero_()
                v.zero_()
                pose, end = base, start[how]
        # how far the step moved the camera from its start (rotation in degrees, translation in scene units)
        moved = {"cam_rot_deg": float(omega.detach().norm()) * 180 / np.pi, "cam_shift": float(v.detach().norm()),
                 "cam_iters": ran}
        return pose.cpu().double().numpy(), {"pose_init": how, "cam_loss_start": start[how], "cam_loss_end": end,
                                             **moved, **{f"cam_loss_{k}": val for k, val in start.items()}}

    def _aligned_depth(self, frame: FrameInput, pose: np.ndarray) -> np.ndarray:
        """The depth prior of this frame, scaled and shifted to the render of the still Gaussians — where the two
        correlate (``prior_min_corr``); otherwise with the last scale and shift that passed (frame 0's at first).
        Where it disagrees by more than ``prior_trust`` with the render of the scene so far (moving Gaussians where
        they were), the render wins: a failed prior frame must not throw surfaces — and the moving Gaussians
        re-unprojected with it — to the wrong depth."""
        with torch.no_grad():
            still = torch.nonzero(~self.moving).reshape(-1)
            out = self.render(pose, still)
        rd, ra = out.depth[0].cpu().numpy(), out.alpha[0].cpu().numpy()
        w = ((ra > 0.9) & ~frame.moving).astype(np.float64)
        fit = fit_prior_affine(frame.prior, self.kind, rd, w)
        self._prior_corr = float("nan") if fit is None else float(fit[2])
        if fit is not None and fit[2] >= self.cfg.prior_min_corr:
            self._prior_affine = fit[:2]
        d = align_to_render(frame.prior, self.kind, rd, w, affine=self._prior_affine)
        if d is None:    # no overlap (a cut): keep the prior's shape at the scale of the previous frame's depth
            ref = float(np.median(self._prev_depth[self._prev_depth > 0])) if self._prev_depth is not None else 1.0
            d = initial_depth(frame.prior, self.kind)
            return d * ref / max(float(np.median(d)), 1e-6)
        if self.cfg.prior_trust > 0:    # the scene so far (moving Gaussians where they were) as the reference
            with torch.no_grad():
                full = self.render(pose)
            fd, fa = full.depth[0].cpu().numpy(), full.alpha[0].cpu().numpy()
            bad = (fa > 0.9) & (np.abs(d - fd) > self.cfg.prior_trust * fd)
            d = np.where(bad, fd, d).astype(np.float32)
        return d

    def step(self, frame: FrameInput) -> dict:
        """Process the next frame; returns its timings and online PSNR."""
        tic = time.perf_counter()
        image = np.ascontiguousarray(frame.image, np.float32)
        if image.shape[:2] != (self.H, self.W):
            raise InputError(f"frame {self.t + 1} is {image.shape[1]}x{image.shape[0]}, expected {self.W}x{self.H}")
        self.t += 1
        self._moving_now = frame.moving
        cfg = self.cfg
        marks = {}                   # where the frame's time goes (seconds since ``tic``, phase by phase)
        cam = {"pose_init": "given"}     # where the camera's starting pose came from, and the camera step's losses
        made_room = 0
        mse0 = float("nan")
        if self.t == 0:
            pose = np.eye(4) if frame.pose is None else np.asarray(frame.pose, np.float64)
            depth = initial_depth(frame.prior, self.kind)
            self._prior_affine = initial_affine(frame.prior, self.kind)
            prob = texture_probability(image)
            self._spawn(image, depth, pose, prob, cfg.n_init, frame.moving)
            self.poses.append(pose)
            marks["prepare"] = time.perf_counter() - tic
            info = self._gaussian_step(image, pose, cfg.first_iters, depth, np.ones_like(frame.moving),
                                       cfg.densify_first)
        else:
            if frame.flow_in is None:
                raise InputError(f"frame {self.t} has no optical flow from the previous frame")
            made_room = self._make_room()
            if frame.pose is not None:
                pose = np.asarray(frame.pose, np.float64)
            else:
                inits = {"velocity": predict_next(self.poses)}
                pnp = self._pnp_init(frame)
                if pnp is not None:
                    inits = {"pnp": pnp, **inits}
                pose, cam = self._camera_step(image, frame, inits)
            marks["camera"] = time.perf_counter() - tic
            depth = self._aligned_depth(frame, pose)
            flow_info = self._move_dynamic(frame, pose, depth)
            with torch.no_grad():       # new content: no match in the previous frame, or nothing rendered there
                before = self.render(pose)
                alpha = before.alpha[0].cpu().numpy()
                # how well the scene fits before the Gaussian step (camera step + moved Gaussians): a diagnostic
                # that tells a failed camera or prior (low here) from a Gaussian step that diverged (high here)
                mse0 = float((before.colors[0].clamp(0, 1) - torch.as_tensor(image, device=self.device)).square().mean())
            new = (alpha < 0.5) | (frame.new_content if frame.new_content is not None else False)
            new_frac = float(new.mean())
            if new_frac > 0:
                self._spawn(image, depth, pose, new / new.sum(), int(cfg.n_init * new_frac), frame.moving)
            self.poses.append(pose)
            marks["prepare"] = time.perf_counter() - tic
            info = self._gaussian_step(image, pose, cfg.gauss_iters, depth, frame.moving, cfg.densify_steps,
                                       flow_info)
        marks["gaussians"] = time.perf_counter() - tic
        self._check_finite()
        with torch.no_grad():
            self._bound_sizes(pose)
            # near-transparent Gaussians leave; those that earlier frames saw go to the archive, not away
            weak = torch.sigmoid(self.p["opacity_logits"]) <= cfg.prune_opacity
            self._archive(weak & (self.birth < self.t), self.t)
            self._keep(torch.sigmoid(self.p["opacity_logits"]) > cfg.prune_opacity)
            out = self.render(pose)
            # Gaussians within a tenth of the median depth of the camera (diagnostic: a failed prior once put a
            # tenth of them there, and any camera motion then scattered them over the frame)
            z = self._project(self.p["means"], torch.as_tensor(pose, dtype=torch.float32, device=self.device))[1]
            n_near = int((z < 0.1 * z.median()).sum()) if self.n else 0
            self._record = self._record_now()     # before retirement: this frame was fitted with them
            retired = self._retire(pose, out.depth[0], out.alpha[0]) if self.t > 0 else 0
        self._prev_depth = np.where(out.alpha[0].cpu().numpy() > 0.9, out.depth[0].cpu().numpy(), 0.0)
        self._prev_moving = np.asarray(frame.moving, bool)
        mse = float((out.colors[0].clamp(0, 1) - torch.as_tensor(image, device=self.device)).square().mean())
        total = time.perf_counter() - tic
        # phase durations from the marks (camera step, preparation, Gaussian step, pruning/retirement/record)
        ends = [(k, marks[k]) for k in ("camera", "prepare", "gaussians") if k in marks] + [("finish", total)]
        phases = {f"s_{k}": round(e - b, 4) for (k, e), b in zip(ends, [0.0] + [e for _, e in ends[:-1]])}
        return {"frame": self.t, "psnr": -10 * np.log10(max(mse, 1e-10)), "n": self.n, "retired": retired,
                "n_moving": int(self.moving.sum()), "n_near": n_near, "moving_frac": float(np.mean(frame.moving)),
                "seconds": total,
                "prior_corr": self._prior_corr if self.t > 0 else float("nan"), "made_room": made_room,
                "psnr_before": -10 * np.log10(max(mse0, 1e-10)) if np.isfinite(mse0) else float("nan"),
                **cam, **phases, **info}

    def _bound_sizes(self, pose: np.ndarray) -> None:
        """Cap each Gaussian's largest axis at ``max_screen_frac`` of the short image side as seen from this frame's
        camera: a few Gaussians blown up to cover the frame would make every later render slow (each pixel visits
        them) and blur detail that densification should add instead. Still Gaussians whose scales are frozen after
        their first frame keep them (the scene stores one scale for every frame)."""
        V = torch.as_tensor(pose, dtype=torch.float32, device=self.device)
        z = (self.p["means"] @ V[2, :3] + V[2, 3]).clamp_min(1e-3)
        focal = float(0.5 * (self.K[0, 0] + self.K[1, 1]))
        cap = torch.log(self.cfg.max_screen_frac * min(self.W, self.H) * z / focal)[:, None]
        if "log_scales" in self.cfg.freeze_still:
            cap = torch.where((~self.moving & (self.birth < self.t))[:, None], torch.inf, cap)
        self.p["log_scales"] = torch.minimum(self.p["log_scales"], cap)

    def _move_dynamic(self, frame: FrameInput, pose: np.ndarray, depth: np.ndarray):
        """Move each moving Gaussian to ``uv + flow(uv)`` and re-unproject it with this frame's depth (within
        ``max_depth_change`` of its own); returns the flow targets (index, target pixels, validity) for C2's flow
        loss."""
        idx = torch.nonzero(self.moving).reshape(-1)
        if not len(idx) or frame.flow_in is None:
            return None
        _, target, ok = self._flow_targets(self.p["means"][idx], frame.flow_in, frame.occluded_in)
        okn = ok.cpu().numpy()
        tgt = target.cpu().numpy()
        tgt[:, 0] = np.clip(tgt[:, 0], 0, self.W - 1)
        tgt[:, 1] = np.clip(tgt[:, 1], 0, self.H - 1)
        d = bilinear(depth, tgt).reshape(-1)
        if self.cfg.max_depth_change > 0:       # depth changes little between frames; the prior can jump
            _, z = self._project(self.p["means"][idx], torch.as_tensor(pose, dtype=torch.float32, device=self.device))
            z = z.cpu().numpy()
            r = 1 + self.cfg.max_depth_change
            d = np.where(z > 0, np.clip(d, z / r, z * r), d)
        from vision3d.scene4d.init import unproject

        moved = unproject(tgt, d, self.K, pose)
        okn = okn & np.isfinite(moved).all(1) & (d > 0)
        means = self.p["means"].clone()
        sel = idx[torch.as_tensor(okn, device=self.device)]
        means[sel] = torch.as_tensor(moved[okn], device=self.device)
        self.p["means"] = means
        return idx, target, ok

    def frame_record(self) -> dict[str, np.ndarray]:
        """What the 4D scene keeps of the last frame: the moving Gaussians' ids and parameters, plus the still
        Gaussians' colours and opacities where these may change from frame to frame (``scene.assemble``); taken
        right after the frame's fit, so Gaussians retired after it are in it."""
        return self._record if self._record is not None else self._record_now()

    def _record_now(self) -> dict[str, np.ndarray]:
        a = self._arrays()
        mv = a["moving"]
        rec = {"ids": a["ids"][mv], **{k: a[k][mv] for k in PARAMS}}
        if self.still_colors_vary or self.still_opacity_varies:
            rec["still_ids"] = a["ids"][~mv]
        if self.still_colors_vary:
            rec["still_colors"] = a["colors"][~mv].astype(np.float16)
        if self.still_opacity_varies:
            rec["still_opacity"] = a["opacity_logits"][~mv].astype(np.float16)
        return rec

    # ----------------------------------------------------------------------------------------------- resume
    def state(self, archive: bool = True) -> dict[str, np.ndarray]:
        """Everything to resume, and the final scene: active Gaussians first (``death`` −1), then retired ones
        (``archive=False``: active ones only, for checkpoints that keep the retired ones via ``take_archived``)."""
        s = self._arrays()
        s["death"] = np.full(len(s["ids"]), -1, np.int64)
        s["unseen"] = self.unseen.cpu().numpy()
        arch = self.archive if archive else {}
        if arch:
            s = {k: np.concatenate([s[k], arch[k]]) for k in arch} | {"unseen": s["unseen"]}
        s.update(poses=np.stack(self.poses), t=np.array(self.t), next_id=np.array(self.next_id),
                 prev_depth=self._prev_depth if self._prev_depth is not None else np.zeros((0,)),
                 prev_moving=self._prev_moving,
                 prior_affine=np.asarray(self._prior_affine if self._prior_affine is not None else (), np.float64),
                 rng=np.frombuffer(repr(self.rng.bit_generator.state).encode(), np.uint8))
        return s

    def load_state(self, s, archived: list[dict] | None = None) -> None:
        """Resume from ``state()``; ``archived``: the chunks ``take_archived`` gave, when the state was saved
        without its retired Gaussians."""
        import ast

        death = np.asarray(s["death"]) if "death" in s else np.full(len(s["ids"]), -1)
        act, arch = death < 0, death >= 0
        keys = (*PARAMS, "moving", "birth", "ids")
        self._chunks = [{k: np.asarray(s[k])[arch] for k in keys} | {"death": death[arch]}] if arch.any() else []
        self._chunks += [dict(c) for c in archived or [] if len(c.get("ids", ()))]
        self._chunks_taken = len(self._chunks)
        self.p = {k: torch.as_tensor(np.asarray(s[k])[act], device=self.device) for k in PARAMS}
        self.moving = torch.as_tensor(np.asarray(s["moving"])[act], device=self.device).bool()
        self.birth = torch.as_tensor(np.asarray(s["birth"])[act], device=self.device).long()
        self.ids = torch.as_tensor(np.asarray(s["ids"])[act], device=self.device).long()
        unseen = np.asarray(s["unseen"]) if "unseen" in s else np.zeros(int(act.sum()), np.int64)
        self.unseen = torch.as_tensor(unseen, device=self.device).long()
        self.poses = list(np.asarray(s["poses"], np.float64))
        self.t, self.next_id = int(s["t"]), int(s["next_id"])
        self._prev_depth = np.asarray(s["prev_depth"]) if np.asarray(s["prev_depth"]).size else None
        self._prev_moving = np.asarray(s["prev_moving"], bool)
        pa = np.asarray(s["prior_affine"]) if "prior_affine" in s else np.zeros(0)
        self._prior_affine = (float(pa[0]), float(pa[1])) if pa.size == 2 else None
        self.rng.bit_generator.state = ast.literal_eval(bytes(np.asarray(s["rng"])).decode())


def _concat(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]} if chunks else {}

