"""Tile compositing on the CPU with the compiled kernels of ``cpu_kernels`` (the ``cpu`` render backend).

Same inputs, outputs and rules as ``composite.composite`` (the vectorised torch reference): binning of the
depth-sorted visible Gaussians into 16×16 tiles happens here with torch; the per-pixel loops run in numba.
"""

from __future__ import annotations

import torch

from vision3d.render import cpu_kernels
from vision3d.render.composite import N_GEOM, TILE, _enumerate, _sorted_visible
from vision3d.render.projection import Projected


def _bin(flat_cam: torch.Tensor, m: torch.Tensor, r: torch.Tensor, width: int, height: int, n_cams: int):
    """Tile lists: for each (camera, tile) the visible rows (already depth-ordered) whose box touches it."""
    tiles_x, tiles_y = -(-width // TILE), -(-height // TILE)
    x0 = torch.ceil(m[:, 0] - r[:, 0]).clamp_min(0).long()
    x1 = torch.floor(m[:, 0] + r[:, 0]).clamp_max(width - 1).long()
    y0 = torch.ceil(m[:, 1] - r[:, 1]).clamp_min(0).long()
    y1 = torch.floor(m[:, 1] + r[:, 1]).clamp_max(height - 1).long()
    ok = (x1 >= x0) & (y1 >= y0)
    tx0, ty0 = x0 // TILE, y0 // TILE
    nx = torch.where(ok, x1 // TILE - tx0 + 1, 0)
    ny = torch.where(ok, y1 // TILE - ty0 + 1, 0)
    owner, local = _enumerate(nx * ny)
    owner, local = owner.long(), local.long()
    nxo = nx.index_select(0, owner)
    tile = (flat_cam.index_select(0, owner) * tiles_y + ty0.index_select(0, owner) + local // nxo) * tiles_x \
        + tx0.index_select(0, owner) + local % nxo
    tile, perm = torch.sort(tile, stable=True)  # tile-major; depth order kept inside a tile
    gid = owner.index_select(0, perm)
    n_tiles = n_cams * tiles_x * tiles_y
    start = torch.zeros(n_tiles + 1, dtype=torch.long)
    start[1:] = torch.cumsum(torch.bincount(tile, minlength=n_tiles), 0)
    box = torch.stack([x0, x1, y0, y1], 1)
    return start, gid, box, tiles_x, tiles_x * tiles_y


class _CompositeTiles(torch.autograd.Function):
    @staticmethod
    def forward(ctx, params, start, gid, box, width, height, tiles_x, tiles_per_cam, n_pix):
        geom = params[:, :N_GEOM].detach().contiguous().numpy()
        feats = params[:, N_GEOM:].detach().contiguous().numpy()
        s, g = start.numpy(), gid.numpy()
        img = torch.zeros(n_pix, feats.shape[1], dtype=params.dtype)
        acc = torch.zeros(n_pix, dtype=params.dtype)
        last = torch.zeros(n_pix, dtype=torch.int64)
        t_final = torch.ones(n_pix, dtype=torch.float64)
        n = cpu_kernels.forward_tiles(s, g, geom, box.numpy(), feats, width, height, tiles_x, tiles_per_cam, TILE, img.numpy(),
                                      acc.numpy(), last.numpy(), t_final.numpy())
        ctx.save_for_backward(params, start, gid, box, last, t_final)
        ctx.sizes = (width, height, tiles_x, tiles_per_cam)
        pairs = torch.tensor(int(n))
        ctx.mark_non_differentiable(pairs)
        return img, acc, pairs

    @staticmethod
    def backward(ctx, grad_img, grad_acc, _grad_pairs):
        params, start, gid, box, last, t_final = ctx.saved_tensors
        width, height, tiles_x, tiles_per_cam = ctx.sizes
        geom = params[:, :N_GEOM].detach().contiguous()
        feats = params[:, N_GEOM:].detach().contiguous()
        E = len(gid)
        g_geom = torch.zeros(E, N_GEOM, dtype=params.dtype)
        g_feat = torch.zeros(E, feats.shape[1], dtype=params.dtype)
        gi = (grad_img if grad_img is not None else torch.zeros(len(last), feats.shape[1], dtype=params.dtype))
        ga = (grad_acc if grad_acc is not None else torch.zeros(len(last), dtype=params.dtype))
        cpu_kernels.backward_tiles(start.numpy(), gid.numpy(), geom.numpy(), box.numpy(), feats.numpy(), width, height, tiles_x,
                                   tiles_per_cam, TILE, last.numpy(), t_final.numpy(),
                                   gi.contiguous().numpy(), ga.contiguous().numpy(), g_geom.numpy(), g_feat.numpy())
        grad = torch.zeros_like(params).index_add_(0, gid, torch.cat([g_geom, g_feat], 1))
        return grad, None, None, None, None, None, None, None, None


def composite_tiles(p: Projected, features: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor,
                                                                                          torch.Tensor, int]:
    """Like ``composite.composite`` on the CPU: ``(C,H,W,D)`` features, ``(C,H,W)`` alpha and the number of
    contributing (pixel, Gaussian) pairs."""
    if not cpu_kernels.AVAILABLE:
        raise RuntimeError(cpu_kernels.WHY)
    C, N = p.depths.shape
    D = features.shape[-1]
    n_pix = C * height * width
    cam, gid = _sorted_visible(p)
    if len(gid) == 0:
        zero = features.sum() * 0
        return (torch.zeros(C, height, width, D, dtype=features.dtype) + zero,
                torch.zeros(C, height, width, dtype=features.dtype) + zero, 0)
    flat = cam * N + gid
    params = torch.cat([p.means2d.reshape(C * N, 2), p.conics.reshape(C * N, 3),
                        p.opacities.reshape(C * N, 1), features.reshape(C * N, D)], -1)[flat]
    with torch.no_grad():
        r = p.radii.reshape(C * N, 2)[flat].to(params.dtype)
        start, tgid, box, tiles_x, tpc = _bin(cam, params[:, :2], r, width, height, C)
    img, acc, pairs = _CompositeTiles.apply(params, start, tgid, box, width, height, tiles_x, tpc, n_pix)
    return img.reshape(C, height, width, D), acc.reshape(C, height, width), int(pairs)
