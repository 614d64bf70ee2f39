"""The demo job: ``video2scene`` (fast preset, first 10 frames) on the synthetic clip shipped in
``assets/samples/synth_clip``,
then a score against the clip's exact ground truth (camera trajectory, depth, 2D tracks, moving masks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.video2scene import Video2SceneConfig, video2scene_inputs, video2scene_stages
from vision3d.runner import ProgressFn, Runner, RunResult, Stage, StageContext

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "assets" / "samples" / "synth_clip"


@dataclass
class EvaluateConfig:
    gt: str = "gt.npz"


def stage_evaluate(ctx: StageContext) -> dict:
    """ATE/RPE, depth abs_rel and one-step track error against the sample's ground truth; moving-mask J."""
    import cv2

    from vision3d.io.atomic import write_json
    from vision3d.scene4d.evaluate import evaluate_scene
    from vision3d.scene4d.metrics import region_similarity
    from vision3d.scene4d.scene import Scene4D
    from vision3d.synth.sample import load_sample_gt

    gt = load_sample_gt(ctx.inputs["gt"])
    scene = Scene4D.load(ctx.dep("scene") / "scene4d.npz")
    m = evaluate_scene(scene, gt)
    js = []
    for t in range(scene.n_frames):
        pred = cv2.imread(str(ctx.dep("masks") / f"{t:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
        g = cv2.resize(gt["moving"][t].astype(np.uint8), (scene.width, scene.height),
                       interpolation=cv2.INTER_NEAREST) > 0
        js.append(region_similarity(pred, g))
    m["moving_J"] = float(np.mean(js))
    write_json(ctx.out / "metrics.json", m)
    return m


def run_demo(out: str | Path, force=None, progress: ProgressFn | None = None, config: Video2SceneConfig | None = None,
             sample: Path = SAMPLE) -> RunResult:
    if config is None:                 # the first 10 frames: a few minutes on a 2-core CPU
        config = Video2SceneConfig.preset("fast")
        config.frames.max_frames = 10
    c = config
    stages = video2scene_stages(c) + [Stage("evaluate", stage_evaluate, EvaluateConfig(), deps=["scene", "masks"],
                                            files=["gt"], outputs=["metrics.json"])]
    inputs = video2scene_inputs(sample / "clip.mp4", c) | {"gt": sample / "gt.npz"}
    return Runner(out, "demo", progress).run(stages, inputs, force=force)
