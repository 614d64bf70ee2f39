"""What ``v3d view`` reads from each kind of path, its budgets, the static export's files and its errors
(no browser here; tests/viewers/test_browser.py drives the page)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.cli.test_cli import assert_one_line_error, v3d
from viewers.content import life_groups, load
from viewers.serve import export_static
from vision3d.errors import InputError


def test_4d_run_is_read_with_cameras_frames_masks_and_tracks(small_run):
    c = load(small_run)
    assert c.kind == "scene4d" and c.n_frames == 3 and len(c.frames) == 3 and len(c.masks) == 3
    assert len(c.still) > 100 and len(c.moving) == 3
    assert c.tracks3d.shape[0] == 3 and c.tracks2d.shape[:2] == c.tracks3d.shape[:2]
    assert np.isfinite(c.still.covariances).all() and (c.still.opacities > 0).all() and (c.still.opacities <= 1).all()
    assert "renders.psnr" in c.metrics and not c.missing


def test_gaussian_budget_subsamples_and_says_so(small_run):
    full = load(small_run)
    n = len(full.still) + max(len(m) for m in full.moving)
    c = load(small_run, max_gaussians=n // 4)
    assert len(c.still) < len(full.still) / 2 and any("--max-gaussians" in note for note in c.notes)
    assert all(len(m) <= len(f) for m, f in zip(c.moving, full.moving, strict=True))


def test_files_splats_points_mesh(splat_file, cloud_file, mesh_file):
    s = load(splat_file)
    assert s.kind == "splats" and len(s.still) == 3000
    p = load(cloud_file)                               # a PLY that is not a splat file: shown as a point cloud
    assert p.kind == "points" and p.points.shape == (500, 3) and "point cloud" in p.notes[0]
    m = load(mesh_file)
    assert m.kind == "mesh" and m.metrics["faces"] > 0


def test_unfinished_run_says_what_is_missing(small_run, tmp_path):
    part = tmp_path / "part"
    shutil.copytree(small_run, part)
    shutil.rmtree(part / "scene")
    man = json.loads((part / "manifest.json").read_text())
    for s in ("scene", "cameras", "tracks", "masks", "renders"):
        man["stages"].pop(s, None)
    (part / "manifest.json").write_text(json.dumps(man))
    c = load(part)
    assert c.kind == "partial" and "scene" in c.missing and len(c.frames) == 3
    res = v3d("view", part, "--export", tmp_path / "exp")
    assert res.returncode == 0 and "missing: scene" in res.stdout


def test_bad_paths_are_one_line_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(v3d("view", tmp_path / "nope"), "no such file")
    assert_one_line_error(v3d("view", tmp_path / "empty"), "not a result folder")
    assert_one_line_error(v3d("view", tmp_path / "notes.txt"), "cannot view a .txt file")
    with pytest.raises(InputError, match="max-gaussians"):
        load(tmp_path, max_gaussians=0)


def test_static_export_is_self_contained_and_atomic(small_run, tmp_path):
    out = export_static(small_run, tmp_path / "site")
    files = {p.name for p in out.iterdir()}
    assert {"index.html", "scene.viser", "open.html", "README.txt"} <= files
    assert not (tmp_path / "site.partial").exists()
    html = (out / "open.html").read_text()
    assert "playbackPath=scene.viser" in html and "initialCameraPosition=" in html
    size_3 = (out / "scene.viser").stat().st_size
    assert size_3 > 10_000
    again = export_static(small_run, tmp_path / "site")       # an earlier export is replaced
    assert again == out and (out / "scene.viser").stat().st_size > 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not an earlier export"):
        export_static(small_run, tmp_path / "other")
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"


def test_life_groups_are_exact_or_widen_ends_first():
    rng = np.random.default_rng(0)
    first = rng.integers(0, 50, 20000)
    life = np.stack([first, np.minimum(first + rng.integers(1, 30, len(first)), 50)], 1)
    group, spans = life_groups(life)                   # ~1,450 distinct lifetimes: one group each
    assert (spans[group] == life).all() and len(spans) == len(np.unique(life, axis=0))
    for cap in (64, 10):
        group, spans = life_groups(life, max_groups=cap)
        assert len(spans) <= cap and group.shape == (len(life),)
        # widened, never shortened: a Gaussian is shown in every frame it is part of
        assert (spans[group, 0] <= life[:, 0]).all() and (spans[group, 1] >= life[:, 1]).all()
    group, spans = life_groups(life, max_groups=64)    # 50 birth frames fit in 64 groups: births stay exact
    assert (spans[group, 0] == life[:, 0]).all()


def test_4d_viewer_shows_the_current_frames_still_gaussians(small_run):
    from viewers.app import STILL_MODES, Viewer, metrics_markdown
    from viewers.serve import _quiet_server, _viser
    from vision3d.scene4d.scene import Scene4D

    c = load(small_run)
    scene = Scene4D.load(small_run / "scene" / "scene4d.npz")
    assert c.still_life.shape == (len(c.still), 2)
    counts = [int((scene.exists(t) & ~scene.moving).sum()) for t in range(c.n_frames)]
    assert counts == [int(((c.still_life[:, 0] <= t) & (t < c.still_life[:, 1])).sum()) for t in range(c.n_frames)]
    assert len(set(counts)) > 1 or (c.still_life[:, 0] > 0).any()      # the run has lifetimes to tell apart
    assert f"{min(counts):,}–{max(counts):,} still ({len(c.still):,} in all frames)" in metrics_markdown(c)
    server = _quiet_server(_viser(), "127.0.0.1", 0)
    try:
        v = Viewer(server, c)
        v.stop()
        group, spans = life_groups(c.still_life)
        sizes = np.bincount(group, minlength=len(spans))
        assert len(v.still) == len(spans) and (v._still_spans == spans).all()

        def shown() -> int:
            return int(sizes[[h.visible for h in v.still]].sum())

        for t in range(c.n_frames):
            v.set_frame(t)
            assert shown() == counts[t]
        v.show_still.value = STILL_MODES[1]
        v._show_still()
        assert shown() == len(c.still)
        v.show_still.value = STILL_MODES[2]
        v._show_still()
        assert shown() == 0
    finally:
        server.stop()
