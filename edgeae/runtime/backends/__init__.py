"""Inference backends: one class each, all with `load(path)`, `infer({name: array})`, `close()`."""

from __future__ import annotations

from edgeae.errors import EdgeAEError
from edgeae.runtime.backends.base import Backend

# name → "module:Class"; imported on demand so a missing optional package only matters when asked for.
BACKENDS = {
    "onnxruntime": "edgeae.runtime.backends.onnxruntime:OnnxRuntimeBackend",
    "opencv-dnn": "edgeae.runtime.backends.opencv_dnn:OpenCVDnnBackend",
    "tensorrt": "edgeae.runtime.backends.tensorrt:TensorRTBackend",
    "openvino": "edgeae.runtime.backends.openvino:OpenVINOBackend",
    "triton": "edgeae.runtime.backends.triton:TritonBackend",  # remote: a Triton server ('edgeae serve')
}


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise EdgeAEError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    import importlib

    return getattr(importlib.import_module(module), cls)


__all__ = ["Backend", "BACKENDS", "backend_class"]
