"""The demo job (video2scene on the shipped sample + a score against its exact ground truth), resumed."""

from __future__ import annotations

from pipelines.demo import run_demo
from pipelines.video2scene import Video2SceneConfig
from vision3d.runner import load_manifest


def test_demo_runs_scores_and_resumes(tmp_path):
    c = Video2SceneConfig.preset("fast")
    c.frames.short_side, c.frames.max_frames, c.scene.iterations = 64, 5, 0.2
    run = tmp_path / "demo"
    res = run_demo(run, config=c)
    assert res.ran[-1] == "evaluate" and len(res.ran) == 10
    m = load_manifest(run)["metrics"]
    assert m["frames.n_frames"] == 5
    # the reconstruction must beat trivial answers on exact ground truth
    assert m["evaluate.track_epe_step"] < m["evaluate.track_epe_step_zero"]
    assert m["evaluate.ate"] < m["evaluate.path_length_gt"]
    assert 0 < m["evaluate.depth_abs_rel"] < m["evaluate.depth_abs_rel_constant"]
    again = run_demo(run, config=c)
    assert again.ran == [] and len(again.skipped) == 10
    assert run_demo(run, config=c, force="evaluate").ran == ["evaluate"]
