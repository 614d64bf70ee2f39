"""The viser scene and GUI for one :class:`~viewers.content.Content`: splats, meshes, point clouds; for 4D runs a
timeline (slider, play/pause, speed, loop), the current frame's still Gaussians (or all, or none), a moving toggle,
the camera trajectory and the current camera's frustum with its input frame (moving-mask overlay, 2D tracks drawn
on it), 3D tracks as fading polylines, "view from input camera", and a panel with the run's metrics. Still
Gaussians are sent once, in groups by lifetime; a frame switch flips the groups' visibility and sends only that
frame's moving Gaussians, the frustum and the tracks."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from viewers.content import Content, life_groups

TRACK_TAIL = 10          # frames of history a 3D / 2D track shows, fading out
# which still Gaussians a 4D run shows: those part of the current frame (as the renders draw it), every one the
# video ever had (retired ones included: a denser map, with doubled surfaces where the fit replaced some), none
STILL_MODES = ("this frame's", "all frames'", "hidden")


def _quat_wxyz(R: np.ndarray) -> np.ndarray:
    import viser.transforms as vtf

    return vtf.SO3.from_matrix(np.asarray(R, np.float64)).wxyz


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def metrics_markdown(c: Content) -> str:
    """The panel: what is shown, notes (subsampling), what is missing, and the run's metrics."""
    lines = [f"**{c.title}**", ""]
    if c.still is not None and c.still_life is not None and c.n_frames:
        T = c.n_frames                   # per frame: born by t minus retired by t
        first, end = np.clip(c.still_life, 0, T).T
        per = np.cumsum(np.bincount(first, minlength=T + 1) - np.bincount(end, minlength=T + 1))[:T]
        lines.append(f"- Gaussians shown per frame: {per.min():,}–{per.max():,} still ({len(c.still):,} in all "
                     f"frames)" + (f" + up to {max(len(m) for m in c.moving):,} moving" if c.moving else ""))
    elif c.still is not None:
        lines.append(f"- Gaussians shown: {len(c.still):,} still" +
                     (f" + up to {max(len(m) for m in c.moving):,} moving per frame" if c.moving else ""))
    if c.n_frames:
        lines.append(f"- frames: {c.n_frames} ({c.size[0]}×{c.size[1]})")
    lines += [f"- {n}" for n in c.notes]
    if c.missing:
        lines.append(f"- **missing:** {', '.join(c.missing)}")
    keys = [k for k in c.metrics if not isinstance(c.metrics[k], (dict, list))]
    if keys:
        lines += ["", "| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(c.metrics[k])} |" for k in keys[:40]]
    return "\n".join(lines)


