"""Video files with PyAV: probing, streaming decode (one frame in memory at a time), streaming encode."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from vision3d.errors import InputError
from vision3d.io.atomic import temp_path_for
from vision3d.io.images import check_resolution, to_uint8

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")


@dataclass(frozen=True)
class VideoInfo:
    """What a video container says about its first video stream."""

    path: Path
    width: int
    height: int
    fps: float
    n_frames: int
    codec: str


def _open(path: Path):
    import av

    if not path.exists():
        raise InputError("video file does not exist", path=path, fix="check the path")
    if not path.is_file():
        raise InputError("is not a file", path=path)
    if path.stat().st_size == 0:
        raise InputError("video file is empty (0 bytes)", path=path, fix="re-export or re-download the video")
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise InputError(f"cannot open video ({e.__class__.__name__}: {getattr(e, 'strerror', e)})", path=path,
                         fix="the file is corrupt or not a video; re-export it as H.264 MP4") from e
    if not container.streams.video:
        container.close()
        raise InputError("file has no video stream with frames", path=path,
                         fix="check that the export finished; give a video with at least one frame")
    return container


def probe_video(path: str | Path) -> VideoInfo:
    """Read the header (and count packets when the header has no frame count); decodes nothing."""
    import av

    path = Path(path)
    container = _open(path)
    try:
        s = container.streams.video[0]
        w, h = s.codec_context.width, s.codec_context.height
        check_resolution(w, h, path)
        fps = float(s.average_rate or s.guessed_rate or 0) or 30.0
        n = s.frames
        if not n:
            try:
                n = sum(1 for p in container.demux(s) if p.size)
            except av.FFmpegError as e:
                raise InputError(f"video is unreadable ({e})", path=path, fix="re-export the video") from e
        if n == 0:
            raise InputError("video has no frames", path=path, fix="check that the export finished")
        return VideoInfo(path, w, h, fps, int(n), s.codec_context.name)
    finally:
        container.close()


def iter_video(path: str | Path, start: int = 0, stop: int | None = None, step: int = 1,
               on_error: str = "raise") -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, uint8 RGB frame)`` one at a time; memory stays flat however long the video is.

    ``on_error='skip'`` skips undecodable packets instead of raising (the index still advances per frame
    actually decoded, so indices stay contiguous).
    """
    import av

    path = Path(path)
    container = _open(path)
    try:
        s = container.streams.video[0]
        s.thread_type = "AUTO"
        i = 0
        for packet in container.demux(s):
            try:
                frames = packet.decode()
            except av.FFmpegError as e:
                if on_error == "skip":
                    continue
                raise InputError(f"video is corrupt near frame {i} ({e.__class__.__name__})", path=path,
                                 fix="re-export the video, or pass the frames as an image folder") from e
            for fr in frames:
                if stop is not None and i >= stop:
                    return
                if i >= start and (i - start) % step == 0:
                    yield i, fr.to_ndarray(format="rgb24")
                i += 1
        if i == 0:
            raise InputError("video has no decodable frames", path=path, fix="re-export the video")
    finally:
        container.close()


class VideoWriter:
    """Streaming H.264 (or other codec) writer; the file appears at ``path`` only when closed cleanly."""

    def __init__(self, path: str | Path, fps: float = 30.0, codec: str = "libx264", crf: int = 18,
                 pix_fmt: str = "yuv420p"):
        self.path = Path(path)
        self.fps, self.codec, self.crf, self.pix_fmt = fps, codec, crf, pix_fmt
        self._ctx = None
        self._container = None
        self._stream = None
        self.n_frames = 0

    def __enter__(self) -> VideoWriter:
        import av

        self._tmp = temp_path_for(self.path)
        self._container = av.open(str(self._tmp), mode="w", format=self._format())
        return self

    def _format(self) -> str | None:
        return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                ".avi": "avi", ".gif": "gif"}.get(self.path.suffix.lower())

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H,W,3)`` float [0,1] or uint8 frame (odd sizes are padded to even for yuv420p)."""
        import av

        rgb = to_uint8(frame)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, 2)
        h, w = rgb.shape[:2]
        if self._stream is None:
            self._stream = self._container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1000))
            self._stream.width, self._stream.height = w + (w % 2), h + (h % 2)
            self._stream.pix_fmt = self.pix_fmt
            if self.codec in ("libx264", "h264"):
                self._stream.options = {"crf": str(self.crf), "preset": "fast"}
            self._size = (h, w)
        if (h, w) != self._size:
            raise InputError(f"frame {self.n_frames} is {w}x{h}, the video is {self._size[1]}x{self._size[0]}",
                             path=self.path)
        if w % 2 or h % 2:
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
            self._container.mux(packet)
        self.n_frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        ok = False
        try:
            if exc_type is None:
                if self._stream is None:
                    raise InputError("no frames were written", path=self.path)
                for packet in self._stream.encode():
                    self._container.mux(packet)
                ok = True
        finally:
            self._container.close()
            if ok:
                os.replace(self._tmp, self.path)
            else:
                self._tmp.unlink(missing_ok=True)


def write_video(path: str | Path, frames, fps: float = 30.0, **kw) -> Path:
    """Write an iterable of frames as a video (streaming; the iterable may be a generator)."""
    with VideoWriter(path, fps=fps, **kw) as w:
        for f in frames:
            w.write(f)
    return Path(path)
