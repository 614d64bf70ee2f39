"""Train the depth models (and PrimeDepth's diffusion backbone) on data made here; resumable.

- ``--model denoiser``: the small diffusion UNet as an ε-prediction DDPM denoiser on crops of the shared real
  photos (Kodak, BSDS) → ``runs/train/denoiser/denoiser.safetensors`` (PrimeDepth's default backbone).
- ``--model primedepth``: the refiner on top of the frozen denoiser, on frames of the 3D synthetic pool.
- ``--model futuredepth``: the whole video model on 4-frame clips of the 3D synthetic pool, with the F-Net
  (next-step feature prediction) and R-Net (adaptively masked reconstruction) losses.
Depth models learn affine-invariant inverse depth (scale-and-shift-invariant L1 + gradient matching). The
pool comes from ``scripts/make_depth_pool.py``. Validation: TartanAir abs_rel (scale-shift aligned).

    python scripts/train_depth.py --model denoiser --minutes 15
    python scripts/train_depth.py --model primedepth --minutes 15
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from vision3d.flow.datasets import data_root
from vision3d.io.atomic import write_text
from vision3d.io.checkpoint import SHIPPED_CHECKPOINTS, load_checkpoint, save_checkpoint
from vision3d.train.state import load_train_state, save_train_state

REPO = Path(__file__).resolve().parents[1]
POOL = REPO / "runs" / "data" / "scenes3d"


class PhotoCrops(torch.utils.data.IterableDataset):
    """Random crops (random scale, flips) of the shared photos, in [0,1]."""

    def __init__(self, size: tuple[int, int], batch: int, seed: int):
        self.size, self.batch, self.seed = size, batch, seed

    def __iter__(self):
        import cv2

        from vision3d.io.images import list_images, read_image

        torch.set_num_threads(1)
        rng = np.random.default_rng(self.seed)
        files = [p for d in ("kodak", "bsds") if (data_root() / "photos" / d).is_dir()
                 for p in list_images(data_root() / "photos" / d)]
        photos = [read_image(p) for p in files]
        h, w = self.size
        while True:
            out = []
            for _ in range(self.batch):
                img = photos[int(rng.integers(len(photos)))]
                s = rng.uniform(max(h / img.shape[0], w / img.shape[1]), 1.0)
                ch, cw = int(h / s), int(w / s)
                y, x = int(rng.integers(0, img.shape[0] - ch + 1)), int(rng.integers(0, img.shape[1] - cw + 1))
                crop = cv2.resize(img[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA)
                out.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
            yield torch.from_numpy(np.ascontiguousarray(np.stack(out))).permute(0, 3, 1, 2).float()


class PoolClips(torch.utils.data.IterableDataset):
    """Batches of clips (``frames`` per sample) from the 3D pool: images, metric depth, valid mask; with
    ``geometry`` also the ground-truth reprojection of the second-last frame into the last one (landing pixels,
    ``rz``/``tz`` of the moved depth and co-visibility), for the temporal consistency loss."""

    def __init__(self, frames: int, batch: int, seed: int, geometry: bool = False):
        self.frames, self.batch, self.seed, self.geometry = frames, batch, seed, geometry

    def __iter__(self):
        from vision3d.depth.metrics import covisible, reprojection_geometry

        torch.set_num_threads(1)
        rng = np.random.default_rng(self.seed)
        files = sorted(POOL.glob("clip_*.npz"))
        cache: dict = {}
        while True:
            imgs, deps, masks, geo = [], [], [], []
            for _ in range(self.batch):
                f = files[int(rng.integers(len(files)))]
                if f not in cache:
                    with np.load(f) as z:
                        cache[f] = (z["images"], z["depth"].astype(np.float32), z["alpha"], z["K"], z["world_to_cam"])
                im, de, al, K, w2c = cache[f]
                t = im.shape[0]
                start = int(rng.integers(0, t - self.frames + 1))
                idx = np.arange(start, start + self.frames)
                if self.frames > 1 and rng.random() < 0.5:
                    idx = idx[::-1]
                a, d, m = im[idx].astype(np.float32) / 255.0, de[idx], al[idx] > 250
                if self.geometry:                                  # second-last → last, in the final time order
                    T_1_0 = w2c[idx[-1]] @ np.linalg.inv(w2c[idx[-2]])
                    _, mx, my, rz, tz = reprojection_geometry(d[-2], K, T_1_0)
                    cov = covisible(d[-2], d[-1], K, T_1_0) & m[-2]
                    g = [mx, my, rz, cov.astype(np.float32)]
                flip = rng.random() < 0.5
                if flip:
                    a, d, m = a[:, :, ::-1], d[:, :, ::-1], m[:, :, ::-1]
                    if self.geometry:   # mirror the maps; landing x mirrors too (principal point at the centre)
                        w = d.shape[-1]
                        g = [(w - 1 - g[0])[:, ::-1], g[1][:, ::-1], g[2][:, ::-1], g[3][:, ::-1]]
                if self.geometry:
                    geo.append((np.stack(g), tz))
                gain = rng.uniform(0.7, 1.3, 3).astype(np.float32)
                imgs.append(np.clip(a * gain, 0, 1))
                deps.append(d)
                masks.append(m & np.isfinite(d) & (d > 0.05))
            out = (torch.from_numpy(np.ascontiguousarray(np.stack(imgs))).permute(0, 1, 4, 2, 3).float(),
                   torch.from_numpy(np.ascontiguousarray(np.stack(deps))),
                   torch.from_numpy(np.ascontiguousarray(np.stack(masks))))
            if self.geometry:
                out += (torch.from_numpy(np.ascontiguousarray(np.stack([g for g, _ in geo]))).float(),
                        torch.tensor([tz for _, tz in geo], dtype=torch.float32))
            yield out


def validate_depth(model, name: str, n: int = 8) -> dict:
    """TartanAir abs_rel / delta1 (inverse depth, scale-shift aligned, cap 80 m) on ``n`` frames."""
    from vision3d.depth.datasets import iter_depth_dataset
    from vision3d.depth.learned import process_size, resize_back, to_batch
    from vision3d.depth.metrics import depth_metrics

    if not (data_root() / "tartanair_seq").is_dir():
        return {}
    samples = list(iter_depth_dataset("tartanair"))[:n + 3]
    model.eval()
    rows = []
    with torch.no_grad():
        for i in range(3, len(samples)):
            s = samples[i]
            h, w = s.depth.shape
            size = process_size(h, w, model.cfg.process_size)
            if name == "futuredepth":
                x = to_batch([samples[j].image for j in range(i - model.cfg.frames + 1, i + 1)], size, "cpu")[None]
            else:
                x = to_batch([s.image], size, "cpu")
            pred = resize_back(model(x), (h, w))[0]
            rows.append(depth_metrics(pred, s.depth, "inverse", cap=s.cap))
    model.train()
    return {"tartanair_abs_rel": float(np.mean([r["abs_rel"] for r in rows])),
            "tartanair_delta1": float(np.mean([r["delta1"] for r in rows]))}


def build(name: str, backbone: Path | None):
    if name == "denoiser":
        from vision3d.depth.models.diffusion_unet import DiffusionUNet

        return DiffusionUNet()
    if name == "primedepth":
        from vision3d.depth.models.primedepth import PrimeDepth

        m = PrimeDepth()
        if backbone is not None and str(backbone).startswith("sd:"):
            m.use_sd_backbone(str(backbone)[3:])  # a local Stable Diffusion folder (diffusers layout)
            return m
        path = backbone or REPO / "runs" / "train" / "denoiser" / "denoiser.safetensors"
        if not path.is_file():
            raise SystemExit(f"PrimeDepth needs the pre-trained denoiser at {path}: run --model denoiser first")
        state, _, meta = load_checkpoint(path, model="denoiser")
        m.backbone.load_state_dict({k: v.float() for k, v in state.items()})
        m.backbone_meta = meta
        return m
    from vision3d.depth.models.futuredepth import FutureDepth

    return FutureDepth()


def model_card(name: str, model, a, steps: int, minutes: float, history: list) -> str:
    params = sum(p.numel() for p in model.parameters())
    data = ("crops of the 224 shared real photos (Kodak, BSDS500 test)" if name == "denoiser" else
            f"{len(list(POOL.glob('clip_*.npz')))} clips of genuinely 3D synthetic scenes (a textured room with "
            "the shared meshes and primitives as surface Gaussians, photo/procedural textures, moving camera; "
            "`scripts/make_depth_pool.py`), exact depth")
    lines = [f"# {name} — model card", "", f"- **Architecture:** `{type(model).__name__}` "
             f"`{json.dumps(model.config_dict(), default=str)}`", f"- **Parameters:** {params:,}"
             + (" (backbone frozen: the denoiser below)" if name == "primedepth" else ""),
             f"- **Training data:** {data}.", f"- **Crops:** {a.width}×{a.height}, batch {a.batch}",
             f"- **Optimisation:** AdamW lr {a.lr} (cosine), {steps} steps",
             f"- **Compute:** {platform.machine()} CPU, {torch.get_num_threads()} thread(s), {minutes:.1f} min "
             f"(`python scripts/train_depth.py --model {name} --width {a.width} --height {a.height} "
             f"--batch {a.batch}`, `--resume` continues)"]
    if name == "primedepth":
        bm = getattr(model, "backbone_meta", {}).get("extra", {})
        lines.append("- **Backbone:** our own 2.7 M-parameter diffusion UNet pre-trained as an ε-prediction denoiser "
                     f"on random crops of the 224 shared photos ({bm.get('steps', '?')} steps, "
                     f"{bm.get('minutes', '?')} min on this CPU; `--model denoiser`), instead of Stable Diffusion 2.1 "
                     "(865 M parameters, LAION-5B). The "
                     "preimage has no cross-attention maps (no text encoder). Expect far weaker depth than the "
                     "paper's; a local SD folder can be plugged in where available.")
    lines += ["", "## Validation", "", "| step | minutes | train loss | " +
              " | ".join(k for k in (history[-1].get("val") or {})) + " |",
              "|---:|---:|---:|" + "---:|" * len(history[-1].get("val") or {})]
    for h in history:
        lines.append(f"| {h['step']} | {h['minutes']:.1f} | {h['loss']:.4f} | " +
                     " | ".join(f"{v:.4f}" for v in (h.get("val") or {}).values()) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=["denoiser", "primedepth", "futuredepth"])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--val-every", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backbone", type=Path, default=None,
                    help="primedepth backbone: a denoiser checkpoint, or sd:/path for a local Stable Diffusion folder")
    ap.add_argument("--temporal-weight", type=float, default=1.0,
                    help="futuredepth: weight of the reprojection consistency loss between consecutive predictions "
                         "(0 = off; on, each step also predicts the previous frame)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--run", type=Path, default=None, help="run folder (default runs/train/<model>)")
    ap.add_argument("--out", type=Path, default=None,
                    help="checkpoint folder (default assets/checkpoints/<model>; the denoiser stays in its run folder)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    run = a.run or REPO / "runs" / "train" / a.model
    run.mkdir(parents=True, exist_ok=True)
    model = build(a.model, a.backbone)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 *
                                              (1 + math.cos(math.pi * min(s, a.steps) / a.steps)))
    step, history = 0, []
    state_path = run / "train_state.pt"
    if a.resume:
        step, history = load_train_state(state_path, model, opt, sched)
    if a.model == "denoiser":
        from vision3d.depth.models.diffusion_unet import T_STEPS, Diffusion

        data = PhotoCrops((a.height, a.width), a.batch, a.seed + step)
        diffusion = Diffusion()
    else:
        if not list(POOL.glob("clip_*.npz")):
            raise SystemExit(f"no 3D clips in {POOL}: run scripts/make_depth_pool.py first")
        frames = model.cfg.frames if a.model == "futuredepth" else 1
        temporal = a.model == "futuredepth" and a.temporal_weight > 0
        data = PoolClips(frames, a.batch, a.seed + step, geometry=temporal)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=1, prefetch_factor=4,
                                         persistent_workers=True)
    from vision3d.depth.models.common import gradient_loss, normalise_inverse_depth, ssi_loss, \
        temporal_consistency_loss

    prev = history[-1]["minutes"] if history else 0.0
    t0, losses = time.time() - 60 * prev, []
    t_session = time.time()
    model.train()
    for batch in loader:
        if step >= a.steps or time.time() - t_session > 60 * a.minutes:
            break
        if a.model == "denoiser":
            x0 = batch * 2 - 1
            t = torch.randint(0, T_STEPS, (len(x0),))
            eps = torch.randn_like(x0)
            loss = torch.nn.functional.mse_loss(model(diffusion.noise(x0, t, eps), t), eps)
        else:
            imgs, depth, mask = batch[:3]
            if a.model == "futuredepth" and len(batch) == 5:
                # both the last frame and the one before (its window padded by repeating the first frame, as at
                # the start of a video), then the reprojection consistency of the two aligned predictions
                geo, tz = batch[3], batch[4]
                b = len(imgs)
                prev = torch.cat([imgs[:, :1], imgs[:, :-1]], 1)
                pred2, f_loss, r_loss = model(torch.cat([imgs, prev]), train=True)
                loss = 0.1 * (f_loss + r_loss)
                inv = []
                for k, pred in ((-1, pred2[:b]), (-2, pred2[b:])):
                    target, med, sc = normalise_inverse_depth(depth[:, k], mask[:, k], return_stats=True)
                    l_ssi, aligned = ssi_loss(pred, target, mask[:, k])
                    loss = loss + 0.5 * (l_ssi + 0.5 * gradient_loss(aligned, target, mask[:, k].float()))
                    inv.append(aligned * sc[:, None, None] + med[:, None, None])
                loss = loss + a.temporal_weight * temporal_consistency_loss(
                    inv[1], inv[0], geo[:, :2], geo[:, 2], tz, geo[:, 3] > 0.5)
            else:
                target = normalise_inverse_depth(depth[:, -1], mask[:, -1])
                if a.model == "futuredepth":
                    pred, f_loss, r_loss = model(imgs, train=True)
                else:
                    pred, f_loss, r_loss = model(imgs[:, 0]), 0.0, 0.0
                l_ssi, aligned = ssi_loss(pred, target, mask[:, -1])
                loss = l_ssi + 0.5 * gradient_loss(aligned, target, mask[:, -1].float()) + 0.1 * (f_loss + r_loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % 20 == 0:
            print(f"step {step} loss {np.mean(losses[-20:]):.4f} {(time.time() - t0) / 60:.1f} min", flush=True)
        if step % a.val_every == 0:
            val = validate_depth(model, a.model) if a.model != "denoiser" else {}
            history.append({"step": step, "loss": float(np.mean(losses[-a.val_every:])), "val": val,
                            "minutes": (time.time() - t0) / 60})
            print(f"  val {val}", flush=True)
            save_train_state(state_path, model, opt, sched, step, history)
    minutes = (time.time() - t0) / 60
    val = validate_depth(model, a.model) if a.model != "denoiser" else {}
    history.append({"step": step, "loss": float(np.mean(losses[-50:])) if losses else float("nan"), "val": val,
                    "minutes": minutes})
    save_train_state(state_path, model, opt, sched, step, history)
    model.eval()
    out = a.out or (run if a.model == "denoiser" else SHIPPED_CHECKPOINTS / a.model)
    state = {k: v.detach().cpu().half() for k, v in model.state_dict().items()}  # float16: half the file size
    save_checkpoint(out / f"{a.model}.safetensors", state, model.config_dict(), model=a.model,
                    extra={"steps": step, "minutes": round(minutes, 2), "val": val})
    write_text(out / "MODEL_CARD.md", model_card(a.model, model, a, step, minutes, history))
    print(f"saved {out} after {step} steps ({minutes:.1f} min): {val}")


if __name__ == "__main__":
    main()
