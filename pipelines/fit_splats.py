"""The fit-splats job: posed images → 3D Gaussians (standard 3DGS ``.ply``) + test-view scores and renders.

Stages: ``fit`` (load the dataset, optimise, write ``splats.ply``, the training curve and the test-view PSNR/
SSIM) → ``render`` (each test view rendered beside its ground truth). Re-running with the same inputs and
settings skips finished stages.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision3d.runner import ProgressFn, Runner, RunResult, Stage, StageContext


@dataclass
class FitJobConfig:
    downscale: float = 1.0
    steps: int = 3000
    sh_degree: int = 3
    init_points: int | None = None
    init_max_px: float | None = None
    max_gaussians: int | None = None
    eval_every: int = 0
    backend: str = "auto"
    device: str = "cpu"
    seed: int = 0


@dataclass
class RenderJobConfig:
    downscale: float = 1.0


def _dataset(ctx: StageContext):
    from vision3d.io.posed_images import load_posed_dataset

    return load_posed_dataset(ctx.inputs["data"], downscale=ctx.config.downscale)


def _fit_config(c: FitJobConfig):
    from vision3d.render.fit import FitConfig

    return FitConfig.for_steps(c.steps, sh_degree=c.sh_degree, init_points=c.init_points, init_max_px=c.init_max_px,
                               max_gaussians=c.max_gaussians, eval_every=c.eval_every, backend=c.backend,
                               seed=c.seed)


def stage_fit(ctx: StageContext) -> dict:
    """Optimise Gaussians on the train views; write the PLY, the curve and the test-view scores."""
    from vision3d.io.atomic import atomic_path, write_json
    from vision3d.io.splats import write_splat_ply
    from vision3d.render.fit import fit_splats

    data = _dataset(ctx)
    ctx.log(f"{data.kind}: {len(data.train)} train / {len(data.test) if data.test else 0} test views at "
            f"{data.train.cameras.width}x{data.train.cameras.height}")

    def progress(step, total, row):
        note = f"{row['n']} Gaussians, loss {row['loss']:.3f}" + (f", PSNR {row['psnr']:.2f}" if "psnr" in row else "")
        ctx.progress(step, total, note)

    res = fit_splats(data, _fit_config(ctx.config), device=ctx.config.device, progress=progress)
    write_splat_ply(ctx.out / "splats.ply", res.gaussians)
    with atomic_path(ctx.out / "curve.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["step", "minutes", "n", "loss", "psnr", "ssim"], extrasaction="ignore")
        w.writeheader()
        w.writerows(res.history)
    write_json(ctx.out / "metrics.json", {**res.metrics, "dataset": data.kind, "dataset_info": data.info,
                                          "width": data.train.cameras.width, "height": data.train.cameras.height,
                                          "train_views": len(data.train), "config": res.config})
    return {k: res.metrics[k] for k in ("psnr", "ssim", "n_gaussians", "seconds", "eval_split", "backend")}


def stage_render(ctx: StageContext) -> dict:
    """Render each evaluation view from the fitted PLY beside its ground truth (``renders/<name>.png``)."""
    import torch

    from vision3d.io.images import write_image
    from vision3d.io.splats import read_splat_ply
    from vision3d.render import rasterize

    data = _dataset(ctx)
    views = data.test if data.test is not None and len(data.test) else data.train
    g = read_splat_ply(ctx.dep("fit") / "splats.ply")
    (ctx.out / "renders").mkdir()
    K, V = views.cameras.to_torch()
    bg = torch.tensor(data.background or (0.0, 0.0, 0.0))
    for i in range(len(views)):
        with torch.no_grad():
            out = rasterize(g, (V[i:i + 1], K[i:i + 1]), views.cameras.width, views.cameras.height, background=bg,
                            backend="torch")
        pred = out.colors[0].clamp(0, 1).numpy()
        write_image(ctx.out / "renders" / f"{Path(views.names[i]).stem}.png",
                    np.concatenate([pred, views.images[i]], axis=1))
        ctx.progress(i + 1, len(views))
    return {"views": len(views)}


def run_fit_splats(data: str | Path, out: str | Path, config: FitJobConfig | None = None, force=None,
                   progress: ProgressFn | None = None) -> RunResult:
    cfg = config or FitJobConfig()
    stages = [Stage("fit", stage_fit, cfg, files=["data"], outputs=["splats.ply", "metrics.json"], version=1),
              Stage("render", stage_render, RenderJobConfig(cfg.downscale), deps=["fit"], files=["data"],
                    outputs=["renders"])]
    return Runner(out, "fit-splats", progress).run(stages, {"data": data}, force=force)
