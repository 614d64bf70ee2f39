"""The flow registry: streaming over frames, multi-frame windows, backward flow + occlusion, padding, eval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vision3d.errors import InputError
from vision3d.flow.consistency import fb_occlusion
from vision3d.flow.learned import LearnedFlow
from vision3d.flow.metrics import flow_metrics
from vision3d.flow.registry import METHODS, FlowEstimator, estimate, get_estimator
from vision3d.synth import SynthConfig, render_sequence, sample_scene


@pytest.fixture(scope="module")
def seq():
    cfg = SynthConfig(width=128, height=96, n_frames=6, motion="small", static_camera_prob=0.0, seed=3)
    return render_sequence(sample_scene(cfg, rng=3))


def test_dis_streams_every_pair(seq):
    gen = estimate(iter(seq.images), "dis")
    results = list(gen)
    assert [r.t for r in results] == [0, 1, 2, 3, 4]
    for r in results:
        assert r.forward.shape == (2, 96, 128) and r.backward is None
        m = flow_metrics(r.forward, seq.flow_fw[r.t], ~seq.occ_fw[r.t])
        zero = flow_metrics(np.zeros_like(r.forward), seq.flow_fw[r.t], ~seq.occ_fw[r.t])
        assert m["epe"] < zero["epe"] or zero["epe"] < 0.3


def test_fb_occlusion_on_exact_flow(seq):
    """With exact forward/backward flow the consistency check recovers the true occlusions."""
    for t in range(len(seq.flow_fw)):
        pred = fb_occlusion(seq.flow_fw[t], seq.flow_bw[t])
        gt = seq.occ_fw[t]
        agree = (pred == gt).mean()
        assert agree > 0.97
        if gt.sum() > 50:
            assert (pred & gt).sum() / gt.sum() > 0.6


def test_backward_results(seq):
    res = list(estimate(seq.images[:3], "dis", backward=True))
    assert len(res) == 2 and res[0].backward.shape == (2, 96, 128) and res[0].occlusion.dtype == bool


class IndexClip:
    """A fake 3-frame model: 'flow' u = index of the source frame, v = index of the target (read from pixels)."""

    def __call__(self, frames):
        ids = [float(f[0, 0, 0]) for f in frames]
        return np.stack([np.stack([np.full((2, 2), a), np.full((2, 2), b)]) for a, b in zip(ids[:-1], ids[1:])])


def test_multiframe_windows_cover_all_pairs():
    frames = [np.full((2, 2, 3), float(i), np.float32) for i in range(6)]
    est = FlowEstimator("fake", pair=None, frames_per_clip=3, clip=IndexClip())
    res = list(estimate(frames, est, backward=True))
    assert [r.t for r in res] == [0, 1, 2, 3, 4]
    for r in res:
        assert r.forward[0, 0, 0] == r.t and r.forward[1, 0, 0] == r.t + 1
        assert r.backward[0, 0, 0] == r.t + 1 and r.backward[1, 0, 0] == r.t
    # 2 frames into a 3-frame model: the last frame is repeated, one flow comes out
    assert len(est.clip(frames[:2])) == 1


def test_estimate_errors():
    with pytest.raises(InputError, match="at least two frames"):
        list(estimate([np.zeros((4, 4, 3), np.float32)], "dis"))
    with pytest.raises(InputError, match="frame 1 is"):
        list(estimate([np.zeros((4, 4, 3), np.float32), np.zeros((5, 4, 3), np.float32)], "farneback"))
    with pytest.raises(InputError, match="unknown flow method"):
        get_estimator("raft")
    assert {"dis", "farneback", "reynolds", "compactflownet", "streamflow"} <= set(METHODS)


def test_missing_checkpoint_is_clear(tmp_path):
    with pytest.raises(InputError, match="no checkpoint"):
        get_estimator("compactflownet", checkpoint=tmp_path / "none.safetensors")


class ZeroNet(torch.nn.Module):
    name, frames_per_clip, stride = "zero", 2, 16

    def forward(self, x):
        assert x.shape[-1] % 16 == 0 and x.shape[-2] % 16 == 0
        b, t, _, h, w = x.shape
        return x[:, 1:, :2] - x[:, :1, :2]


def test_learned_wrapper_pads_and_crops():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=(37, 53, 3)).astype(np.float32), rng.uniform(size=(37, 53, 3)).astype(np.float32)
    f = LearnedFlow(ZeroNet())(a, b)
    assert f.shape == (2, 37, 53)
    assert np.allclose(f, np.moveaxis((b - a)[..., :2], -1, 0), atol=1e-6)


def test_eval_on_synth_folder(tmp_path, seq):
    from vision3d.flow.evaluate import evaluate
    from vision3d.synth import save_sequence

    save_sequence(seq, tmp_path / "clip")
    rows, summary = evaluate(str(tmp_path / "clip"), "dis")
    assert len(rows) == 5 and summary["samples"] == 5
    assert {"epe", "px1", "px3", "px5", "flall", "epe_occ", "epe_non_occ", "ms_per_pair"} <= set(summary)
    assert summary["epe_non_occ"] <= summary["epe_occ"]


def test_eval_real_data(data_dir):
    from vision3d.flow.evaluate import evaluate

    rows, summary = evaluate("middlebury", "dis")
    assert [r["sample"] for r in rows] == ["Dimetrodon", "Grove2", "Hydrangea", "RubberWhale"]
    assert summary["epe"] < 1.0  # DIS medium on Middlebury 'other' is well below 1 px
    rows, summary = evaluate("sintel", "dis")
    assert len(rows) == 4 and "epe_occ" in rows[0]
