"""``v3d flow`` and ``v3d eval flow`` as a user runs them, including bad inputs."""

from __future__ import annotations

import json

import cv2
import numpy as np

from tests.cli.test_cli import assert_one_line_error, v3d
from vision3d.io.flow import read_flow
from vision3d.io.images import write_image
from vision3d.io.video import probe_video


def two_images(tmp_path, w=61, h=45, gray=False, sixteen=False):
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.uniform(size=(h + 8, w + 8, 3)).astype(np.float32), (0, 0), 2)
    a, b = base[4:4 + h, 4:4 + w], base[4:4 + h, 2:2 + w]  # content moves 2 px right
    pa, pb = tmp_path / "a.png", tmp_path / "b.png"
    if gray:
        a, b = a.mean(2), b.mean(2)
    write_image(pa, a, bits=16 if sixteen else 8)
    write_image(pb, b, bits=16 if sixteen else 8)
    return pa, pb


def test_flow_two_images_odd_size(tmp_path):
    a, b = two_images(tmp_path)
    res = v3d("flow", a, b, "-o", tmp_path / "out", "--backward")
    assert res.returncode == 0, res.stderr
    f = read_flow(tmp_path / "out/forward/00000.flo")
    assert f.flow.shape == (2, 45, 61)
    assert abs(np.median(f.flow[0][10:-10, 10:-10]) - 2) < 0.5
    for p in ("forward_vis/00000.png", "backward/00000.flo", "occlusion/00000.png", "flow.json", "flow.mp4"):
        assert (tmp_path / "out" / p).is_file(), p
    assert json.loads((tmp_path / "out/flow.json").read_text())["pairs"] == 1


def test_flow_gray_16bit_npy(tmp_path):
    a, b = two_images(tmp_path, gray=True, sixteen=True)
    res = v3d("flow", a, b, "-o", tmp_path / "out", "--format", "npy", "-m", "farneback", "--no-video")
    assert res.returncode == 0, res.stderr
    assert np.load(tmp_path / "out/forward/00000.npy").shape == (2, 45, 61)
    assert not (tmp_path / "out/flow.mp4").exists()


def test_flow_video_streams(tmp_path, repo_dir):
    clip = repo_dir / "assets/samples/synth_clip/clip.mp4"
    res = v3d("flow", clip, "-o", tmp_path / "out", "--max-side", "128")
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "out/forward").glob("*.flo"))) == 19
    assert probe_video(tmp_path / "out/flow.mp4").n_frames == 19


def test_flow_bad_inputs(tmp_path):
    a, _ = two_images(tmp_path)
    assert_one_line_error(v3d("flow", a, "-o", tmp_path / "o1"), "at least two frames")
    write_image(tmp_path / "c.png", np.zeros((10, 10, 3)))
    assert_one_line_error(v3d("flow", a, tmp_path / "c.png", "-o", tmp_path / "o2"), "c.png", "one size")
    assert_one_line_error(v3d("flow", a, a, "-o", tmp_path / "o3", "-m", "raft"), "unknown flow method")
    assert_one_line_error(v3d("flow", a, a, "-o", tmp_path / "o4", "-m", "compactflownet",
                              "--checkpoint", tmp_path / "nope.safetensors"), "no checkpoint")
    assert_one_line_error(v3d("flow", a, a, "-o", tmp_path / "o5", "--format", "png"), "--format")


def test_eval_flow_cli(tmp_path, data_dir):
    res = v3d("eval", "flow", "--dataset", "middlebury", "-m", "dis", "-o", tmp_path)
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "flow_middlebury_dis.csv").read_text().splitlines()
    assert lines[0].startswith("sample,") and len(lines) == 5
    assert_one_line_error(v3d("eval", "flow", "--dataset", "kitti-2099", "-o", tmp_path), "unknown flow dataset")
