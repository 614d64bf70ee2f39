"""Checkpoints: safetensors + JSON config round trip, model check, refusing non-safetensors and pickles."""

from __future__ import annotations

import json
import pickle

import pytest

from vision3d.errors import InputError
from vision3d.io.checkpoint import load_checkpoint, save_checkpoint

torch = pytest.importorskip("torch")


@pytest.fixture
def state() -> dict:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4, 3, generator=g)
    return {"conv.weight": w, "conv.bias": torch.zeros(4, dtype=torch.float16), "steps": torch.tensor([7]),
            "head.weight": w.t()}  # non-contiguous view sharing storage with conv.weight


def test_round_trip(tmp_path, state):
    cfg = {"channels": [16, 32], "lr": 1e-3, "name": "tiny"}
    p = save_checkpoint(tmp_path / "ckpt" / "flow_small", state, cfg, model="compactflownet", extra={"epe": 1.25})
    assert p.name == "flow_small.safetensors"
    sidecar = json.loads((tmp_path / "ckpt" / "flow_small.json").read_text())
    assert sidecar["config"] == cfg and sidecar["model"] == "compactflownet" and sidecar["extra"] == {"epe": 1.25}
    sd, config, meta = load_checkpoint(p, model="compactflownet")
    assert config == cfg
    assert meta["model"] == "compactflownet" and meta["format"] == "safetensors" and meta["extra"] == {"epe": 1.25}
    assert "vision3d_version" in meta
    assert set(sd) == set(state)
    for k, v in state.items():
        assert sd[k].dtype == v.dtype and torch.equal(sd[k], v)
    # the name without suffix finds the file too
    assert load_checkpoint(tmp_path / "ckpt" / "flow_small")[1] == cfg


def test_wrong_model(tmp_path, state):
    p = save_checkpoint(tmp_path / "a.safetensors", state, {}, model="streamflow")
    with pytest.raises(InputError, match="checkpoint is for model streamflow, not compactflownet") as e:
        load_checkpoint(p, model="compactflownet")
    assert str(p) in str(e.value) and "pass a compactflownet checkpoint" in str(e.value)


@pytest.mark.parametrize("content", [b"", b"hello world, not a checkpoint",
                                     b"\x10\x00\x00\x00\x00\x00\x00\x00[1, 2, 3, 4, 5, 6]!"])
def test_not_safetensors(tmp_path, content):
    p = tmp_path / "model.safetensors"
    p.write_bytes(content)
    with pytest.raises(InputError, match="not a safetensors checkpoint") as e:
        load_checkpoint(p)
    assert str(p) in str(e.value)


def test_missing(tmp_path):
    with pytest.raises(InputError, match="not found") as e:
        load_checkpoint(tmp_path / "nothing.safetensors")
    assert "nothing.safetensors" in str(e.value)


def test_torch_weights_only(tmp_path, state):
    p = tmp_path / "third_party.pth"
    torch.save({"state_dict": {k: v.clone() for k, v in state.items()}, "epoch": 3}, p)
    sd, config, meta = load_checkpoint(p)
    assert config == {} and meta["format"] == "torch" and torch.equal(sd["conv.weight"], state["conv.weight"])


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused(tmp_path, capsys):
    p = tmp_path / "evil.pt"
    p.write_bytes(pickle.dumps({"w": _Evil()}, protocol=2))
    with pytest.raises(InputError, match="plain PyTorch weights") as e:
        load_checkpoint(p)
    assert str(p) in str(e.value)
    assert "must never run" not in capsys.readouterr().out
