"""A small CompactFlowNet through all three exporters from one ``torch.export`` program, checked on real frames.

The default CompactFlowNet has ~2,600 graph nodes (its cost volume is 81 shifted products per level), which
takes minutes to lower to ExecuTorch on a 2-core machine; these tests use the same architecture with a
smaller cost volume, fewer levels and narrower layers so that the whole file runs in well under a minute.
``v3d export compactflownet --random-init`` exercises the default configuration.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from vision3d.export import FlowExportWrapper, export_model, trace_program
from vision3d.export.api import reference
from vision3d.export.flow import flow_parity_case, resize_flow

cfn = pytest.importorskip("vision3d.flow.models.compactflownet")

H, W = 64, 96
SMALL = {"max_displacement": 1, "num_levels": 3, "encoder": [[3, 16, 16, False, "RE", 1], [3, 48, 24, False, "RE", 2],
                                                             [5, 72, 40, True, "RE", 2]],
         "estimator_channels": [32, 16], "context_channels": [16], "context_dilations": [2]}


@pytest.fixture(scope="module")
def flow_model():
    torch.manual_seed(0)
    return FlowExportWrapper(cfn.CompactFlowNet.from_config(SMALL).eval())


@pytest.fixture(scope="module")
def case():
    return flow_parity_case(H, W)


@pytest.fixture(scope="module")
def program(flow_model, case):
    return trace_program(flow_model, case.inputs)


@pytest.fixture(scope="module")
def ref(flow_model, case):
    return reference(flow_model, case.inputs, [case.inputs], case.metric, runs=1)


def test_wrapper_shapes_and_default_config(flow_model, case):
    out = flow_model(*case.inputs)
    assert out.shape == (1, 2, H, W)
    assert flow_model.stride == 2 ** SMALL["num_levels"] and flow_model.name == "compactflownet"
    default = FlowExportWrapper(cfn.CompactFlowNet.from_config({}).eval())
    assert default.stride == 32


def test_parity_case_and_flow_resize(case):
    assert case.image1.shape == (1, 3, H, W) and 0.0 <= float(case.image1.min()) <= float(case.image1.max()) <= 1.0
    gt_h, gt_w = case.gt.shape[1:]
    flow = np.stack([np.full((H, W), 2.0), np.full((H, W), -1.0)]).astype(np.float32)
    big = resize_flow(flow, (gt_h, gt_w))
    assert big.shape == (2, gt_h, gt_w)
    assert np.allclose(big[0], 2.0 * gt_w / W) and np.allclose(big[1], -1.0 * gt_h / H)
    perfect = resize_flow(case.gt, (H, W))
    assert case.metric([(torch.from_numpy(perfect)[None],)])["epe"] < 1.0   # round trip through the export size


def test_onnx_parity(tmp_path, flow_model, case, program, ref):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    rep = export_model(flow_model, case.inputs, "onnx", tmp_path / "cfn.onnx", [case.inputs], case.metric, runs=1,
                       program=program, ref=ref)
    assert rep.opset == 18 and "dynamo" in rep.exporter
    assert rep.max_abs_diff < 1e-4
    assert abs(rep.metric_after["epe"] - rep.metric_before["epe"]) < 1e-3


def test_onnx_opset17_torchscript_exporter(tmp_path, flow_model, case, ref):
    pytest.importorskip("onnxruntime")
    rep = export_model(flow_model, case.inputs, "onnx", tmp_path / "cfn17.onnx", [case.inputs], runs=1, ref=ref,
                       opset=17)
    assert rep.opset == 17 and "torchscript" in rep.exporter
    assert rep.max_abs_diff < 1e-4


def test_executorch_parity(tmp_path, flow_model, case, program, ref):
    pytest.importorskip("executorch")
    rep = export_model(flow_model, case.inputs, "executorch", tmp_path / "cfn.pte", [case.inputs], case.metric,
                       runs=1, program=program, ref=ref)
    assert rep.max_abs_diff < 1e-3
    assert abs(rep.metric_after["epe"] - rep.metric_before["epe"]) < 1e-2


def test_coreml_conversion(tmp_path, flow_model, case, program, ref):
    pytest.importorskip("coremltools")
    rep = export_model(flow_model, case.inputs, "coreml", tmp_path / "cfn.mlpackage", [case.inputs], case.metric,
                       runs=1, program=program, ref=ref)
    assert (tmp_path / "cfn.mlpackage" / "Manifest.json").is_file()
    assert rep.metric_before is not None
    if sys.platform != "darwin":
        assert rep.metric_after is None and not rep.runnable
