"""``v3d video2scene`` as a user runs it: outputs at their stable paths in formats other tools read, resume,
query-point tracks, mask propagation, export-frame, and bad or awkward inputs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from tests.cli.test_cli import assert_one_line_error, v3d
from vision3d.io.cameras.colmap import read_colmap_cameras
from vision3d.io.cameras.nerfstudio import read_transforms
from vision3d.io.cameras.tum import read_tum_trajectory
from vision3d.io.images import write_image
from vision3d.io.splats import read_splat_ply
from vision3d.runner import load_manifest
from vision3d.scene4d.tracks import Tracks

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "assets" / "samples" / "synth_clip"
FAST = ("--short-side", "48", "--iterations", "0.1")


def test_video2scene_outputs_resume_tracks_masks(tmp_path):
    gt = np.load(SAMPLE / "gt.npz")
    mask0 = tmp_path / "mask0.png"
    write_image(mask0, gt["moving"][0].astype(np.float32))          # the first frame's moving objects
    queries = tmp_path / "q.txt"
    np.savetxt(queries, [[0, 20, 20], [1, 30, 25]])
    run = tmp_path / "run"
    res = v3d("video2scene", SAMPLE / "clip.mp4", "-o", run, "--max-frames", "4", *FAST, "--query-points", queries,
              "--mask", mask0, "--mask-method", "fused")       # fused: flow, Gaussians and the split all take part
    assert res.returncode == 0, res.stderr
    assert "video2scene finished" in res.stdout and "PSNR" in res.stdout
    m = load_manifest(run)["metrics"]
    T, w, h = m["frames.n_frames"], m["frames.width"], m["frames.height"]
    assert (T, w, h) == (4, 64, 48)
    # cameras in three formats, consistent with each other
    _, c2w = read_tum_trajectory(run / "cameras" / "trajectory_tum.txt")
    ns = read_transforms(run / "cameras" / "transforms.json")
    col = read_colmap_cameras(run / "cameras" / "colmap")
    assert len(c2w) == len(ns) == len(col) == T
    assert np.allclose(ns.cam_to_world, col.cam_to_world, atol=1e-5)
    assert np.allclose(c2w[:, :3, 3], ns.cam_to_world[:, :3, 3], atol=1e-5)
    # tracks, masks, videos
    tr = Tracks.load(run / "tracks" / "tracks.npz")
    n = m["scene.n_gaussians"]
    assert tr.n_frames == T and len(tr.moving) == n and len(tr.index) == len(tr.uv) == len(tr.in_front)
    assert str(np.load(run / "tracks" / "tracks.npz")["format"]) == "vision3d-tracks/2"
    assert tr.extra["query_tracks"].shape == (2, T, 2)
    assert np.allclose(tr.extra["query_tracks"][0, 0], [20, 20], atol=1e-3)   # a track starts at its query
    assert tr.extra["query_source"].shape == (2, T) and tr.extra["query_source"][1, 1] == 1   # its own frame
    assert len(list((run / "masks").glob("*.png"))) == T and len(list((run / "masks" / "object").glob("*.png"))) == T
    obj0 = cv2.imread(str(run / "masks" / "object" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 127
    gt0 = cv2.resize(gt["moving"][0].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    # the propagated mask lies on the object (a crude 48-px reconstruction: coverage is partial)
    assert (obj0 & gt0).sum() > 0.2 * gt0.sum() and (obj0 & gt0).sum() > 0.6 * obj0.sum()
    objT = cv2.imread(str(run / "masks" / "object" / f"{T - 1:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
    gtT = cv2.resize(gt["moving"][T - 1].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    assert (objT & gtT).sum() > 0.2 * gtT.sum() and (objT & gtT).sum() > 0.6 * objT.sum()   # still on it at the end
    for v in ("rerender.mp4", "novel_orbit.mp4", "depth.mp4", "masks.mp4"):
        assert (run / "renders" / v).stat().st_size > 0
    metrics = json.loads((run / "renders" / "metrics.json").read_text())
    assert len(metrics["per_frame"]) == T and m["renders.psnr"] > 15
    # re-running resumes (nothing recomputed); export-frame writes a standard 3DGS file
    again = v3d("video2scene", SAMPLE / "clip.mp4", "-o", run, "--max-frames", "4", *FAST, "--query-points", queries,
                "--mask", mask0, "--mask-method", "fused")
    assert again.returncode == 0 and "0 stage(s) ran" in again.stdout, again.stdout
    exp = v3d("export-frame", run, "--frame", "-1", "-o", tmp_path / "last.ply")
    assert exp.returncode == 0, exp.stderr
    assert len(read_splat_ply(tmp_path / "last.ply")) > 100
    assert_one_line_error(v3d("export-frame", run, "--frame", "9"), "out of range")


def test_static_scene_odd_portrait_frames(tmp_path):
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.uniform(size=(61, 37, 3)).astype(np.float32), (0, 0), 1.5)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        write_image(folder / f"{i:03d}.png", img)                     # a fully static scene and camera
    run = tmp_path / "run"
    res = v3d("video2scene", folder, "-o", run, *FAST)
    assert res.returncode == 0, res.stderr
    m = load_manifest(run)["metrics"]
    assert m["frames.n_frames"] == 4 and m["frames.height"] > m["frames.width"]
    assert m["split.moving_fraction"] < 0.01
    _, c2w = read_tum_trajectory(run / "cameras" / "trajectory_tum.txt")
    assert np.abs(c2w[:, :3, 3]).max() < 0.05                           # the camera did not move
    # a corrupt frame in a folder: one clear line naming it, nothing written
    (folder / "002.png").write_bytes(b"not a png")
    assert_one_line_error(v3d("video2scene", folder, "-o", tmp_path / "bad", *FAST), "002.png")
    assert not (tmp_path / "bad").exists()


def test_truncated_video_keeps_the_frames_before_the_damage(tmp_path):
    from vision3d.io.video import write_video

    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.uniform(size=(72, 120, 3)).astype(np.float32), (0, 0), 2)
    write_video(tmp_path / "v.mp4", [np.roll(base, 2 * i, axis=1) for i in range(12)], fps=10)
    data = (tmp_path / "v.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    res = v3d("video2scene", tmp_path / "cut.mp4", "-o", tmp_path / "run", *FAST)
    if res.returncode == 2:                       # damaged beyond use: a clean one-line error, no run folder
        assert_one_line_error(res)
        return
    assert res.returncode == 0, res.stderr
    assert 2 <= load_manifest(tmp_path / "run")["metrics"]["frames.n_frames"] < 12


def test_bad_inputs(tmp_path):
    one = tmp_path / "one.png"
    write_image(one, np.zeros((32, 32, 3), np.float32))
    assert_one_line_error(v3d("video2scene", one, "-o", tmp_path / "r1"), "at least two")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(v3d("video2scene", empty, "-o", tmp_path / "r2"))
    assert_one_line_error(v3d("video2scene", SAMPLE / "clip.mp4", "-o", tmp_path / "r3", "--preset", "slow"),
                          "preset")
    assert_one_line_error(v3d("video2scene", SAMPLE / "clip.mp4", "-o", tmp_path / "r4", "--K", "1,2,3"), "--K")
    assert_one_line_error(v3d("video2scene", SAMPLE / "clip.mp4", "-o", tmp_path / "r5", "--mask-method", "hull"),
                          "--mask-method")
    assert_one_line_error(v3d("video2scene", SAMPLE / "clip.mp4", "-o", tmp_path / "r6", "--track-method", "x"),
                          "--track-method")
    # unknown methods fail before any stage runs (they used to fail after decoding and flow)
    assert_one_line_error(v3d("video2scene", SAMPLE / "clip.mp4", "-o", tmp_path / "r7", "--depth", "nosuch"),
                          "nosuch")
    assert_one_line_error(v3d("video2scene", SAMPLE / "clip.mp4", "-o", tmp_path / "r8", "--flow", "nosuch"),
                          "nosuch")
    assert not any((tmp_path / r).exists() for r in ("r1", "r3", "r5", "r6", "r7", "r8"))


def test_eval_scene4d_on_the_synthetic_sample(tmp_path):
    res = v3d("eval", "scene4d", "--dataset", "synth", "--max-frames", "3", "--short-side", "48", "--iterations",
              "0.1", "-o", tmp_path)
    assert res.returncode == 0, res.stderr
    rows = (tmp_path / "scene4d_synth_fast_geometric.csv").read_text().splitlines()
    head, vals = rows[0].split(","), rows[1].split(",")
    r = dict(zip(head, vals))
    assert float(r["ate"]) >= 0 and float(r["track_epe_step_zero"]) > 0 and r["frames"] == "3"
    assert np.isfinite(float(r["novel_psnr_0.05"])) and 0 < float(r["novel_covisible_0.05"]) <= 1
    res = v3d("eval", "scene4d", "--dataset", "synth", "--depth", "import", "--max-frames", "3", "--short-side", "48",
              "--iterations", "0.1", "-o", tmp_path)
    assert res.returncode == 0, res.stderr
    rows = (tmp_path / "scene4d_synth_fast_import.csv").read_text().splitlines()
    assert dict(zip(rows[0].split(","), rows[1].split(",")))["depth"] == "import"
    online = json.loads((tmp_path / "scene4d_synth_fast_import" / "scene" / "online.json").read_text())
    assert online["config"]["prior_trust"] == 0.0          # imported depth is not overruled by the scene
    online = json.loads((tmp_path / "scene4d_synth_fast_geometric" / "scene" / "online.json").read_text())
    assert online["config"]["prior_trust"] > 0
    assert_one_line_error(v3d("eval", "scene4d", "--dataset", "nosuchvideo", "-o", tmp_path), "nosuchvideo")
