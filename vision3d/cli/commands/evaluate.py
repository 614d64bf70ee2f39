"""``v3d eval``: measure a method on real data with ground truth, with the metrics its field reports."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

import typer

from vision3d.cli.main import OPTS, app

eval_app = typer.Typer(help="evaluate methods on datasets with ground truth", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


def rows_to_csv(rows: list[dict]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


@eval_app.command("flow")
def eval_flow(
    dataset: str = typer.Option("sintel", help="sintel | sintel-clean | sintel-final | middlebury | <synth folder>"),
    method: list[str] = typer.Option(["dis"], "--method", "-m", help="repeat for several methods"),
    checkpoint: Optional[Path] = typer.Option(None, help="weights for a learned method"),
    out: Path = typer.Option(Path("runs/eval"), "-o", "--out", help="folder for the CSV files"),
    max_samples: Optional[int] = typer.Option(None, help="evaluate only the first N samples"),
) -> None:
    """EPE, px1/3/5, Fl-all (and _occ/_non_occ where masks exist), time per pair and parameters."""
    from vision3d.flow.evaluate import evaluate
    from vision3d.io.atomic import write_text

    summaries = []
    for m in method:
        rows, summary = evaluate(dataset, m, OPTS.device, checkpoint, max_samples)
        tag = Path(dataset).name if Path(dataset).is_dir() else dataset
        write_text(out / f"flow_{tag}_{m}.csv", rows_to_csv(rows))
        summaries.append(summary)
    write_text(out / f"flow_{Path(dataset).name}_summary.csv", rows_to_csv(summaries))
    cols = ["method", "epe", "px1", "px3", "px5", "flall", "ms_per_pair", "parameters"]
    typer.echo(" | ".join(cols))
    for s in summaries:
        typer.echo(" | ".join(f"{s[c]:.3f}" if isinstance(s[c], float) else str(s[c]) for c in cols))
    typer.echo(f"CSV files in {out}")


@eval_app.command("depth")
def eval_depth(
    dataset: str = typer.Option("tartanair", help="nyu | kitti | tartanair | <folder with rgb/ and depth/>"),
    method: list[str] = typer.Option(["geometric"], "--method", "-m",
                                     help="repeat for several methods; 'constant' is the constant-depth baseline"),
    align: str = typer.Option("auto", help="auto (by the method's depth kind) | median | scale-shift | none"),
    out: Path = typer.Option(Path("runs/eval"), "-o", "--out", help="folder for the CSV files"),
    temporal: Optional[bool] = typer.Option(None, "--temporal/--no-temporal",
                                            help="learned methods: flow-guided fusion (default: on for futuredepth)"),
) -> None:
    """abs_rel, delta1, rmse (aligned per depth kind, dataset caps and crops), flicker and the video protocol's
    TAE / abs_rel_video on posed videos, time per frame."""
    from vision3d.depth.evaluate import evaluate
    from vision3d.io.atomic import write_text

    summaries = []
    for m in method:
        r = evaluate(m, dataset, align, **({} if temporal is None or m == "constant" else {"temporal": temporal}))
        tag = Path(dataset).name if Path(dataset).is_dir() else dataset
        write_text(out / f"depth_{tag}_{m}.csv", rows_to_csv(r["samples"]))
        summaries.append({"method": m, "kind": r["kind"], **{k: r[k] for k in ("abs_rel", "delta1", "rmse")},
                          **{k: r.get(k, float("nan")) for k in ("flicker", "flicker_frame", "tae", "abs_rel_video")},
                          "seconds_per_frame": r["seconds"]})
    write_text(out / f"depth_{Path(dataset).name}_summary.csv", rows_to_csv(summaries))
    cols = ["method", "kind", "abs_rel", "delta1", "rmse", "flicker", "flicker_frame", "tae", "abs_rel_video", "seconds_per_frame"]
    typer.echo(" | ".join(cols))
    for s in summaries:
        typer.echo(" | ".join(f"{s[c]:.3f}" if isinstance(s[c], float) else str(s[c]) for c in cols))
    typer.echo(f"CSV files in {out}")


@eval_app.command("scene4d")
def eval_scene4d(
    dataset: str = typer.Option("blackswan", help="a DAVIS sequence name in ../shared/data (blackswan, dog, ...) | "
                                                  "tartanair | synth (the shipped sample clip)"),
    preset: str = typer.Option("fast", "--preset", help="fast | paper"),
    depth: str = typer.Option("geometric", "--depth", help="depth prior (tartanair, synth: 'import' uses the GT depth)"),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="use the first N frames"),
    short_side: Optional[int] = typer.Option(None, "--short-side", help="processing size (default: the preset's)"),
    iterations: float = typer.Option(1.0, "--iterations", help="scale the preset's iteration counts"),
    out: Path = typer.Option(Path("runs/eval"), "-o", "--out", help="folder for the runs and the CSV"),
) -> None:
    """Run video2scene on a dataset and score it: DAVIS re-render PSNR/SSIM + J&F, TartanAir ATE/RPE, synthetic
    trajectory/depth/track errors and novel views."""
    from pipelines.video2scene import Video2SceneConfig
    from vision3d.cli.progress import stage_progress
    from vision3d.core.device import resolve_device
    from vision3d.errors import InputError
    from vision3d.flow.datasets import data_root
    from vision3d.io.atomic import write_text
    from vision3d.scene4d import benchmarks

    cfg = Video2SceneConfig.preset(preset)
    cfg.frames.max_frames = max_frames
    if short_side is not None:
        cfg.frames.short_side = short_side
    cfg.scene.iterations = iterations
    device = str(resolve_device(OPTS.device))
    cfg.flow.device = cfg.depth.device = cfg.scene.device = device
    cfg.depth.method = depth
    root = data_root()
    run = out / f"scene4d_{dataset}_{preset}_{depth}"
    with stage_progress(OPTS.verbosity) as cb:
        if dataset == "synth":
            from pipelines.demo import SAMPLE

            r = benchmarks.eval_synth(SAMPLE, run, cfg, depth, cb)
        elif dataset == "tartanair":
            if not (root / "tartanair_seq").is_dir():
                raise InputError("TartanAir is not in the shared data", path=root / "tartanair_seq")
            r = benchmarks.eval_tartanair(root / "tartanair_seq", run, cfg, depth, cb)
        else:
            seq = next((p for p in (root / "davis2016_480p" / "JPEGImages" / dataset,
                                    root / "davis_extra" / "JPEGImages" / "480p" / dataset) if p.is_dir()), None)
            if seq is None:
                raise InputError(f"unknown scene4d dataset {dataset!r}",
                                 fix="use synth, tartanair or a DAVIS sequence in ../shared/data")
            ann = Path(str(seq).replace("JPEGImages", "Annotations"))
            r = benchmarks.eval_davis(seq, ann, run, cfg, cb)
    r = {"dataset": dataset, "preset": preset, **r}
    write_text(out / f"scene4d_{dataset}_{preset}_{depth}.csv", rows_to_csv([r]))
    typer.echo(" | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
    typer.echo(f"run folder: {run}")
