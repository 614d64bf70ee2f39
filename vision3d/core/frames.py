"""Lazy frame sources: a video, an image folder or an in-memory array behind one streaming interface.

Frames are decoded only when iterated or indexed, one at a time, so a long video is never held whole.
Every source yields float32 ``(H,W,3)`` RGB in [0,1], optionally downscaled so its longer side ≤ ``max_side``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from vision3d.errors import InputError


def _fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


class Frames(ABC):
    """A sequence of equally sized frames, read lazily."""

    source: str
    native_size: tuple[int, int]  # (width, height) of the stored frames
    fps: float

    def __init__(self, max_side: int | None = None):
        if max_side is not None and max_side < 8:
            raise InputError(f"max_side={max_side} is too small", fix="use at least 8 pixels")
        self.max_side = max_side

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames this source yields."""
        return _fit_size(*self.native_size, self.max_side)

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _iter_raw(self, start: int, stop: int) -> Iterator[np.ndarray]: ...

    def _post(self, raw: np.ndarray) -> np.ndarray:
        from vision3d.io.images import to_float_rgb

        img = to_float_rgb(raw)
        w, h = self.size
        if (img.shape[1], img.shape[0]) != (w, h):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return img

    def __iter__(self) -> Iterator[np.ndarray]:
        for raw in self._iter_raw(0, len(self)):
            yield self._post(raw)

    def iter_range(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        stop = len(self) if stop is None else min(stop, len(self))
        for raw in self._iter_raw(start, stop):
            yield self._post(raw)

    def __getitem__(self, i: int) -> np.ndarray:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {i} out of range (0..{n - 1})")
        return next(self.iter_range(i, i + 1))

    def pairs(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Consecutive pairs ``(t, frame_t, frame_t+1)``, keeping two frames in memory."""
        prev = None
        for t, f in enumerate(self):
            if prev is not None:
                yield t - 1, prev, f
            prev = f

    def describe(self) -> dict:
        return {"source": self.source, "frames": len(self), "width": self.width, "height": self.height,
                "native_width": self.native_size[0], "native_height": self.native_size[1], "fps": self.fps}


class VideoFrames(Frames):
    """Frames of a video file, decoded with PyAV as they are needed."""

    def __init__(self, path: str | Path, max_side: int | None = None):
        from vision3d.io.video import probe_video

        super().__init__(max_side)
        self.info = probe_video(path)
        self.source = str(self.info.path)
        self.native_size = (self.info.width, self.info.height)
        self.fps = self.info.fps

    def __len__(self) -> int:
        return self.info.n_frames

    def _iter_raw(self, start: int, stop: int) -> Iterator[np.ndarray]:
        from vision3d.io.video import iter_video

        for _, f in iter_video(self.info.path, start=start, stop=stop):
            yield f


class ImageFolderFrames(Frames):
    """Frames stored as image files in one folder (natural sort order); all must share one size."""

    def __init__(self, path: str | Path | list[Path], max_side: int | None = None, fps: float = 30.0):
        from vision3d.io.images import check_resolution, image_size, list_images

        super().__init__(max_side)
        self.files = [Path(p) for p in path] if isinstance(path, (list, tuple)) else list_images(path)
        if not self.files:
            raise InputError("no images given")
        self.source = str(path if not isinstance(path, (list, tuple)) else self.files[0].parent)
        self.native_size = image_size(self.files[0])
        check_resolution(*self.native_size, self.files[0])
        for f in self.files[1:]:
            s = image_size(f)
            if s != self.native_size:
                raise InputError(f"image is {s[0]}x{s[1]} but {self.files[0].name} is "
                                 f"{self.native_size[0]}x{self.native_size[1]}", path=f,
                                 fix="all frames must have one size; resize or remove the odd one")
        self.fps = fps

    def __len__(self) -> int:
        return len(self.files)

    def _iter_raw(self, start: int, stop: int) -> Iterator[np.ndarray]:
        from vision3d.io.images import read_image

        for f in self.files[start:stop]:
            yield read_image(f)


class ArrayFrames(Frames):
    """Frames already in memory (``(T,H,W,3)`` array or a list of equally sized images)."""

    def __init__(self, frames, max_side: int | None = None, fps: float = 30.0, source: str = "<array>"):
        super().__init__(max_side)
        self.frames = list(frames)
        if not self.frames:
            raise InputError("no frames given")
        shapes = {np.shape(f)[:2] for f in self.frames}
        if len(shapes) != 1:
            raise InputError(f"frames have different sizes {sorted(shapes)}", fix="resize them to one size")
        h, w = shapes.pop()
        self.native_size = (w, h)
        self.source, self.fps = source, fps

    def __len__(self) -> int:
        return len(self.frames)

    def _iter_raw(self, start: int, stop: int) -> Iterator[np.ndarray]:
        yield from self.frames[start:stop]


def open_inputs(paths: list[str | Path], max_side: int | None = None, fps: float | None = None) -> Frames:
    """One video / image folder / image, or several image files taken in the order given."""
    from vision3d.io.images import IMAGE_SUFFIXES

    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no input given", fix="give a video, an image folder, or two or more images")
    if len(paths) == 1:
        return open_frames(paths[0], max_side=max_side, fps=fps)
    for p in paths:
        if not p.exists():
            raise InputError("does not exist", path=p, fix="check the path")
        if p.is_dir() or p.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError("several inputs must all be image files", path=p,
                             fix="give one video or folder, or a list of images")
    return ImageFolderFrames(paths, max_side=max_side, fps=fps or 30.0)


def open_frames(path: str | Path, max_side: int | None = None, fps: float | None = None) -> Frames:
    """Open a video file, an image folder or a single image as a lazy ``Frames`` source."""
    from vision3d.io.images import IMAGE_SUFFIXES, read_image
    from vision3d.io.video import VIDEO_SUFFIXES

    path = Path(path)
    if not path.exists():
        raise InputError("does not exist", path=path, fix="check the path")
    if path.is_dir():
        return ImageFolderFrames(path, max_side=max_side, fps=fps or 30.0)
    ext = path.suffix.lower()
    if ext in VIDEO_SUFFIXES:
        return VideoFrames(path, max_side=max_side)
    if ext in IMAGE_SUFFIXES:
        return ArrayFrames([read_image(path)], max_side=max_side, fps=fps or 30.0, source=str(path))
    raise InputError(f"unsupported input type {ext or '(no extension)'!r}", path=path,
                     fix=f"give a video ({', '.join(VIDEO_SUFFIXES[:4])}), an image or a folder of images")
