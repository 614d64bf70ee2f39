"""The demo job end to end on the shipped sample: outputs, honest metrics, resume, --force."""

from __future__ import annotations

import json

import numpy as np

from pipelines.demo import run_demo
from vision3d.io.splats import read_splats
from vision3d.runner import load_manifest


def test_demo_runs_resumes_and_measures(tmp_path):
    run = tmp_path / "demo"
    res = run_demo(run)
    assert res.ran == ["decode", "flow", "evaluate", "roundtrip"]
    m = load_manifest(run)["metrics"]
    assert m["decode.frames"] == 20 and m["flow.pairs"] == 19
    # DIS must beat the zero-flow baseline clearly on this clip with exact ground truth
    assert m["evaluate.epe_noc"] < 0.5 * m["evaluate.epe_zero_flow"]
    assert m["evaluate.epe_noc"] <= m["evaluate.epe_all"]
    errors = json.loads((run / "roundtrip/errors.json").read_text())
    assert errors["flow.flo"] == 0 and errors["depth.npy"] == 0 and errors["tum"] < 1e-9
    assert errors["depth.png"] <= 0.5e-3 + 1e-6 and errors["splats.ply"] == 0
    assert len(read_splats(run / "roundtrip/frame0.ply")) == m["roundtrip.gaussians"]
    assert (run / "flow/flow.mp4").stat().st_size > 0 and len(list((run / "flow").glob("*.flo"))) == 19
    again = run_demo(run)
    assert again.ran == [] and len(again.skipped) == 4
    forced = run_demo(run, force="evaluate")
    assert forced.ran == ["evaluate", "roundtrip"]
    per_pair = json.loads((run / "evaluate/per_pair.json").read_text())
    assert np.isclose(np.mean([r["epe_all"] for r in per_pair]), m["evaluate.epe_all"])