class Viewer:
    """Builds the scene on ``server`` and keeps it in step with the timeline."""

    def __init__(self, server, content: Content, fps: float = 10.0):
        self.server, self.c = server, content
        self.t = -1
        self._lock = threading.RLock()   # the slider's callback re-enters set_frame
        self._stop = threading.Event()
        sc = server.scene
        sc.set_up_direction("-y")                       # OpenCV world: y points down
        lo, hi = content.bounds()
        self.extent = float(np.linalg.norm(hi - lo)) or 1.0
        self.still: list = []                 # still splat nodes, one per lifetime group in a 4D run
        self._still_spans = np.zeros((0, 2), np.int64)
        self._frame_nodes: dict = {}          # per-frame nodes (moving splats, tracks), replaced on a frame switch
        if content.still is not None:
            self._add_still(content)
        if content.mesh is not None:
            sc.add_mesh_trimesh("/mesh", content.mesh)
        if content.points is not None:
            cols = content.point_colors if content.point_colors is not None else np.array([90, 90, 200], np.uint8)
            sc.add_point_cloud("/points", content.points, cols, point_size=self.extent / 400)
        if content.n_frames:
            self._build_4d(fps)
        with server.gui.add_folder("Result"):      # after the timeline, which should not scroll out of sight
            self.panel = server.gui.add_markdown(metrics_markdown(content))
        self._set_initial_camera()

    def _add_still(self, c: Content) -> None:
        """The still Gaussians, sent once. In a 4D run they are grouped by the frames they are part of (retired
        ones left the scene, later ones were born for later views), so that a frame switch only flips the groups'
        visibility on the client."""
        s, sc = c.still, self.server.scene
        if c.still_life is None or not c.n_frames:
            self.still = [sc.add_gaussian_splats("/still", s.centers, s.covariances, s.rgbs, s.opacities)]
            self._still_spans = np.array([[0, np.iinfo(np.int64).max]])      # every frame
            return
        group, self._still_spans = life_groups(c.still_life)
        order = np.argsort(group, kind="stable")
        cuts = np.cumsum(np.bincount(group, minlength=len(self._still_spans)))[:-1]
        for k, idx in enumerate(np.split(order, cuts)):
            g = s.subset(idx)
            self.still.append(sc.add_gaussian_splats(f"/still/{k:03d}", g.centers, g.covariances, g.rgbs,
                                                     g.opacities))

    # ----------------------------------------------------------------------------------------------- 4D scenes
    def _build_4d(self, fps: float) -> None:
        c, sc, gui = self.c, self.server.scene, self.server.gui
        c2w = np.linalg.inv(c.world_to_cam)
        centres = c2w[:, :3, 3]
        self.cam_scale = 0.08 * self.scene_depth()
        if len(centres) > 1:
            seg = np.stack([centres[:-1], centres[1:]], 1)
            sc.add_line_segments("/trajectory", seg, (255, 140, 0), thickness=2.0, thickness_units="screen")
        T = c.n_frames
        with gui.add_folder("Timeline"):
            self.slider = gui.add_slider("frame", 0, max(T - 1, 1), 1, 0, disabled=T < 2)
            self.play = gui.add_checkbox("play", False)
            self.speed = gui.add_slider("fps", 1, 30, 1, int(fps))
            self.loop = gui.add_checkbox("loop", True)
        with gui.add_folder("Show"):
            self.show_still = gui.add_dropdown("still Gaussians", STILL_MODES, initial_value=STILL_MODES[0])
            self.show_moving = gui.add_checkbox("moving Gaussians", True)
            self.show_tracks3d = gui.add_checkbox("3D tracks", True)
            self.show_tracks2d = gui.add_checkbox("2D tracks on the frame", True)
            self.show_mask = gui.add_checkbox("moving-object mask", bool(c.masks))
            self.show_frustum = gui.add_checkbox("input camera + frame", True)
            self.view_input = gui.add_button("view from input camera")
        self.slider.on_update(lambda _: self.set_frame(int(self.slider.value)))
        self.show_still.on_update(lambda _: self._show_still())
        for h in (self.show_moving, self.show_tracks3d, self.show_tracks2d, self.show_mask, self.show_frustum):
            h.on_update(lambda _: self.set_frame(self.t, force=True))
        self.view_input.on_click(lambda ev: self.look_from_input(ev.client))
        self.set_frame(0)
        threading.Thread(target=self._player, daemon=True).start()

    def _show_still(self) -> None:
        """Still groups on or off for the current frame (flags on the client: the Gaussians are not sent again)."""
        mode = self.show_still.value
        t = max(self.t, 0)
        for h, (first, end) in zip(self.still, self._still_spans, strict=True):
            on = mode == STILL_MODES[1] or (mode == STILL_MODES[0] and first <= t < end)
            if h.visible != on:
                h.visible = on

    def frame_image(self, t: int) -> np.ndarray | None:
        """The input frame ``t`` (uint8 RGB) with the mask overlay and 2D tracks drawn on it, as toggled."""
        c = self.c
        if t >= len(c.frames):
            return None
        img = cv2.cvtColor(cv2.imread(str(c.frames[t]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        if self.show_mask.value and t < len(c.masks):
            m = cv2.imread(str(c.masks[t]), cv2.IMREAD_GRAYSCALE)
            if m is not None and m.shape == img.shape[:2]:
                sel = m > 127
                img[sel] = (0.5 * img[sel] + 0.5 * np.array([255, 30, 30])).astype(np.uint8)
        if self.show_tracks2d.value and c.tracks2d is not None and c.tracks2d.shape[1]:
            for k in range(max(1, t - TRACK_TAIL + 1), t + 1):
                a, b = c.tracks2d[k - 1], c.tracks2d[k]
                ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
                fade = (k - (t - TRACK_TAIL)) / TRACK_TAIL
                for p, q, col in zip(a[ok], b[ok], c.track_colors[ok], strict=True):
                    cv2.line(img, tuple(np.round(p).astype(int)), tuple(np.round(q).astype(int)),
                             tuple(int(v) for v in (fade * col + (1 - fade) * 255)), 1, cv2.LINE_AA)
        return img

    def _track_segments(self, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        c = self.c
        if c.tracks3d is None or not c.tracks3d.shape[1] or t == 0:
            return None
        segs, cols = [], []
        for k in range(max(1, t - TRACK_TAIL + 1), t + 1):
            a, b = c.tracks3d[k - 1], c.tracks3d[k]
            ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
            fade = (k - (t - TRACK_TAIL)) / TRACK_TAIL             # older segments fade towards white
            col = (fade * c.track_colors[ok] + (1 - fade) * 255).astype(np.uint8)
            segs.append(np.stack([a[ok], b[ok]], 1))
            cols.append(np.stack([col, col], 1))
        segs, cols = np.concatenate(segs), np.concatenate(cols)
        return (segs, cols) if len(segs) else None

    def set_frame(self, t: int, force: bool = False) -> None:
        """Show frame ``t``: its moving Gaussians, the camera frustum with its frame, the tracks up to ``t``."""
        c, sc = self.c, self.server.scene
        t = int(np.clip(t, 0, c.n_frames - 1))
        with self._lock:
            if t == self.t and not force:
                return
            self.t = t
            with self.server.atomic():
                for h in self._frame_nodes.values():
                    h.remove()
                self._frame_nodes = {}
                m = c.moving[t]
                if len(m) and self.show_moving.value:
                    self._frame_nodes["moving"] = sc.add_gaussian_splats("/moving", m.centers, m.covariances,
                                                                         m.rgbs, m.opacities)
                if self.show_frustum.value:
                    c2w = np.linalg.inv(c.world_to_cam[t])
                    w, h = c.size
                    fov = 2 * np.arctan2(h / 2, c.K[1, 1])
                    self._frame_nodes["camera"] = sc.add_camera_frustum(
                        "/camera", fov=float(fov), aspect=w / h, scale=self.cam_scale, thickness=2.0,
                        thickness_units="screen", color=(255, 140, 0), image=self.frame_image(t), format="jpeg",
                        jpeg_quality=85, wxyz=_quat_wxyz(c2w[:3, :3]), position=c2w[:3, 3])
                self._show_still()
                tr = self._track_segments(t) if self.show_tracks3d.value else None
                if tr is not None:
                    self._frame_nodes["tracks"] = sc.add_line_segments("/tracks", tr[0], tr[1], thickness=2.0,
                                                                       thickness_units="screen")
            if int(self.slider.value) != t:
                self.slider.value = t

    def look_from_input(self, client) -> None:
        """Put the browser's camera where the input camera of the current frame was (hiding the frustum, whose
        frame would otherwise fill the view)."""
        if client is None:
            return
        self.show_frustum.value = False
        c = self.c
        c2w = np.linalg.inv(c.world_to_cam[max(self.t, 0)])
        depth = self.scene_depth()
        with client.atomic():
            client.camera.wxyz = _quat_wxyz(c2w[:3, :3])
            client.camera.position = c2w[:3, 3]
            client.camera.look_at = c2w[:3, 3] + c2w[:3, 2] * depth
            client.camera.fov = float(2 * np.arctan2(c.size[1] / 2, c.K[1, 1]))

    def _player(self) -> None:
        while not self._stop.is_set():
            if self.play.value and self.c.n_frames > 1:
                nxt = self.t + 1
                if nxt >= self.c.n_frames:
                    if self.loop.value:
                        nxt = 0
                    else:
                        self.play.value = False
                        continue
                self.set_frame(nxt)
            time.sleep(1.0 / max(float(self.speed.value), 0.5))

    def stop(self) -> None:
        self._stop.set()

    # ----------------------------------------------------------------------------------------------- camera
    def initial_pose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(position, look_at, up)``: behind and above the first input camera for 4D runs; otherwise a view
        framing the object's box from the front (-z, as OpenCV cameras look along +z)."""
        c = self.c
        lo, hi = c.bounds()
        centre = (lo + hi) / 2
        if c.n_frames:
            c2w = np.linalg.inv(c.world_to_cam[0])
            fwd, up = c2w[:3, 2], -c2w[:3, 1]
            depth, right = self.scene_depth(), c2w[:3, 0]
            pos = c2w[:3, 3] - fwd * 0.5 * depth + up * 0.3 * depth + right * 0.2 * depth   # frustum + scene show
            return pos, c2w[:3, 3] + fwd * depth, up
        return centre + np.array([0.0, -0.3, -1.6]) * self.extent, centre, np.array([0.0, -1.0, 0.0])

    def scene_depth(self) -> float:
        """Median depth of the still Gaussians in the first input camera (the distance to look at)."""
        c = self.c
        if c.still is None or not len(c.still) or not c.n_frames:
            return self.extent / 4
        V = c.world_to_cam[0]
        z = c.still.centers @ V[2, :3] + V[2, 3]
        z = z[z > 0]
        return float(np.median(z)) if len(z) else self.extent / 4

    def _set_initial_camera(self) -> None:
        pos, target, up = self.initial_pose()
        ic = self.server.initial_camera
        ic.position, ic.look_at, ic.up = tuple(map(float, pos)), tuple(map(float, target)), tuple(map(float, up))
        if self.c.n_frames:
            ic.fov = float(min(1.4 * 2 * np.arctan2(self.c.size[1] / 2, self.c.K[1, 1]), np.radians(75)))
