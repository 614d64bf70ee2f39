"""export_model on a tiny grid_sample network: parity per format, the report, atomicity, clear errors."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from tests.export.conftest import LinspaceWarpNet, mean_metric
from vision3d.errors import InputError
from vision3d.export import ExportError, ExportReport, export_model
from vision3d.export.report import report_paths


def _only_nothing_left(folder: Path) -> None:
    assert not any(folder.iterdir()), f"left behind: {sorted(p.name for p in folder.iterdir())}"


def test_onnx_parity_and_report(tmp_path, tiny_model, tiny_inputs, tiny_checks):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    rep = export_model(tiny_model, tiny_inputs, "onnx", tmp_path / "tiny", tiny_checks, mean_metric, runs=2)
    path = tmp_path / "tiny.onnx"
    assert Path(rep.path) == path and path.is_file()
    assert rep.opset == 18 and "dynamo" in rep.exporter
    assert rep.runnable and rep.max_abs_diff < 1e-4
    assert rep.n_check_inputs == 2 and rep.output_shapes == [[1, 2, 32, 48]]
    assert abs(rep.metric_before["mean"] - rep.metric_after["mean"]) < 1e-4
    assert rep.latency_ms["runs"] == 2 and rep.torch_latency_ms["median"] > 0
    assert rep.file_size_bytes == path.stat().st_size > 0

    jp, mp = report_paths(path)
    data = json.loads(jp.read_text())
    assert set(data) == {f.name for f in fields(ExportReport)}
    for key in ("format", "path", "file_size_bytes", "max_abs_diff", "metric_before", "metric_after",
                "latency_ms", "torch_latency_ms", "opset", "backends", "warnings"):
        assert data[key] is not None, key
    assert ExportReport.load(jp).max_abs_diff == pytest.approx(rep.max_abs_diff)
    assert "max abs diff" in mp.read_text()

    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["image1", "image2"]
    assert any(n.op_type == "GridSample" for n in model.graph.node)


def test_onnx_dynamic_hw(tmp_path, tiny_model, tiny_inputs):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    rep = export_model(tiny_model, tiny_inputs, "onnx", tmp_path / "dyn.onnx", dynamic_hw=True, runs=1)
    assert rep.dynamic_hw and rep.opset >= 18 and rep.max_abs_diff < 1e-4
    sess = ort.InferenceSession(rep.path, providers=["CPUExecutionProvider"])
    a, b = torch.rand(1, 3, 40, 24), torch.rand(1, 3, 40, 24)
    out = sess.run(None, {"image1": a.numpy(), "image2": b.numpy()})[0]
    with torch.no_grad():
        ref = tiny_model(a, b).numpy()
    assert out.shape == ref.shape and abs(out - ref).max() < 1e-4
    assert any("checked at 31x47" in w for w in rep.warnings)      # the second size export_model checks


def test_onnx_dynamic_hw_that_specialises_says_so(tmp_path, tiny_inputs):
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    rep = export_model(LinspaceWarpNet().eval(), tiny_inputs, "onnx", tmp_path / "lin.onnx", dynamic_hw=True, runs=1)
    assert not rep.dynamic_hw and any("fixed the input sizes" in w for w in rep.warnings)
    assert rep.max_abs_diff < 1e-4


def test_executorch_parity(tmp_path, tiny_model, tiny_inputs, tiny_checks):
    pytest.importorskip("executorch")
    rep = export_model(tiny_model, tiny_inputs, "executorch", tmp_path / "tiny.pte", tiny_checks, mean_metric,
                       runs=2)
    assert Path(rep.path).is_file() and rep.runnable
    assert rep.max_abs_diff < 1e-3
    assert any("XnnpackBackend" in b for b in rep.backends)
    assert any("grid_sampler_2d" in w for w in rep.warnings)   # stays on the portable kernels
    assert report_paths(rep.path)[0].is_file()


def test_coreml_mlpackage(tmp_path, tiny_model, tiny_inputs):
    ct = pytest.importorskip("coremltools")
    rep = export_model(tiny_model, tiny_inputs, "coreml", tmp_path / "tiny", runs=1)
    pkg = tmp_path / "tiny.mlpackage"
    assert pkg.is_dir() and (pkg / "Manifest.json").is_file()
    assert rep.file_size_bytes > 0 and rep.path == str(pkg)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    desc = ct.models.MLModel(str(pkg), skip_model_load=True).get_spec().description   # readable, named I/O
    assert [i.name for i in desc.input] == ["image1", "image2"] and [o.name for o in desc.output] == ["flow"]
    assert list(desc.input[0].type.multiArrayType.shape) == [1, 3, 32, 48]
    import sys

    if sys.platform != "darwin":
        assert not rep.runnable and rep.max_abs_diff is None and "Apple" in rep.runtime_note


# a failed export leaves nothing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [17, 18])   # TorchScript exporter writes the file; dynamo's program saves it
def test_failed_onnx_export_leaves_no_file(tmp_path, monkeypatch, tiny_model, tiny_inputs, opset):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    error = "Exporting the operator 'aten::fancy_op' to ONNX is not supported"

    class HalfWritten:
        model = None

        def save(self, path, **kw):
            Path(path).write_bytes(b"half an onnx file")
            raise RuntimeError(error)

    def broken(model, args, f=None, *a, **k):
        if f is None:
            return HalfWritten()
        HalfWritten().save(f)

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ExportError, match="onnx export failed.*fancy_op"):
        export_model(tiny_model, tiny_inputs, "onnx", tmp_path / "bad.onnx", runs=1, opset=opset)
    _only_nothing_left(tmp_path)


def test_failed_executorch_export_leaves_no_file(tmp_path, monkeypatch, tiny_model, tiny_inputs):
    exir = pytest.importorskip("executorch.exir")

    def broken(*a, **k):
        raise RuntimeError("no kernel for aten::fancy_op")

    monkeypatch.setattr(exir, "to_edge_transform_and_lower", broken)
    with pytest.raises(ExportError, match="executorch export failed"):
        export_model(tiny_model, tiny_inputs, "executorch", tmp_path / "bad.pte", runs=1)
    _only_nothing_left(tmp_path)


def test_failed_coreml_save_leaves_no_folder(tmp_path, monkeypatch, tiny_model, tiny_inputs):
    ct = pytest.importorskip("coremltools")

    class HalfSaved:
        def save(self, path):
            Path(path).mkdir(parents=True)
            (Path(path) / "Manifest.json").write_text("{")
            raise OSError("disk full")

    monkeypatch.setattr(ct, "convert", lambda *a, **k: HalfSaved())
    with pytest.raises(ExportError, match="coreml export failed.*disk full"):
        export_model(tiny_model, tiny_inputs, "coreml", tmp_path / "bad.mlpackage", runs=1)
    _only_nothing_left(tmp_path)


def test_untraceable_model_fails_cleanly(tmp_path, tiny_inputs):
    pytest.importorskip("executorch")

    class DataDependent(torch.nn.Module):
        def forward(self, image1, image2):
            return image1[image1 > 0.5].sum() + image2.sum() if image1.sum() > 0 else image2  # data-dependent branch

    with pytest.raises(ExportError):
        export_model(DataDependent(), tiny_inputs, "executorch", tmp_path / "dd.pte", runs=1)
    _only_nothing_left(tmp_path)


# clear errors ---------------------------------------------------------------------------------------------------
def test_missing_package_is_an_input_error(tmp_path, monkeypatch, tiny_model, tiny_inputs):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(InputError, match=r"onnxruntime is not installed \(pip install 'vision3d\[export\]'\)"):
        export_model(tiny_model, tiny_inputs, "onnx", tmp_path / "x.onnx")
    _only_nothing_left(tmp_path)


def test_bad_format_and_suffix(tmp_path, tiny_model, tiny_inputs):
    with pytest.raises(InputError, match="unknown export format"):
        export_model(tiny_model, tiny_inputs, "tflite", tmp_path / "x")
    pytest.importorskip("executorch")
    with pytest.raises(InputError, match=r"end in \.pte"):
        export_model(tiny_model, tiny_inputs, "executorch", tmp_path / "x.onnx")
