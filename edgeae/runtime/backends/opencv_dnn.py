"""OpenCV DNN backend: the zero-extra-dependency reference (OpenCV is in every edge install).

OpenCV 5's graph engine reads our dynamic batch/height/width ONNX files as they are. It does not
expose ONNX metadata, so names and `edgeae.*` metadata come from a metadata-only ONNX Runtime read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.backends.base import Backend


def read_onnx_signature(path: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """(input names, output names, metadata) of an ONNX file."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()],
            dict(session.get_modelmeta().custom_metadata_map))


class OpenCVDnnBackend(Backend):
    name = "opencv-dnn"

    def __init__(self, net, path: Path, inputs: list[str], outputs: list[str], metadata: dict[str, str]):
        self.net, self.path = net, path
        self.input_names, self.output_names, self.metadata = inputs, outputs, metadata

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int = 0) -> "OpenCVDnnBackend":
        """threads: OpenCV's thread count (0 = leave OpenCV's setting alone)."""
        import cv2

        path = Path(path)
        if not path.is_file():
            raise EdgeAEError(f"model {path} not found; run 'edgeae export RUN' first")
        if threads:
            cv2.setNumThreads(threads)
        try:
            net = cv2.dnn.readNetFromONNX(str(path))
            inputs, outputs, metadata = read_onnx_signature(path)
        except Exception as e:  # cv2.error and ORT's own types
            detail = str(e).strip().splitlines()[-1][:160]
            raise EdgeAEError(f"OpenCV DNN cannot load {path} ({detail}); re-export it with 'edgeae export RUN'") from None
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        return cls(net, path, inputs, outputs, metadata)

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, array in feeds.items():
            self.net.setInput(np.ascontiguousarray(array), name)
        outputs = self.net.forward(self.output_names)
        return dict(zip(self.output_names, outputs))

    def close(self) -> None:
        self.net = None
