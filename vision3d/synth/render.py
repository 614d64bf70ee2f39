"""Closed-form rendering of planar layers: image, z-depth, layer ids, exact flow and occlusion.

A plane seen by a pinhole camera is a homography: ``G = K [r1 r2 t]`` maps local plane coordinates
``(x, y, 1)`` to pixels, and the third row of ``G⁻¹`` is the inverse depth as a linear function of the
pixel. So every layer is drawn with one ``cv2.warpPerspective`` over its screen bounding box plus a z-test,
and the flow of a layer between two views is the homography ``G_b G_a⁻¹`` (exact, no sampling involved).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision3d.core.camera import Camera
from vision3d.errors import InputError
from vision3d.synth.scene import LayerSpec, SceneSpec

# Relative depth tolerance for "depth agrees" in the occlusion test (same-layer hits are planar neighbours).
DEPTH_TOLERANCE = 0.05


@dataclass
class RenderedFrame:
    """One rendered view. ``depth`` is metric z (NaN where no layer is hit), ``layer_id`` −1 there.

    ``homographies`` (L,3,3) map each layer's local plane coordinates to this view's pixels (NaN when the
    plane passes through the camera centre); ``rois`` (L,4) hold the ``x0, y0, x1, y1`` box each layer was
    drawn in (empty when not drawn). Both are what ``flow_between`` needs.
    """

    image: np.ndarray
    depth: np.ndarray
    layer_id: np.ndarray
    moving_mask: np.ndarray
    camera: Camera
    t: float
    homographies: np.ndarray
    rois: np.ndarray

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]


def layer_homography(layer: LayerSpec, t: float, camera: Camera) -> np.ndarray | None:
    """3×3 map from local plane coordinates to pixels of ``camera`` at time ``t``; None if seen edge-on."""
    m = camera.world_to_cam @ layer.motion.pose(t)
    normal, origin = m[:3, 2], m[:3, 3]
    if abs(float(normal @ origin)) < 1e-9 * max(1.0, float(np.linalg.norm(origin))):
        return None  # the camera centre lies in the plane: it projects to a line
    return camera.K @ m[:3, [0, 1, 3]]


def _roi(layer: LayerSpec, g: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Screen box that contains the layer (whole image for infinite or camera-straddling planes)."""
    if not layer.bounded:
        return 0, 0, width, height
    c = layer.corners_local()
    p = np.c_[c, np.ones(4)] @ g.T
    z = p[:, 2]
    if np.all(z <= 0):
        return None
    if np.any(z <= 0):
        return 0, 0, width, height
    xy = p[:, :2] / z[:, None]
    x0 = max(0, int(np.floor(xy[:, 0].min())) - 1)
    y0 = max(0, int(np.floor(xy[:, 1].min())) - 1)
    x1 = min(width, int(np.ceil(xy[:, 0].max())) + 2)
    y1 = min(height, int(np.ceil(xy[:, 1].max())) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def _plane(row: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``row · (x, y, 1)`` over the grid ``ys × xs``."""
    return row[0] * xs[None, :] + (row[1] * ys + row[2])[:, None]


def render_frame(scene: SceneSpec, t: float, camera: Camera | None = None) -> RenderedFrame:
    """Render the scene at time ``t`` (frames, may be fractional) from ``camera`` (default: the scene camera)."""
    cam = scene.camera(t) if camera is None else camera
    w, h = cam.width, cam.height
    n = len(scene.layers)
    u8 = scene.precision == "uint8"
    dt = np.uint8 if u8 else np.float32
    image = np.zeros((h, w, 4), dt)  # RGBA: one masked 4-channel copy per layer is the fast path
    invz = np.zeros((h, w), np.float32)  # nearest inverse depth so far (0 = nothing)
    lid = np.full((h, w), -1, np.int16)
    scratch = np.empty((h, w, 4), dt)  # reused warp target: avoids a fresh page-faulting buffer per layer
    ids = np.empty((h, w), np.int16)
    homs = np.full((n, 3, 3), np.nan)
    rois = np.zeros((n, 4), np.int32)
    xs_all = np.arange(w, dtype=np.float32)
    ys_all = np.arange(h, dtype=np.float32)
    for i, layer in enumerate(scene.layers):
        g = layer_homography(layer, t, cam)
        if g is None:
            continue
        homs[i] = g
        box = _roi(layer, g, w, h)
        if box is None:
            continue
        rois[i] = box
        x0, y0, x1, y1 = box
        ginv = np.linalg.inv(g)
        shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
        to_texel = layer.local_to_texel() @ ginv @ shift
        if layer.bounded:
            src, border = layer.rgba(scene.precision), cv2.BORDER_CONSTANT
        else:
            src, border = layer.rgba(scene.precision, tiled=True), cv2.BORDER_WRAP
        rgba = cv2.warpPerspective(src, to_texel, (x1 - x0, y1 - y0), dst=scratch[: y1 - y0, : x1 - x0],
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border,
                                   borderValue=(0, 0, 0, 0))
        iz = _plane(ginv[2].astype(np.float32), xs_all[x0:x1], ys_all[y0:y1])
        zroi = invz[y0:y1, x0:x1]
        cover = iz > zroi
        if layer.bounded:
            cover &= rgba[..., 3] >= (128 if u8 else 0.5)
        m = cover.view(np.uint8)
        cv2.copyTo(rgba, m, image[y0:y1, x0:x1])
        cv2.copyTo(iz, m, zroi)
        idr = ids[: y1 - y0, : x1 - x0]
        idr.fill(i)
        cv2.copyTo(idr, m, lid[y0:y1, x0:x1])
    with np.errstate(divide="ignore"):
        depth = np.where(invz > 0, 1.0 / invz, np.float32(np.nan)).astype(np.float32, copy=False)
    moving_table = np.concatenate([[False], scene.moving_layers])
    moving = moving_table[lid + 1]
    rgb = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    if u8:
        rgb = np.multiply(rgb, np.float32(1.0 / 255.0), dtype=np.float32)
    return RenderedFrame(rgb, depth, lid, moving, cam, float(t), homs, rois)


def _per_pixel(table: np.ndarray, lid1: np.ndarray) -> np.ndarray:
    """Look up ``table[lid1]`` for a small float64 table (``lid1`` = layer id + 1, 0 = no layer)."""
    if lid1.dtype == np.uint8:
        lut = np.full(256, np.nan)
        lut[: len(table)] = table
        return cv2.LUT(lid1, lut)  # a 256-entry LUT is ~2x faster than numpy fancy indexing
    return table[lid1]


def flow_between(a: RenderedFrame, b: RenderedFrame) -> tuple[np.ndarray, np.ndarray]:
    """Exact flow ``(2,H,W)`` float32 from view ``a`` to view ``b`` and the occlusion mask ``(H,W)`` of ``a``.

    Each pixel of ``a`` keeps its layer-local coordinates and is projected into ``b`` with that layer's pose
    at ``b``'s time: for a plane that is the homography ``G_b G_a⁻¹``, evaluated in float64. A pixel counts as
    visible in ``b`` (``occ`` False) iff it lands inside ``b``'s image (``0 <= x <= W-1``, same for y, in
    front of the camera), the nearest pixel there shows the same layer and the depths agree. Pixels of ``a``
    without a surface, or whose plane passes through ``b``'s centre, get NaN flow and ``occ`` True.
    """
    if a.homographies.shape != b.homographies.shape:
        raise InputError("flow_between: the two frames were rendered from different scenes")
    h, w = a.height, a.width
    n = len(a.homographies)
    table = np.full((n + 1, 9), np.nan)  # row 0: no layer
    for i in range(n):
        if not (np.isnan(a.homographies[i, 0, 0]) or np.isnan(b.homographies[i, 0, 0])):
            table[i + 1] = (b.homographies[i] @ np.linalg.inv(a.homographies[i])).ravel()
    lid1 = (a.layer_id + 1).astype(np.uint8 if n < 255 else np.intp)
    c = [_per_pixel(table[:, k], lid1) for k in range(9)]
    x = np.arange(w, dtype=np.float64)[None, :]
    y = np.arange(h, dtype=np.float64)[:, None]
    ratio = c[6] * x + c[7] * y + c[8]  # z_b / z_a
    flow = np.empty((2, h, w), np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.subtract((c[0] * x + c[1] * y + c[2]) / ratio, x, out=flow[0], casting="same_kind")
        np.subtract((c[3] * x + c[4] * y + c[5]) / ratio, y, out=flow[1], casting="same_kind")
    occ = _occlusion(a, b, flow, ratio.astype(np.float32))
    return flow, occ


def _occlusion(a: RenderedFrame, b: RenderedFrame, flow: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    h, w = a.height, a.width
    hb, wb = b.height, b.width
    qx = flow[0] + np.arange(w, dtype=np.float32)[None, :]
    qy = flow[1] + np.arange(h, dtype=np.float32)[:, None]
    zb = a.depth * ratio
    with np.errstate(invalid="ignore"):
        inside = (qx >= 0) & (qx <= wb - 1) & (qy >= 0) & (qy <= hb - 1) & (zb > 0)
    ix = np.rint(np.where(inside, qx, 0)).astype(np.intp)
    iy = np.rint(np.where(inside, qy, 0)).astype(np.intp)
    idx = iy * wb + ix
    same = b.layer_id.ravel()[idx] == a.layer_id
    with np.errstate(invalid="ignore"):
        agree = np.abs(b.depth.ravel()[idx] - zb) <= DEPTH_TOLERANCE * zb
    return ~(inside & same & agree)
