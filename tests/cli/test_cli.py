"""The ``v3d`` command line as a user meets it: help, info, inspect/convert, and one-line errors with exit 2."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from vision3d.io.flow import write_flow
from vision3d.io.video import write_video


def v3d(*args, cwd=None):
    """Run the real console entry point in a subprocess (true exit codes and stderr)."""
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "vision3d.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def assert_one_line_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    err = res.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err
    for n in needles:
        assert n in err, (n, err)


def test_help_lists_jobs():
    res = v3d("--help")
    assert res.returncode == 0
    for cmd in ("info", "demo", "inspect", "convert", "synth"):
        assert cmd in res.stdout


def test_info_json():
    res = v3d("info", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["device"] == "cpu" or info["device"].startswith("cuda")
    names = {(c["group"], c["name"]) for c in info["capabilities"]}
    assert {("render", "torch"), ("render", "gsplat"), ("export", "onnx"), ("export", "coreml"),
            ("export", "executorch"), ("viewer", "viser")} <= names
    gs = next(c for c in info["capabilities"] if c["name"] == "gsplat")
    assert gs["available"] or gs["detail"]  # says why not


def test_device_cuda_without_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert_one_line_error(v3d("--device", "cuda", "info"), "CUDA")


def huge_png(path, w, h):
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


def frames(n, h=32, w=48):
    rng = np.random.default_rng(0)
    return [rng.uniform(size=(h, w, 3)).astype(np.float32) for _ in range(n)]


def test_bad_inputs_one_line_exit_2(tmp_path):
    """Every kind of broken input named in the foundation issue, through the real CLI."""
    cases = []
    cases.append((tmp_path / "missing.mp4", "does not exist"))
    (tmp_path / "empty").mkdir()
    cases.append((tmp_path / "empty", "no images"))
    good = write_video(tmp_path / "good.mp4", frames(20), fps=10)
    (tmp_path / "trunc.mp4").write_bytes(good.read_bytes()[:300])
    cases.append((tmp_path / "trunc.mp4", "trunc.mp4"))
    (tmp_path / "zero.mp4").write_bytes(b"")
    cases.append((tmp_path / "zero.mp4", "empty"))
    (tmp_path / "scene.xyz").write_text("?")
    cases.append((tmp_path / "scene.xyz", "unsupported"))
    (tmp_path / "bad.flo").write_bytes(struct.pack("<f", 123.0) + b"\0" * 20)
    cases.append((tmp_path / "bad.flo", "bad.flo"))
    short = tmp_path / "short.flo"
    short.write_bytes(struct.pack("<fii", 202021.25, 10, 10) + b"\0" * 16)
    cases.append((short, "short.flo"))
    np.save(tmp_path / "nan_depth.npy", np.full((4, 4), np.nan, np.float32))
    (tmp_path / "sizes").mkdir()
    from vision3d.io.images import write_image

    write_image(tmp_path / "sizes/0.png", frames(1)[0])
    write_image(tmp_path / "sizes/1.png", frames(1, h=20)[0])
    cases.append((tmp_path / "sizes", "1.png"))
    huge_png(tmp_path / "huge.png", 200_000, 100_000)
    cases.append((tmp_path / "huge.png", "too large"))
    for path, needle in cases:
        assert_one_line_error(v3d("inspect", path), needle)
    out = tmp_path / "out.png"
    assert_one_line_error(v3d("convert", tmp_path / "nan_depth.npy", out), "nan_depth.npy", "no finite")
    assert_one_line_error(v3d("convert", tmp_path / "bad.flo", tmp_path / "out.flo"), "bad.flo")
    assert not out.exists() and not (tmp_path / "out.flo").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_debug_shows_traceback(tmp_path):
    res = v3d("--debug", "inspect", tmp_path / "missing.mp4")
    assert res.returncode != 0 and "Traceback" in res.stderr and "InputError" in res.stderr


def test_usage_error_exit_2():
    res = v3d("inspect")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_inspect_and_convert_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    flow = rng.normal(size=(2, 12, 16)).astype(np.float32) * 5
    write_flow(tmp_path / "f.flo", flow)
    res = v3d("inspect", "--json", tmp_path / "f.flo")
    assert res.returncode == 0 and json.loads(res.stdout)["kind"] == "flow"
    res = v3d("convert", tmp_path / "f.flo", tmp_path / "f.png", "--kind", "flow")
    assert res.returncode == 0, res.stderr
    from vision3d.io.flow import read_flow

    assert np.abs(read_flow(tmp_path / "f.png").flow - flow).max() <= 1 / 64 + 1e-6
    assert_one_line_error(v3d("convert", tmp_path / "f.png", tmp_path / "g.flo"), "--kind")


def test_inspect_real_files(data_dir):
    res = v3d("inspect", "--json", data_dir / "sintel_flow/training/flow/cave_2/frame_0002.flo")
    facts = json.loads(res.stdout)
    assert (facts["width"], facts["height"]) == (1024, 436) and facts["max_magnitude_px"] > 40
    res = v3d("inspect", "--json", data_dir / "nerf_synthetic_lego/transforms_train_subset.json")
    assert json.loads(res.stdout)["cameras"] == 20
