"""``v3d export`` errors: one line and exit code 2 for bad input (no checkpoint, bad format, bad size)."""

from __future__ import annotations

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
