"""Train a learned flow model (compactflownet | streamflow) on the synthetic engine, on the fly.

Batches come from ``vision3d.synth`` (layered 3D scenes textured with procedural patterns and, when the
shared photos exist, real photos; small and large motions; occlusions; photometric changes between frames),
rendered in a background worker. Validation on real data (Middlebury, Sintel clean) is logged as a curve.
Resumable: ``--resume`` continues from ``RUN/train_state.pt``. The final weights go to
``assets/checkpoints/<model>/<model>.safetensors`` with a JSON config and a model card.

    python scripts/train_flow.py --model compactflownet --minutes 20
    python scripts/train_flow.py --model streamflow --device cuda --steps 0 --minutes 7 --workers 6   # time-based

``--steps 0`` runs the one-cycle learning-rate schedule over the wall-time budget instead of a step count (for a
machine whose speed is not known beforehand); ``--init CKPT`` starts from a checkpoint's weights with a fresh
optimiser (fine-tuning a shipped model).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from vision3d.flow.datasets import data_root
from vision3d.flow.learned import CHECKPOINT_DIR, model_class
from vision3d.io.atomic import atomic_path, write_text
from vision3d.io.checkpoint import save_checkpoint
from vision3d.train.state import load_train_state, save_train_state

REPO = Path(__file__).resolve().parents[1]


class SynthStream(torch.utils.data.IterableDataset):
    """Endless synthetic batches; each worker seeds its own generator."""

    def __init__(self, model_name: str, frames: int, width: int, height: int, batch: int, seed: int,
                 photo_dirs: tuple[str, ...], small_frac: float = 0.5):
        self.args = (model_name, frames, width, height, batch, seed, photo_dirs, small_frac)

    def __iter__(self):
        from vision3d.synth import PhotometricAugment, SynthConfig, make_batch

        _, frames, width, height, batch, seed, photo_dirs, small_frac = self.args
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng(seed + (info.id if info else 0) * 100003)
        torch.set_num_threads(1)
        textures = "mixed" if photo_dirs else "procedural"
        base = SynthConfig(width=width, height=height, n_frames=frames, texture_source=textures,
                           photo_dirs=photo_dirs)
        small, large = base.replace(motion="small"), base.replace(motion="large")
        augment = PhotometricAugment()
        while True:
            cfg = small if rng.random() < small_frac else large
            b = make_batch(cfg, batch, rng, augment=augment)
            yield (torch.from_numpy(b.images).float(), torch.from_numpy(b.flow).float(),
                   torch.from_numpy(b.valid).float())


def validate(model, max_side: int | None = None) -> dict:
    """Mean EPE on Middlebury and Sintel clean (skipped when the shared data is absent)."""
    from vision3d.flow.datasets import iter_dataset
    from vision3d.flow.evaluate import evaluate_sample
    from vision3d.flow.registry import estimator_from_model

    out = {}
    if not data_root().is_dir():
        return out
    model.eval()
    est = estimator_from_model(model)
    for name in ("middlebury", "sintel-clean", "sintel-final"):
        if not any((data_root() / d).is_dir() for d in ("middlebury_flow", "sintel_flow")):
            continue
        rows = [evaluate_sample(est, s) for s in iter_dataset(name)]
        out[name] = float(np.mean([r["epe"] for r in rows]))
    model.train()
    return out


def model_card(name: str, model, args, steps_done: int, seconds: float, history: list, val: dict) -> str:
    params = sum(p.numel() for p in model.parameters())
    lines = [f"# {name} — model card", "",
             f"- **Architecture:** `{type(model).__name__}` config `{json.dumps(model.config_dict())}`",
             f"- **Parameters:** {params:,}",
             "- **Training data:** synthetic only, generated on the fly by `vision3d.synth` (layered 3D planar scenes, "
             "moving camera, independently moving objects, small and large motion presets, photometric changes "
             f"between frames); textures: {'procedural + real photos (' + ', '.join('../shared/data/photos/' + Path(p).name for p in args.photos) + ')' if args.photos else 'procedural'}.",
             f"- **Crop size / frames:** {args.width}×{args.height}, {model.frames_per_clip} frames per sample, "
             f"batch {args.batch}",
             f"- **Optimisation:** AdamW lr {args.lr} (one-cycle), weight decay {args.wd}, grad clip 1.0, "
             f"{steps_done} steps",
             f"- **Compute:** {_hardware(args.device)}, {seconds / 60:.1f} min "
             f"(`python scripts/train_flow.py --model {name} --steps {args.steps} --minutes {args.minutes} "
             f"--width {args.width} --height {args.height} --batch {args.batch} --lr {args.lr} "
             f"--small-frac {args.small_frac} --device {args.device} --workers {args.workers}"
             f"{' --init ' + str(args.init) if args.init else ''}`, with `--resume` to continue)",
             "- **Knowledge distillation:** none (the paper distils from a large teacher; no teacher weights exist "
             "here)" if name == "compactflownet" else "- **Pre-training:** none (the paper starts from ImageNet Twins "
             "weights and FlyingChairs/Things; neither is available here)",
             "", "## Validation (mean EPE, px; full resolution)", ""]
    if not val:    # no real data where it trained (a GPU machine): say how to measure it afterwards
        lines.append("Not validated during training (no `../shared/data` on that machine); measure with "
                     f"`v3d eval flow --dataset sintel-clean --method {name} --checkpoint ...`.")
    else:
        lines += ["| step | " + " | ".join(val) + " |", "|---:|" + "---:|" * len(val)]
    for h in history:
        if h.get("val") and val:
            lines.append(f"| {h['step']} | " + " | ".join(f"{h['val'].get(k, float('nan')):.3f}" for k in val) + " |")
    lines += ["", "Real-data numbers are far behind the paper's (trained on FlyingChairs/Things/Sintel with a GPU for "
                  "days); see docs/results.md for the comparison.", ""]
    return "\n".join(lines)


def _hardware(device: str) -> str:
    """What trained it, for the model card."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))} GPU (torch {torch.__version__})"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def one_cycle(f: float, pct_start: float = 0.05) -> float:
    """Linear warm-up over the first ``pct_start`` of training, then linear decay to 0; ``f`` in [0, 1]."""
    f = min(max(f, 0.0), 1.0)
    return max(f / pct_start, 1e-3) if f < pct_start else max(1 - (f - pct_start) / (1 - pct_start), 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=["compactflownet", "streamflow"])
    ap.add_argument("--preset", default="small", help="model config preset (small | paper)")
    ap.add_argument("--steps", type=int, default=100000, help="0: schedule over the --minutes budget instead")
    ap.add_argument("--minutes", type=float, default=20.0, help="stop after this wall time")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--small-frac", type=float, default=0.5, help="share of clips drawn with the small-motion preset")
    ap.add_argument("--val-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores but the data worker)")
    ap.add_argument("--run", type=Path, default=None, help="run folder (default runs/train/<model>)")
    ap.add_argument("--out", type=Path, default=None, help="checkpoint folder (default assets/checkpoints/<model>)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=1, help="data worker processes (each renders whole batches)")
    ap.add_argument("--init", type=Path, default=None, help="start from this checkpoint's weights (fine-tuning)")
    a = ap.parse_args()
    photo_root = data_root() / "photos"
    a.photos = [str(photo_root / d) for d in ("kodak", "bsds") if (photo_root / d).is_dir()]
    run = a.run or REPO / "runs" / "train" / a.model
    out = a.out or CHECKPOINT_DIR / a.model
    run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(a.seed)
    import os

    torch.set_num_threads(a.threads or max(1, (os.cpu_count() or 2) - 1))
    cls = model_class(a.model)
    cfg_cls = cls.config_class if hasattr(cls, "config_class") else None
    model = cls(getattr(cfg_cls, a.preset)()) if cfg_cls is not None and hasattr(cfg_cls, a.preset) else cls()
    if a.init is not None:
        from vision3d.io.checkpoint import load_checkpoint

        model.load_state_dict(load_checkpoint(a.init, model=a.model)[0])
    model.to(a.device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
    progress = {"f": 0.0}       # share of the schedule done: steps / --steps, or wall time / --minutes
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: one_cycle(progress["f"]))
    step, history = 0, []
    state_path = run / "train_state.pt"
    if a.resume:
        step, history = load_train_state(state_path, model, opt, sched)
        print(f"resumed at step {step}")
    stream = SynthStream(a.model, model.frames_per_clip, a.width, a.height, a.batch, a.seed + step,
                         tuple(a.photos), a.small_frac)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=max(1, a.workers), prefetch_factor=4,
                                         persistent_workers=True)
    prev_minutes = history[-1]["minutes"] if history else 0.0  # wall time of earlier (resumed) sessions
    t_session = time.time()
    t0, losses, last_val = t_session - 60 * prev_minutes, [], {}
    budget = a.minutes * 60
    for images, flow, valid in loader:
        if (a.steps and step >= a.steps) or time.time() - t_session > budget:
            break
        images, flow, valid = images.to(a.device), flow.to(a.device), valid.to(a.device)
        outputs = model(images)
        loss = model.loss(outputs, flow, valid)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        progress["f"] = step / a.steps if a.steps else (time.time() - t0) / (budget + 60 * prev_minutes)
        sched.step()
        losses.append(loss.item())
        if step % 20 == 0:
            print(f"step {step} loss {np.mean(losses[-20:]):.3f} lr {sched.get_last_lr()[0]:.2e} "
                  f"{(time.time() - t0) / 60:.1f} min", flush=True)
        if step % a.val_every == 0:
            last_val = validate(model)
            history.append({"step": step, "loss": float(np.mean(losses[-a.val_every:])), "val": last_val,
                            "minutes": (time.time() - t0) / 60})
            print(f"  val {last_val}", flush=True)
            save_train_state(state_path, model, opt, sched, step, history)
    seconds = time.time() - t0
    last_val = validate(model)
    history.append({"step": step, "loss": float(np.mean(losses[-50:])) if losses else math.nan, "val": last_val,
                    "minutes": seconds / 60})
    save_train_state(state_path, model, opt, sched, step, history)
    with atomic_path(run / "val.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "minutes", "train_loss", *last_val])
        for h in history:
            w.writerow([h["step"], f"{h['minutes']:.2f}", f"{h['loss']:.4f}", *[h["val"].get(k, "") for k in last_val]])
    model.eval()
    meta = {"steps": step, "minutes": round(seconds / 60, 2), "val_epe": last_val, "size": [a.width, a.height]}
    save_checkpoint(out / f"{a.model}.safetensors", {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    model.config_dict(), model=a.model, extra=meta)
    write_text(out / "MODEL_CARD.md", model_card(a.model, model, a, step, seconds, history, last_val))
    print(f"saved {out} after {step} steps ({seconds / 60:.1f} min): {last_val}")


if __name__ == "__main__":
    main()
