"""Sorted front-to-back alpha compositing of projected Gaussians, vectorised over (pixel, Gaussian) pairs.

The image is cut into row bands (whole 16-px tile rows) so that each band holds at most ``max_pairs``
candidate pairs; inside a band every visible Gaussian contributes only the pixels of its own screen box
(culling), so memory grows with the covered area, never with Gaussians × pixels. Pairs are ordered by
pixel, then by depth (a stable sort of depth-ordered pairs); transmittance is an exclusive per-pixel
cumulative sum of ``log(1 − α)``. The rules are gsplat's: ``α = min(0.999, o·exp(−σ))``, pairs with
``σ < 0`` or ``α < 1/255`` are skipped, and a pixel stops before the Gaussian that would take its
transmittance to ``≤ 1e-4``. The backward pass is written out (as gsplat's kernel does) instead of taped
by autograd, which keeps it to a handful of vector operations per pair.
"""

from __future__ import annotations

import math

import torch

from vision3d.render.projection import ALPHA_THRESHOLD, Projected

TILE = 16
T_MIN = 1e-4
MAX_ALPHA = 0.999
N_GEOM = 6  # per-Gaussian columns before the features: mean x, mean y, conic a, b, c, opacity


def _segments(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For sorted pixel keys: segment id per pair, index of each segment's first and last pair."""
    start = torch.ones_like(key, dtype=torch.bool)
    start[1:] = key[1:] != key[:-1]
    seg = torch.cumsum(start, 0) - 1
    first = start.nonzero().squeeze(1)
    last = torch.cat([first[1:] - 1, first.new_tensor([len(key) - 1])])
    return seg, first, last


class _CompositePairs(torch.autograd.Function):
    """Per-pair compositing of one band: ``params (M, 6+D)`` → image rows ``(P_pix, D)`` and alpha.

    Column-wise (structure-of-arrays) gathers and 1-D scatters: on CPU they are several times faster than
    row gathers / 2-D ``index_add`` of the same data.
    """

    @staticmethod
    def forward(ctx, params, owner, key, px, py, n_pix):
        cols = params.t().contiguous()
        own = owner.long()
        mx, my, ca, cb, cc, op = (cols[i].index_select(0, own) for i in range(N_GEOM))
        feats = [cols[i].index_select(0, own) for i in range(N_GEOM, len(cols))]
        dx, dy = mx - px, my - py
        sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
        vis = torch.exp(-sigma)
        raw = op * vis
        ok = (sigma >= 0) & (raw >= ALPHA_THRESHOLD)
        alpha = raw.clamp_max(MAX_ALPHA) * ok
        la = torch.log1p(-alpha).double()
        seg, first, last = _segments(key)
        excl = torch.cumsum(la, 0) - la
        trans = torch.exp(excl - excl.index_select(0, first).index_select(0, seg)).to(alpha.dtype)
        keep = ok & (trans * (1 - alpha) > T_MIN)
        w = alpha * trans * keep
        zeros = params.new_zeros(n_pix)
        img = torch.stack([zeros.clone().index_add_(0, key, w * f) for f in feats], 1)
        acc = zeros.index_add_(0, key, w)
        ctx.save_for_backward(own, key, dx, dy, vis, alpha, trans, w, keep & (raw <= MAX_ALPHA), seg, last,
                              ca, cb, cc, op, *feats)
        ctx.m = params.shape[0]
        return img, acc

    @staticmethod
    def backward(ctx, grad_img, grad_acc):
        own, key, dx, dy, vis, alpha, trans, w, live, seg, last, ca, cb, cc, op, *feats = ctx.saved_tensors
        gt = grad_img.t().contiguous()
        gis = [gt[i].index_select(0, key) for i in range(len(feats))]
        dw = grad_acc.index_select(0, key)
        for f, gi in zip(feats, gis):
            dw = dw + gi * f
        q = torch.cumsum((dw * w).double(), 0)
        behind = (q.index_select(0, last).index_select(0, seg) - q).to(w.dtype)  # Σ later pairs' dL/dw·w
        dalpha = dw * trans - behind / (1 - alpha)
        draw = dalpha * live
        dsigma = -draw * op * vis
        hx, hy = dsigma * dx, dsigma * dy
        cols = (ca * hx + cb * hy, cc * hy + cb * hx, 0.5 * hx * dx, hx * dy, 0.5 * hy * dy, draw * vis,
                *(w * gi for gi in gis))
        zeros = w.new_zeros(ctx.m)
        grad = torch.stack([zeros.clone().index_add_(0, own, c) for c in cols], 1)
        return grad, None, None, None, None, None


def _sorted_visible(p: Projected) -> tuple[torch.Tensor, torch.Tensor]:
    """(camera, Gaussian) indices of visible pairs, ordered by camera then depth (front to back)."""
    cam, gid = p.visible.nonzero(as_tuple=True)
    order = torch.argsort(p.depths.detach()[cam, gid], stable=True)
    order = order[torch.argsort(cam[order], stable=True)]
    return cam[order], gid[order]


def _enumerate(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``counts`` per item: the owning item and the 0-based index within it, for every element."""
    total = int(counts.sum())
    it = torch.int32 if total < 2 ** 31 else torch.int64  # int32 halves the memory traffic of the big arrays
    counts = counts.to(it)
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device, dtype=it), counts,
                                    output_size=total)
    starts = (torch.cumsum(counts, 0, dtype=it) - counts).index_select(0, owner)
    return owner, torch.arange(total, device=counts.device, dtype=it) - starts


def _pixel_pairs(m: torch.Tensor, conic: torch.Tensor, level: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor,
                 x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact (Gaussian, pixel) candidates: per box row, the pixel span inside the ellipse ``σ ≤ level``.

    Rows are enumerated first (cheap), then each row's analytic span, so corners of rotated or elongated
    boxes never become pairs. A 1e-3 px margin keeps boundary pixels; the exact test happens later.
    """
    rowner, rlocal = _enumerate((y1 - y0 + 1).clamp_min(0))
    py = y0.index_select(0, rowner).to(rlocal.dtype) + rlocal
    a, b, c = conic[rowner].unbind(1)
    dy = m[rowner, 1] - py
    disc = (b * b - a * c) * dy * dy + 2 * a * level[rowner]
    s = torch.sqrt(disc.clamp_min(0))
    mx = m[rowner, 0]
    lo = torch.maximum(torch.ceil(mx - (-b * dy + s) / a - 1e-3), x0[rowner].to(m.dtype)).to(py.dtype)
    hi = torch.minimum(torch.floor(mx - (-b * dy - s) / a + 1e-3), x1[rowner].to(m.dtype)).to(py.dtype)
    n = torch.where(disc >= 0, (hi - lo + 1).clamp_min(0), torch.zeros_like(lo))
    span, local = _enumerate(n)
    return rowner.index_select(0, span), lo.index_select(0, span) + local, py.index_select(0, span)


def _bands(y0: torch.Tensor, y1: torch.Tensor, nx: torch.Tensor, height: int, max_pairs: int) -> list[tuple[int, int]]:
    """Row bands (multiples of the tile height) whose box-pair count stays near ``max_pairs``."""
    total = int((nx * (y1 - y0 + 1).clamp_min(0)).sum())
    n = max(1, math.ceil(total / max_pairs))
    rows = max(TILE, math.ceil(height / n / TILE) * TILE)
    return [(r, min(r + rows, height)) for r in range(0, height, rows)]


def composite(p: Projected, features: torch.Tensor, width: int, height: int,
              max_pairs: int = 4_000_000) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Composite per-(camera, Gaussian) ``features`` ``(C,N,D)`` → ``(C,H,W,D)`` and alpha ``(C,H,W)``.

    Returns the composited features, the accumulated alpha and the number of contributing pairs.
    """
    C, N = p.depths.shape
    D = features.shape[-1]
    device, dtype = features.device, features.dtype
    n_pix = C * height * width
    cam, gid = _sorted_visible(p)
    if len(gid) == 0:
        zero = features.sum() * 0  # keeps the graph connected for callers that backpropagate
        return (torch.zeros(C, height, width, D, device=device, dtype=dtype) + zero,
                torch.zeros(C, height, width, device=device, dtype=dtype) + zero, 0)
    flat = cam * N + gid
    params = torch.cat([p.means2d.reshape(C * N, 2), p.conics.reshape(C * N, 3),
                        p.opacities.reshape(C * N, 1), features.reshape(C * N, D)], -1)[flat]
    with torch.no_grad():
        m = params[:, :2]
        r = p.radii.reshape(C * N, 2)[flat].to(m.dtype)
        x0 = torch.ceil(m[:, 0] - r[:, 0]).clamp_min(0).long()
        x1 = torch.floor(m[:, 0] + r[:, 0]).clamp_max(width - 1).long()
        y0 = torch.ceil(m[:, 1] - r[:, 1]).clamp_min(0).long()
        y1 = torch.floor(m[:, 1] + r[:, 1]).clamp_max(height - 1).long()
        nx = (x1 - x0 + 1).clamp_min(0)
        conic = params[:, 2:5]
        level = torch.log(params[:, 5] / ALPHA_THRESHOLD)  # α ≥ 1/255  ⇔  σ ≤ ln(o · 255)
    img, acc, n_pairs = None, None, 0
    for r0, r1 in _bands(y0, y1, nx, height, max_pairs):
        with torch.no_grad():
            ylo, yhi = y0.clamp_min(r0), y1.clamp_max(r1 - 1)
            owner, pxi, pyi = _pixel_pairs(m, conic, level, ylo, yhi, x0, x1)
            if len(owner) == 0:
                continue
            it = torch.int32 if n_pix < 2 ** 31 else torch.int64  # int32 sorts and gathers faster
            key = (cam.to(it).index_select(0, owner) * height + pyi.to(it)) * width + pxi.to(it)
            key, perm = torch.sort(key, stable=True)  # pixel-major, depth order kept inside a pixel
            owner = owner.index_select(0, perm)
            px = pxi.index_select(0, perm).to(dtype)
            py = pyi.index_select(0, perm).to(dtype)
        band_img, band_acc = _CompositePairs.apply(params, owner, key, px, py, n_pix)
        img = band_img if img is None else img + band_img
        acc = band_acc if acc is None else acc + band_acc
        n_pairs += len(owner)
    if img is None:
        zero = params.sum() * 0
        img = torch.zeros(n_pix, D, device=device, dtype=dtype) + zero
        acc = torch.zeros(n_pix, device=device, dtype=dtype) + zero
    return img.reshape(C, height, width, D), acc.reshape(C, height, width), n_pairs
