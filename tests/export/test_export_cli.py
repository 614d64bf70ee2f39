"""``v3d export`` errors: one line and exit code 2 for bad input (no checkpoint, bad format, bad size)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vision3d.cli", *args], capture_output=True, text=True, check=False,
                          timeout=120, cwd=cwd)


def test_export_without_checkpoint_is_one_line_exit_2(tmp_path):
    p = _run("export", "compactflownet", "--format", "onnx", "-o", str(tmp_path / "out"),
             "--checkpoint", "/nonexistent.safetensors")
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr
    assert "/nonexistent.safetensors" in lines[0] and "train_flow.py" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, needle", [
    (["compactflownet", "--format", "tflite"], "unknown export format"),
    (["resnet", "--format", "onnx"], "not an exportable model"),
    (["compactflownet", "--format", "coreml", "--dynamic", "--random-init"], "--dynamic applies to ONNX only"),
    (["compactflownet", "--format", "onnx,executorch", "-o", "x.onnx", "--random-init"], "names one file"),
])
def test_export_input_errors_in_process(args, needle, capsys):
    from vision3d.cli.main import entry

    with pytest.raises(SystemExit) as e:
        entry(["export", *args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and needle in err, err


def test_export_onnx_end_to_end(tmp_path, capsys, monkeypatch):
    """The happy path on real frames, with a small CompactFlowNet standing in for the registered one (the
    default configuration's 2,600-node graph takes too long for the unit tests)."""
    pytest.importorskip("onnxruntime")
    cfn = pytest.importorskip("vision3d.flow.models.compactflownet")
    from dataclasses import replace

    import torch

    from tests.export.test_export_flow import SMALL
    from vision3d.cli.main import entry
    from vision3d.export import FlowExportWrapper
    from vision3d.export import models as registry

    torch.manual_seed(0)
    small = FlowExportWrapper(cfn.CompactFlowNet.from_config(SMALL).eval())
    spec = registry.EXPORTABLE["compactflownet"]
    monkeypatch.setitem(registry.EXPORTABLE, "compactflownet", replace(spec, build=lambda ckpt, rnd: small))
    with pytest.raises(SystemExit) as e:
        entry(["export", "compactflownet", "--format", "onnx", "--height", "64", "--width", "96", "--runs", "1",
               "--threads", "1", "--opset", "17", "-o", str(tmp_path)])   # TorchScript exporter: quicker
    out = capsys.readouterr().out
    assert e.value.code in (0, None), out
    onnx_path = tmp_path / "compactflownet_64x96.onnx"
    assert onnx_path.is_file() and (tmp_path / "compactflownet_64x96.onnx.report.md").is_file()
    rep = json.loads((tmp_path / "compactflownet_64x96.onnx.report.json").read_text())
    assert rep["max_abs_diff"] < 1e-4 and rep["opset"] == 17
    assert abs(rep["metric_before"]["epe"] - rep["metric_after"]["epe"]) < 1e-3
    assert "epe" in out and str(onnx_path) in out

    with pytest.raises(SystemExit) as e:     # a size that is not a multiple of the stride: one line, exit 2
        entry(["export", "compactflownet", "--format", "onnx", "--height", "60", "--width", "96"])
    assert e.value.code == 2 and "multiples of 8" in capsys.readouterr().err
