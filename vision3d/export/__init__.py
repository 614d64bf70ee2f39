"""Mobile export: ONNX (onnxruntime), Core ML ``.mlpackage`` (coremltools) and ExecuTorch ``.pte`` (XNNPACK).

``export_model(model, example_inputs, fmt, out_path, check_inputs, metric_fn)`` exports any ``nn.Module``,
checks it against PyTorch on real inputs and writes an ``ExportReport`` (JSON + Markdown) beside the file.
The converters are optional (``pip install 'vision3d[export]'``) and imported only when used.
"""

from vision3d.export.api import export_formats, export_model, reference, trace_program
from vision3d.export.common import FORMATS, ExportError, RuntimeUnavailable
from vision3d.export.flow import FlowExportWrapper
from vision3d.export.report import ExportReport

__all__ = ["FORMATS", "ExportError", "ExportReport", "FlowExportWrapper", "RuntimeUnavailable", "export_formats",
           "export_model", "reference", "trace_program"]
