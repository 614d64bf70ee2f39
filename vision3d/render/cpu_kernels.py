"""Compiled CPU compositing (numba): gsplat's tile algorithm, forward and backward, parallel over tiles.

Each 16×16 tile holds the depth-sorted list of Gaussians whose screen box touches it; each pixel sees its
tile's list front to back with gsplat's rules (skip ``σ < 0`` or ``α < 1/255``, ``α ≤ 0.999``, stop before
transmittance would reach ``1e-4``), the same rules as the vectorised torch compositor, which stays the
reference. The backward pass walks the list back to front from each pixel's stopping point, recovering the
transmittance by division as gsplat does. Gradients land in per-entry slots (one thread owns a tile), then
are summed per Gaussian outside the kernel, so there are no write races.

``geom`` rows: mean x, mean y, conic a, b, c, opacity (pixel units, pixel centres at integer coordinates).
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba as nb

    AVAILABLE, WHY = True, ""
except ImportError as e:  # pragma: no cover - numba is a dependency; kept importable without it
    nb, AVAILABLE, WHY = None, False, f"numba is not installed ({e})"

ALPHA_THRESHOLD = 1.0 / 255.0
MAX_ALPHA = 0.999
T_MIN = 1e-4


def _jit(fn):
    return nb.njit(parallel=True, cache=True, nogil=True)(fn) if AVAILABLE else fn


def _inline(fn):
    return nb.njit(cache=True, inline="always")(fn) if AVAILABLE else fn


@_inline
def _tile_rect(ti, tiles_per_cam, tiles_x, tile, width, height):
    """Camera and pixel rectangle ``[y0, y1) × [x0, x1)`` of tile ``ti`` (tiles numbered camera-major)."""
    cam, local = ti // tiles_per_cam, ti % tiles_per_cam
    ty0, tx0 = (local // tiles_x) * tile, (local % tiles_x) * tile
    return cam, ty0, tx0, min(ty0 + tile, height), min(tx0 + tile, width)


@_jit
def forward_tiles(tile_start, tile_gid, geom, box, feats, width, height, tiles_x, tiles_per_cam, tile,
                  img, acc, last, t_final):
    """Composite every pixel: ``img (P,D)``, ``acc (P,)``; per pixel the list end it reached (``last``) and
    its final transmittance (``t_final``) for the backward pass. Returns the number of contributions.

    Gaussian-major inside a tile: each entry visits only the pixels of its screen box (``box`` rows: x0, x1,
    y0, y1), in list order, so every pixel still sees its Gaussians front to back."""
    n_tiles = len(tile_start) - 1
    D = feats.shape[1]
    counts = np.zeros(n_tiles, np.int64)
    for ti in nb.prange(n_tiles):
        s, e = tile_start[ti], tile_start[ti + 1]
        cam, ty0, tx0, ty1, tx1 = _tile_rect(ti, tiles_per_cam, tiles_x, tile, width, height)
        tw = tx1 - tx0
        T = np.ones((ty1 - ty0) * tw)
        stop = np.full((ty1 - ty0) * tw, s, np.int64)
        done = np.zeros((ty1 - ty0) * tw, np.bool_)
        active = (ty1 - ty0) * tw
        c = 0
        for k in range(s, e):
            if active == 0:
                break
            g = tile_gid[k]
            mx, my, ca, cb, cc, op = geom[g, 0], geom[g, 1], geom[g, 2], geom[g, 3], geom[g, 4], geom[g, 5]
            for yy in range(max(ty0, box[g, 2]), min(ty1, box[g, 3] + 1)):
                dy = my - yy
                for xx in range(max(tx0, box[g, 0]), min(tx1, box[g, 1] + 1)):
                    q = (yy - ty0) * tw + xx - tx0
                    if done[q]:
                        continue
                    dx = mx - xx
                    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < 0.0:
                        continue
                    raw = op * math.exp(-sigma)
                    if raw < ALPHA_THRESHOLD:
                        continue
                    alpha = min(MAX_ALPHA, raw)
                    nt = T[q] * (1.0 - alpha)
                    if nt <= T_MIN:
                        done[q] = True
                        active -= 1
                        continue
                    w = alpha * T[q]
                    pix = (cam * height + yy) * width + xx
                    for d in range(D):
                        img[pix, d] += w * feats[g, d]
                    acc[pix] += w
                    T[q] = nt
                    stop[q] = k + 1
                    c += 1
        for yy in range(ty0, ty1):
            for xx in range(tx0, tx1):
                q = (yy - ty0) * tw + xx - tx0
                pix = (cam * height + yy) * width + xx
                last[pix] = stop[q]
                t_final[pix] = T[q]
        counts[ti] = c
    return counts.sum()


@_jit
def backward_tiles(tile_start, tile_gid, geom, box, feats, width, height, tiles_x, tiles_per_cam, tile,
                   last, t_final, grad_img, grad_acc, g_geom, g_feat):
    """Gradients per list entry: ``g_geom (E,6)`` (mean x/y, conic a/b/c, opacity) and ``g_feat (E,D)``;
    entries are visited back to front, each over its box, undoing the transmittance pixel by pixel."""
    n_tiles = len(tile_start) - 1
    D = feats.shape[1]
    for ti in nb.prange(n_tiles):
        s, e = tile_start[ti], tile_start[ti + 1]
        cam, ty0, tx0, ty1, tx1 = _tile_rect(ti, tiles_per_cam, tiles_x, tile, width, height)
        tw = tx1 - tx0
        T = np.empty((ty1 - ty0) * tw)
        behind = np.zeros((ty1 - ty0) * tw)  # Σ over later contributions of dL/dw · w
        for yy in range(ty0, ty1):
            for xx in range(tx0, tx1):
                T[(yy - ty0) * tw + xx - tx0] = t_final[(cam * height + yy) * width + xx]
        for k in range(e - 1, s - 1, -1):
            g = tile_gid[k]
            mx, my, ca, cb, cc, op = geom[g, 0], geom[g, 1], geom[g, 2], geom[g, 3], geom[g, 4], geom[g, 5]
            for yy in range(max(ty0, box[g, 2]), min(ty1, box[g, 3] + 1)):
                dy = my - yy
                for xx in range(max(tx0, box[g, 0]), min(tx1, box[g, 1] + 1)):
                    pix = (cam * height + yy) * width + xx
                    if k >= last[pix]:
                        continue
                    dx = mx - xx
                    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < 0.0:
                        continue
                    vis = math.exp(-sigma)
                    raw = op * vis
                    if raw < ALPHA_THRESHOLD:
                        continue
                    q = (yy - ty0) * tw + xx - tx0
                    alpha = min(MAX_ALPHA, raw)
                    T[q] = T[q] / (1.0 - alpha)
                    w = alpha * T[q]
                    dw = grad_acc[pix]
                    for d in range(D):
                        dw += grad_img[pix, d] * feats[g, d]
                        g_feat[k, d] += w * grad_img[pix, d]
                    dalpha = dw * T[q] - behind[q] / (1.0 - alpha)
                    behind[q] += dw * w
                    if raw > MAX_ALPHA:
                        continue
                    dsigma = -dalpha * op * vis
                    hx = dsigma * dx
                    hy = dsigma * dy
                    g_geom[k, 0] += ca * hx + cb * hy
                    g_geom[k, 1] += cc * hy + cb * hx
                    g_geom[k, 2] += 0.5 * hx * dx
                    g_geom[k, 3] += hx * dy
                    g_geom[k, 4] += 0.5 * hy * dy
                    g_geom[k, 5] += dalpha * vis
