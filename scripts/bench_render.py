"""Benchmark Gaussian rasterization; writes docs/bench/render.md (CPU, or CUDA with gsplat when present).

Scenes imitate a converged 3DGS fit: flat Gaussians tiling the visible surfaces of a sphere and a back wall,
sized to their spacing (so more Gaussians means smaller ones) with opacities in [0.3, 1]. Reported per case:
forward and forward+backward time (best of ``--repeats``), candidate pairs per pixel and peak memory.
On the CPU the two backends (``torch`` and the compiled ``cpu``) are timed side by side; the other peer is a dense vectorised renderer (every Gaussian × every pixel, the straightforward PyTorch
approach) at the sizes it fits in memory; on CUDA the peers are a bare ``gsplat.rasterization`` call
(the wrapper's overhead) and gsplat vs the torch backend.

    python scripts/bench_render.py [--threads 2] [--repeats 3] [--quick] [--ply runs/lego/fit/splats.ply]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from vision3d.core.camera import intrinsics, look_at
from vision3d.render import activated, rasterize
from vision3d.render.projection import project_gaussians

REPO = Path(__file__).resolve().parents[1]


def surface_scene(n: int, seed: int = 0, device="cpu") -> dict:
    """Flat Gaussians covering a unit sphere (70%) and a wall behind it (30%), sized to their spacing."""
    rng = np.random.default_rng(seed)
    ns = int(0.7 * n)
    v = rng.normal(size=(ns, 3))
    normal_s = v / np.linalg.norm(v, axis=1, keepdims=True)
    pts_s = normal_s.copy()
    pts_w = np.c_[rng.uniform(-3, 3, n - ns), rng.uniform(-2.5, 2.5, n - ns), np.full(n - ns, 2.5)]
    normal_w = np.tile([0.0, 0.0, -1.0], (n - ns, 1))
    pts, normals = np.r_[pts_s, pts_w], np.r_[normal_s, normal_w]
    spacing = np.r_[np.full(ns, np.sqrt(4 * np.pi / ns)), np.full(n - ns, np.sqrt(30.0 / max(n - ns, 1)))]
    # rotation taking z to the normal (so the thin axis is the normal)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, normals)
    s = np.linalg.norm(axis, axis=1)
    c = normals @ z
    half = np.arctan2(s, c) / 2
    axis = np.where(s[:, None] > 1e-9, axis / np.maximum(s, 1e-9)[:, None], [1.0, 0.0, 0.0])
    quats = np.c_[np.cos(half), axis * np.sin(half)[:, None]]
    scales = np.c_[spacing * 0.6, spacing * 0.6, spacing * 0.06]
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32, device=device)
    return {"means": t(pts), "quats": t(quats), "log_scales": t(np.log(scales)),
            "opacity_logits": t(np.log(1 / rng.uniform(0.3, 1.0, n) - 1 + 1e-6) * -1),
            "colors": t(rng.uniform(0, 1, (n, 3)))}


def camera(width: int, height: int, device="cpu"):
    f = 0.9 * width
    V = torch.tensor(look_at([0.4, -0.3, -3.2], [0, 0, 0.3]), dtype=torch.float32, device=device)[None]
    K = torch.tensor(intrinsics(f, f, (width - 1) / 2, (height - 1) / 2), dtype=torch.float32, device=device)[None]
    return V, K


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_render(g: dict, cams, width: int, height: int, backend: str, repeats: int, device="cpu") -> dict:
    """Best forward and forward+backward times, candidate pairs per pixel and peak memory."""
    params = {k: v.detach().clone().requires_grad_() for k, v in g.items()}
    fwd, both, pairs = [], [], None
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(repeats + 1):  # the first run warms up
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = rasterize(params, cams, width, height, backend=backend)
        _sync(device)
        t1 = time.perf_counter()
        out = rasterize(params, cams, width, height, backend=backend, retain_screen_grad=True)
        out.colors.sum().backward()
        _sync(device)
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        both.append(t2 - t1)
        pairs = out.n_pairs
    row = {"fwd_s": min(fwd[1:]), "fwd_bwd_s": min(both[1:]),
           "pairs_per_px": None if pairs is None else pairs / (width * height)}
    if torch.device(device).type == "cuda":
        row["peak_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return row


def dense_render(g: dict, cams, width: int, height: int) -> torch.Tensor:
    """The peer: every Gaussian × every pixel in one tensor, cumprod transmittance (no culling)."""
    a = activated(g)
    V, K = cams
    p = project_gaussians(a["means"], a["quats"], a["scales"], a["opacities"], V, K, width, height)
    order = torch.argsort(p.depths[0].detach())
    vis = p.visible[0][order]
    idx = order[vis]
    m, con, op = p.means2d[0][idx], p.conics[0][idx], p.opacities[0][idx]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    dx = m[:, 0, None] - xs.reshape(1, -1)
    dy = m[:, 1, None] - ys.reshape(1, -1)
    sigma = 0.5 * (con[:, 0, None] * dx * dx + con[:, 2, None] * dy * dy) + con[:, 1, None] * dx * dy
    alpha = (op[:, None] * torch.exp(-sigma)).clamp_max(0.999) * ((sigma >= 0) & (op[:, None] * torch.exp(-sigma)
                                                                                  >= 1 / 255))
    T = torch.cumprod(torch.cat([torch.ones_like(alpha[:1]), 1 - alpha[:-1]]), 0)
    w = alpha * T
    return (w[..., None] * a["colors"][idx][:, None]).sum(0).reshape(height, width, 3)


def time_dense(g, cams, width, height, repeats) -> float:
    params = {k: v.detach().clone().requires_grad_() for k, v in g.items()}
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        dense_render(params, cams, width, height).sum().backward()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def _both_backends(g, cams, w, h, repeats) -> tuple[dict, dict]:
    return time_render(g, cams, w, h, "torch", repeats), time_render(g, cams, w, h, "cpu", repeats)


def _row(label: str, t: dict, c: dict) -> str:
    return (f"| {label} | {t['pairs_per_px']:.1f} | {t['fwd_s']:.3f} | {t['fwd_bwd_s']:.3f} | {c['fwd_s']:.3f} | "
            f"{c['fwd_bwd_s']:.3f} | {t['fwd_bwd_s'] / c['fwd_bwd_s']:.1f}× |")


def cpu_tables(args) -> list[str]:
    head = ("| {} | pairs / pixel | torch fwd (s) | torch fwd+bwd (s) | cpu fwd (s) | cpu fwd+bwd (s) | "
            "cpu speed-up (fwd+bwd) |")
    rule = "|---:|---:|---:|---:|---:|---:|---:|"
    lines = ["Two CPU backends, measured in the same run: `torch` (vectorised pair compositing in PyTorch) and `cpu` "
             "(numba tile kernels, the default on CPU). Pairs per pixel: candidate (pixel, Gaussian) pairs of the "
             "torch backend.", ""]
    sizes = [10_000, 50_000, 100_000, 300_000] + ([] if args.quick else [1_000_000])
    lines += ["### Scaling with Gaussians (256×256, one camera)", "", head.format("Gaussians"), rule]
    for n in sizes:
        lines.append(_row(f"{n:,}", *_both_backends(surface_scene(n), camera(256, 256), 256, 256, args.repeats)))
        print(lines[-1], flush=True)
    lines += ["", "### Scaling with pixels (50k Gaussians)", "", head.format("image"), rule]
    g = surface_scene(50_000)
    for s in [128, 256, 512] + ([] if args.quick else [1024]):
        lines.append(_row(f"{s}×{s}", *_both_backends(g, camera(s, s), s, s, args.repeats)))
        print(lines[-1], flush=True)
    lines += ["", "### Against the dense peer (every Gaussian × every pixel), forward + backward", "",
              "| Gaussians | image | dense (s) | torch backend (s) | cpu backend (s) | speed-up (dense / cpu) |",
              "|---:|---|---:|---:|---:|---:|"]
    for n, s in ((2_000, 64), (10_000, 64), (10_000, 128)):
        gs, cams = surface_scene(n), camera(s, s)
        dense = time_dense(gs, cams, s, s, args.repeats)
        ours, comp = (r["fwd_bwd_s"] for r in _both_backends(gs, cams, s, s, args.repeats))
        lines.append(f"| {n:,} | {s}×{s} | {dense:.3f} | {ours:.3f} | {comp:.3f} | {dense / comp:.1f}× |")
        print(lines[-1], flush=True)
    if args.ply:
        from vision3d.io.splats import read_splat_ply

        g = {k: torch.tensor(v) for k, v in vars(read_splat_ply(args.ply)).items() if v is not None}
        # a view of the fitted scene: camera at the mean distance, looking at the centroid
        c = g["means"].mean(0).numpy()
        V = torch.tensor(look_at(c + np.array([0.0, -2.0, -3.5]), c), dtype=torch.float32)[None]
        s = 256
        K = torch.tensor(intrinsics(1.1 * s, 1.1 * s, (s - 1) / 2, (s - 1) / 2), dtype=torch.float32)[None]
        r, c = _both_backends(g, (V, K), s, s, args.repeats)
        lines += ["", f"Fitted scene `{args.ply}` ({len(g['means']):,} Gaussians) at 256×256: pairs/pixel "
                      f"{r['pairs_per_px']:.1f}; torch backend forward {r['fwd_s']:.3f} s, forward + backward "
                      f"{r['fwd_bwd_s']:.3f} s; cpu backend {c['fwd_s']:.3f} s / {c['fwd_bwd_s']:.3f} s."]
    return lines


def cuda_tables(args) -> list[str]:
    import gsplat

    dev = "cuda"
    lines = ["### CUDA: wrapper overhead and torch backend vs gsplat", "",
             "| Gaussians | image | bare gsplat fwd+bwd (ms) | rasterize(gsplat) (ms) | overhead | "
             "rasterize(torch) (ms) | torch / gsplat |", "|---:|---|---:|---:|---:|---:|---:|"]
    cases = ((100_000, (800, 800)),) if args.quick else ((100_000, (800, 800)), (1_000_000, (1920, 1080)))
    for n, (w, h) in cases:
        g = surface_scene(n, device=dev)
        cams = camera(w, h, dev)
        a = activated({k: v for k, v in g.items()})
        Kg = cams[1].clone()
        Kg[:, :2, 2] += 0.5
        p = {k: v.detach().clone().requires_grad_() for k, v in a.items() if v is not None}

        def bare(p=p, V=cams[0], Kg=Kg, w=w, h=h):
            img, _, _ = gsplat.rasterization(p["means"], p["quats"], p["scales"], p["opacities"], p["colors"],
                                             V, Kg, w, h, render_mode="RGB+ED", packed=False)
            img.sum().backward()

        times = []
        for _ in range(args.repeats + 1):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            bare()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        t_bare = min(times[1:])
        t_wrap = time_render(g, cams, w, h, "gsplat", args.repeats, dev)["fwd_bwd_s"]
        t_torch = time_render(g, cams, w, h, "torch", max(1, args.repeats // 2), dev)["fwd_bwd_s"]
        lines.append(f"| {n:,} | {w}×{h} | {1e3 * t_bare:.2f} | {1e3 * t_wrap:.2f} | "
                     f"{100 * (t_wrap / t_bare - 1):+.1f}% | {1e3 * t_torch:.1f} | {t_torch / t_bare:.1f}× |")
        print(lines[-1], flush=True)
    return lines


def _numba_version() -> str:
    try:
        import numba

        return f"numba {numba.__version__} ({numba.get_num_threads()} threads)"
    except ImportError:
        return "no numba"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="skip the largest cases")
    ap.add_argument("--ply", type=Path, default=None, help="also time a fitted scene (3DGS .ply)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "render.md")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    head = ["# Rasterization benchmark", "",
            f"`python scripts/bench_render.py{' --quick' if a.quick else ''}` on {platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, {_numba_version()}"
            + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU") + ".", ""]
    lines = cpu_tables(a) if not torch.cuda.is_available() else cuda_tables(a)
    text = "\n".join(head + lines) + "\n"
    from vision3d.io.atomic import write_text

    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(a.out, text)
    print(text)


if __name__ == "__main__":
    main()
