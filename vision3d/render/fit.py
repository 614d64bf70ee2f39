"""3DGS fitting: optimise Gaussians to posed images with L1 + D-SSIM and adaptive density control.

The recipe is 3DGS'/gsplat's (Adam with per-parameter learning rates, position lr decaying ×0.01 over the
run and scaled by the scene extent, SH degree raised every ``sh_interval`` steps, λ = 0.2 D-SSIM). On CUDA
with gsplat the densification is gsplat's ``DefaultStrategy``; elsewhere ``DensifyStrategy`` applies the same
rules. Library code: progress goes to a callback, results are returned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from vision3d.core.gaussians import Gaussians, logit, rgb_to_sh0
from vision3d.errors import InputError
from vision3d.io.posed_images import PosedDataset, PosedViews
from vision3d.render.api import rasterize
from vision3d.render.strategy import DensifyConfig, DensifyStrategy


@dataclass
class FitConfig:
    steps: int = 3000
    sh_degree: int = 3
    sh_interval: int = 1000
    init_points: int | None = None  # random initialisation when the data has none (None: 100k CUDA, 10k CPU)
    init_opacity: float = 0.1
    init_max_px: float | None = None  # cap random-init sizes at this many pixels (None: 1 on CPU, no cap on CUDA)
    ssim_lambda: float = 0.2
    lr_means: float = 1.6e-4
    lr_means_final: float = 1.6e-6
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 2.5e-3
    lr_shN: float = 2.5e-3 / 20
    eval_every: int = 0  # 0: evaluate only at the end
    random_background: bool = True  # with RGBA data: a random background per step (discourages floaters)
    seed: int = 0
    backend: str = "auto"
    densify: DensifyConfig = field(default_factory=DensifyConfig)

    @classmethod
    def for_steps(cls, steps: int, **kw) -> FitConfig:
        """Defaults scaled to a run of ``steps`` (3DGS' schedule is for 30k steps)."""
        d = DensifyConfig(refine_start_iter=min(500, steps // 10), refine_stop_iter=max(1, int(steps * 0.5)),
                          reset_every=3000, max_gaussians=kw.pop("max_gaussians", None))
        return cls(steps=steps, sh_interval=max(1, min(1000, steps // 4)), densify=d, **kw)


@dataclass
class FitResult:
    gaussians: Gaussians
    history: list[dict]  # per evaluation: step, minutes, n, train loss, test psnr/ssim
    metrics: dict  # final test-view psnr, ssim (and per view), number of Gaussians, time
    config: dict


def image_metrics(pred: torch.Tensor, gt: torch.Tensor) -> tuple[float, float]:
    """PSNR (dB) and SSIM (11-px Gaussian window) of ``(H,W,3)`` images in [0,1]."""
    import kornia

    pred = pred.clamp(0, 1)
    mse = float(((pred - gt) ** 2).mean())
    psnr = 10 * math.log10(1.0 / max(mse, 1e-12))
    ssim = float(kornia.metrics.ssim(pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None], 11).mean())
    return psnr, ssim


def _init_random(n: int, dataset: PosedDataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points in a cube around the cameras' look-at region (3DGS' NeRF-synthetic initialisation)."""
    cams = dataset.train.cameras
    centre = cams.centers.mean(0)
    # where the cameras look: least-squares closest point to all optical axes
    dirs = cams.cam_to_world[:, :3, 2]
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for c, d in zip(cams.centers, dirs):
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ c
    target = np.linalg.lstsq(A, b, rcond=None)[0] if np.linalg.matrix_rank(A) == 3 else centre
    half = 0.5 * float(np.median(np.linalg.norm(cams.centers - target, axis=1)))
    pts = target + rng.uniform(-half, half, (n, 3))
    return pts.astype(np.float32), rng.uniform(0, 1, (n, 3)).astype(np.float32)


def _nn_scale(points: np.ndarray) -> np.ndarray:
    """Mean distance to the 3 nearest neighbours (the 3DGS initial scale)."""
    from scipy.spatial import cKDTree

    k = min(4, len(points))
    if k < 2:
        return np.full(len(points), 0.01, np.float32)
    d, _ = cKDTree(points).query(points, k=k)
    return np.sqrt((d[:, 1:] ** 2).mean(1)).clip(1e-7).astype(np.float32)


def init_params(dataset: PosedDataset, cfg: FitConfig, device) -> torch.nn.ParameterDict:
    """Gaussian parameters in gsplat's training layout (log scales, logit opacities, sh0 + shN)."""
    rng = np.random.default_rng(cfg.seed)
    if dataset.points is not None and len(dataset.points):
        pts = dataset.points
        cols = dataset.point_colors if dataset.point_colors is not None else np.full_like(pts, 0.5)
    else:
        cpu = torch.device(device).type == "cpu"
        pts, cols = _init_random(cfg.init_points or (10_000 if cpu else 100_000), dataset, rng)
    n = len(pts)
    k = (cfg.sh_degree + 1) ** 2
    quats = np.zeros((n, 4), np.float32)
    quats[:, 0] = 1
    scales = _nn_scale(pts)
    cap = cfg.init_max_px
    if cap is None and dataset.points is None and torch.device(device).type == "cpu":
        cap = 1.0  # random points are far apart: uncapped they cover the screen and cost ~30 pairs more per pixel
    if cap:
        cams = dataset.train.cameras
        dist = np.median(np.linalg.norm(cams.centers[None] - pts[:, None], axis=2), axis=1)
        scales = np.minimum(scales, cap * dist / float(np.median(cams.K[:, 0, 0])))
    p = {"means": pts, "scales": np.log(scales)[:, None].repeat(3, 1), "quats": quats,
         "opacities": np.full(n, logit(cfg.init_opacity), np.float32),
         "sh0": rgb_to_sh0(cols)[:, None, :].astype(np.float32), "shN": np.zeros((n, k - 1, 3), np.float32)}
    return torch.nn.ParameterDict({name: torch.nn.Parameter(torch.tensor(v, dtype=torch.float32, device=device))
                                   for name, v in p.items()})


def to_gaussians(params: torch.nn.ParameterDict) -> Gaussians:
    sh = torch.cat([params["sh0"], params["shN"]], 1)
    g = Gaussians(params["means"].detach().cpu().numpy(), params["quats"].detach().cpu().numpy(),
                  params["scales"].detach().cpu().numpy(), params["opacities"].detach().cpu().numpy(),
                  sh=sh.detach().cpu().numpy())
    return g.subset(g.finite_mask())


def _render_input(params: torch.nn.ParameterDict) -> dict:
    return {"means": params["means"], "quats": params["quats"], "log_scales": params["scales"],
            "opacity_logits": params["opacities"], "sh": torch.cat([params["sh0"], params["shN"]], 1)}


@torch.no_grad()
def evaluate_views(params, views: PosedViews, background, backend: str, sh_degree: int) -> dict:
    """Render every view and score it; returns mean and per-view PSNR/SSIM."""
    dev = params["means"].device
    bg = torch.tensor(background or (0.0, 0.0, 0.0), device=dev)
    rows = []
    for i in range(len(views)):
        out = rasterize(_render_input(params), _cam(views, i, dev),
                        views.cameras.width, views.cameras.height, backend=backend, background=bg,
                        sh_degree=sh_degree)
        rows.append(image_metrics(out.colors[0], torch.from_numpy(views.images[i]).to(dev)))
    psnr, ssim = (float(np.mean(v)) for v in zip(*rows))
    return {"psnr": psnr, "ssim": ssim, "views": [{"name": views.names[i], "psnr": r[0], "ssim": r[1]}
                                                 for i, r in enumerate(rows)]}


def _cam(views: PosedViews, i: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    K, V = views.cameras.to_torch(device)
    return V[i:i + 1], K[i:i + 1]


def _strategy(backend: str, cfg: FitConfig):
    if backend == "gsplat":
        from gsplat.strategy import DefaultStrategy

        d = cfg.densify
        return DefaultStrategy(prune_opa=d.prune_opa, grow_grad2d=d.grow_grad2d, grow_scale3d=d.grow_scale3d,
                               prune_scale3d=d.prune_scale3d, refine_start_iter=d.refine_start_iter,
                               refine_stop_iter=d.refine_stop_iter, reset_every=d.reset_every,
                               refine_every=d.refine_every)
    return DensifyStrategy(cfg.densify)


def fit_splats(dataset: PosedDataset, cfg: FitConfig | None = None, device: str | torch.device = "cpu",
               progress: Callable[[int, int, dict], None] | None = None) -> FitResult:
    """Fit 3D Gaussians to ``dataset.train``; score on ``dataset.test`` (or the train views when it has none)."""
    cfg = cfg or FitConfig()
    if cfg.steps < 1:
        raise InputError(f"steps must be ≥ 1, got {cfg.steps}")
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    from vision3d.render.api import pick_backend

    backend = pick_backend(cfg.backend, device)
    params = init_params(dataset, cfg, device)
    scale = dataset.scene_extent
    lrs = {"means": cfg.lr_means * scale, "scales": cfg.lr_scales, "quats": cfg.lr_quats,
           "opacities": cfg.lr_opacities, "sh0": cfg.lr_sh0, "shN": cfg.lr_shN}
    optimizers = {k: torch.optim.Adam([params[k]], lr=lr, eps=1e-15) for k, lr in lrs.items()}
    decay = (cfg.lr_means_final / cfg.lr_means) ** (1.0 / cfg.steps)
    strategy = _strategy(backend, cfg)
    state = strategy.initialize_state(scene_scale=scale)
    views = dataset.train
    images = torch.from_numpy(views.images).to(device)
    alphas = torch.from_numpy(views.alpha).to(device) if views.alpha is not None and cfg.random_background \
        else None
    Ks, Vs = views.cameras.to_torch(device)
    W, H = views.cameras.width, views.cameras.height
    bg_fixed = torch.tensor(dataset.background or (0.0, 0.0, 0.0), device=device)
    import kornia

    rng = np.random.default_rng(cfg.seed)
    order: list[int] = []
    history, losses, t0 = [], [], time.time()
    test_views = dataset.test if dataset.test is not None and len(dataset.test) else views
    for step in range(cfg.steps):
        if not order:
            order = list(rng.permutation(len(views)))
        i = order.pop()
        sh_degree = min(step // cfg.sh_interval, cfg.sh_degree)
        gt, bg = images[i], bg_fixed
        if alphas is not None:  # re-composite the RGBA ground truth over a random colour
            bg = torch.rand(3, device=device)
            gt = gt + (1 - alphas[i])[..., None] * (bg - bg_fixed)
        out = rasterize(_render_input(params), (Vs[i:i + 1], Ks[i:i + 1]), W, H, backend=backend,
                        background=bg, sh_degree=sh_degree, retain_screen_grad=True)
        info = out.meta if backend == "gsplat" else {"out": out, "width": W, "height": H}
        strategy.step_pre_backward(params, optimizers, state, step, info)
        pred = out.colors[0]
        l1 = (pred - gt).abs().mean()
        ssim = kornia.metrics.ssim(pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None], 11).mean()
        loss = (1 - cfg.ssim_lambda) * l1 + cfg.ssim_lambda * (1 - ssim)
        loss.backward()
        losses.append(float(loss.detach()))
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        for g in optimizers["means"].param_groups:
            g["lr"] *= decay
        if backend == "gsplat":
            strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
        else:
            strategy.step_post_backward(params, optimizers, state, step, info)
        done = step + 1
        evaluate = cfg.eval_every and (done % cfg.eval_every == 0) and done < cfg.steps
        row = {"step": done, "loss": float(np.mean(losses[-50:])), "n": len(params["means"]),
               "minutes": (time.time() - t0) / 60}
        if evaluate:
            m = evaluate_views(params, test_views, dataset.background, backend, sh_degree)
            row.update(psnr=m["psnr"], ssim=m["ssim"])
            history.append(row)
        if progress:
            progress(done, cfg.steps, row)
    seconds = time.time() - t0
    final = evaluate_views(params, test_views, dataset.background, backend, min(cfg.steps // cfg.sh_interval,
                                                                                     cfg.sh_degree))
    history.append({"step": cfg.steps, "loss": float(np.mean(losses[-50:])), "n": len(params["means"]),
                    "minutes": seconds / 60, "psnr": final["psnr"], "ssim": final["ssim"]})
    metrics = {"psnr": final["psnr"], "ssim": final["ssim"], "views": final["views"],
               "eval_split": "test" if test_views is not views else "train", "n_gaussians": len(params["means"]),
               "seconds": round(seconds, 1), "backend": backend}
    return FitResult(to_gaussians(params), history, metrics, asdict(cfg))
