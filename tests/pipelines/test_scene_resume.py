"""A video2scene run killed in the middle of the GFlow stage continues at the frame it reached and ends with the
scene an uninterrupted run gives, retired Gaussians included (they are checkpointed frame by frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.video2scene import Video2SceneConfig, video2scene_inputs, video2scene_stages
from vision3d.runner import Runner
from vision3d.scene4d.scene import Scene4D

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "synth_clip" / "clip.mp4"


class Killed(Exception):
    pass


def _config() -> Video2SceneConfig:
    c = Video2SceneConfig.preset("fast")
    c.frames.short_side, c.frames.max_frames, c.scene.iterations = 48, 5, 0.1
    c.scene.overrides = {"retire_after": 1}        # Gaussians retire every frame: the archive must survive a kill
    return c


def _run(run: Path, kill_at: int | None = None):
    c = _config()
    stages = [s for s in video2scene_stages(c) if s.name in ("frames", "flow", "depth", "split", "scene")]

    def show(ev) -> None:
        if kill_at is not None and ev.stage == "scene" and ev.done == kill_at:
            raise Killed

    return Runner(run, "video2scene", show).run(stages, video2scene_inputs(SAMPLE, c))


def test_killed_scene_stage_resumes_with_its_retired_gaussians(tmp_path):
    _run(tmp_path / "whole")
    with pytest.raises(Killed):
        _run(tmp_path / "cut", kill_at=3)
    scratch = list((tmp_path / "cut").rglob("retired"))
    assert scratch and any(scratch[0].glob("*.npz")), "retired Gaussians are checkpointed per frame"
    _run(tmp_path / "cut")
    a, b = Scene4D.load(tmp_path / "whole"), Scene4D.load(tmp_path / "cut")
    assert a.death is not None and (a.death >= 0).sum() > 0
    assert len(a.moving) == len(b.moving)
    assert np.array_equal(np.sort(a.death), np.sort(b.death))
    assert np.allclose(a.world_to_cam, b.world_to_cam, atol=1e-4)
