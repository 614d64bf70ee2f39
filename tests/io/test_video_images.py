"""Video and image I/O: round trips, lazy frames, odd sizes, and every kind of broken input."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from vision3d.core.frames import ArrayFrames, ImageFolderFrames, VideoFrames, open_frames
from vision3d.errors import InputError
from vision3d.io.images import read_image, write_image
from vision3d.io.video import VideoWriter, iter_video, probe_video, write_video


def smooth_frames(n, h=48, w=64):
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    return [np.stack([0.5 + 0.4 * np.sin(6 * x + t / 3), 0.5 + 0.4 * np.cos(5 * y - t / 4),
                      0.5 + 0.3 * np.sin(4 * (x + y) + t / 5)], -1).astype(np.float32) for t in range(n)]


def psnr(a, b):
    return 10 * np.log10(1 / np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_video_round_trip(tmp_path):
    frames = smooth_frames(12)
    p = write_video(tmp_path / "v.mp4", frames, fps=12)
    info = probe_video(p)
    assert (info.width, info.height, info.n_frames) == (64, 48, 12) and info.fps == pytest.approx(12)
    vf = open_frames(p)
    assert isinstance(vf, VideoFrames) and len(vf) == 12
    got = list(vf)
    assert all(psnr(a, b) > 30 for a, b in zip(got, frames))
    assert psnr(vf[5], frames[5]) > 30 and psnr(vf[-1], frames[-1]) > 30
    idx = [i for i, _ in iter_video(p, start=2, stop=9, step=3)]
    assert idx == [2, 5, 8]
    assert [t for t, _, _ in vf.pairs()] == list(range(11))
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".")]


def test_video_odd_size_and_downscale(tmp_path):
    p = write_video(tmp_path / "odd.mp4", [f[:47, :63] for f in smooth_frames(3)], fps=5)
    assert (probe_video(p).width, probe_video(p).height) == (64, 48)  # padded to even for yuv420p
    vf = open_frames(p, max_side=32)
    assert vf.size == (32, 24) and vf[0].shape == (24, 32, 3)


def test_video_writer_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(target, fps=5) as w:
            w.write(smooth_frames(1)[0])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="frame 1 is"):
        with VideoWriter(target, fps=5) as w:
            w.write(smooth_frames(1)[0])
            w.write(np.zeros((10, 10, 3)))
    assert list(tmp_path.iterdir()) == []


def test_broken_videos(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        probe_video(empty)
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(InputError, match="text.mp4"):
        probe_video(text)
    with pytest.raises(InputError, match="does not exist"):
        probe_video(tmp_path / "missing.mp4")
    good = write_video(tmp_path / "good.mp4", smooth_frames(30), fps=10)
    data = good.read_bytes()
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="trunc.mp4"):  # moov atom at the end: nothing to open
        list(open_frames(trunc))


def test_zero_frame_video(tmp_path):
    import av

    p = tmp_path / "zero.mp4"
    with av.open(str(p), "w") as c:  # header written, no frame ever encoded
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        c.start_encoding()
    assert p.stat().st_size > 0
    with pytest.raises(InputError, match="zero.mp4: .*with frames"):
        probe_video(p)


def test_image_formats(tmp_path):
    rgb = (np.random.default_rng(0).uniform(size=(9, 7, 3))).astype(np.float32)
    write_image(tmp_path / "a.png", rgb)
    assert np.abs(read_image(tmp_path / "a.png") - rgb).max() <= 0.5 / 255 + 1e-6
    write_image(tmp_path / "b16.png", rgb, bits=16)
    assert np.abs(read_image(tmp_path / "b16.png") - rgb).max() < 1e-4
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((5, 6), 128, np.uint8))
    g = read_image(tmp_path / "gray.png")
    assert g.shape == (5, 6, 3) and np.allclose(g, 128 / 255)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 2] = 255  # BGRA: red
    rgba[..., 3] = 10
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    r = read_image(tmp_path / "rgba.png")
    assert r.shape == (4, 4, 3) and np.allclose(r[..., 0], 1) and np.allclose(r[..., 1:], 0)
    with pytest.raises(InputError, match="unsupported image format"):
        write_image(tmp_path / "x.xyz", rgb)
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="junk.png"):
        read_image(tmp_path / "junk.png")


def huge_png(path, w, h):
    """A valid PNG header claiming ``w``×``h`` pixels (the pixel data is never needed to reject it)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


def test_absurd_resolution(tmp_path):
    huge_png(tmp_path / "huge.png", 100_000, 100_000)
    with pytest.raises(InputError, match="too large"):
        read_image(tmp_path / "huge.png")
    (tmp_path / "seq").mkdir()
    huge_png(tmp_path / "seq/0001.png", 100_000, 100_000)
    with pytest.raises(InputError, match="too large"):
        open_frames(tmp_path / "seq")


def test_image_folder(tmp_path):
    frames = smooth_frames(4)
    for i, f in enumerate(frames):
        write_image(tmp_path / f"frame{i * 5}.png", f)  # frame0, frame5, frame10, frame15: natural order
    (tmp_path / "notes.txt").write_text("ignored")
    ff = open_frames(tmp_path)
    assert isinstance(ff, ImageFolderFrames) and len(ff) == 4
    assert [p.name for p in ff.files] == ["frame0.png", "frame5.png", "frame10.png", "frame15.png"]
    assert psnr(ff[2], frames[2]) > 40
    write_image(tmp_path / "frame20.png", frames[0][:20])
    with pytest.raises(InputError, match="frame20.png.*all frames must have one size"):
        open_frames(tmp_path)


def test_bad_frame_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        open_frames(tmp_path / "empty")
    with pytest.raises(InputError, match="does not exist"):
        open_frames(tmp_path / "nope")
    (tmp_path / "model.xyz").write_text("?")
    with pytest.raises(InputError, match="unsupported input type"):
        open_frames(tmp_path / "model.xyz")
    with pytest.raises(InputError, match="different sizes"):
        ArrayFrames([np.zeros((4, 4, 3)), np.zeros((5, 4, 3))])


def test_single_image_is_one_frame(tmp_path):
    write_image(tmp_path / "one.jpg", smooth_frames(1)[0])
    f = open_frames(tmp_path / "one.jpg")
    assert len(f) == 1 and f[0].shape == (48, 64, 3)


def test_real_davis_frames(data_dir):
    ff = open_frames(data_dir / "davis2016_480p/JPEGImages/blackswan", max_side=320)
    assert len(ff) == 50 and ff.native_size == (854, 480) and ff.size == (320, 180)
    f = ff[10]
    assert f.dtype == np.float32 and 0.05 < f.mean() < 0.95
