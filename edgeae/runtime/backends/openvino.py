"""OpenVINO backend: the runtime of Intel edge boxes, on the CPU by default, GPU/NPU/AUTO by name.

It reads the run's ONNX files as they are (dynamic batch/height/width kept). Precision is the file's: fp32
runs encoder.onnx, int8 the Q/DQ encoder.int8.onnx (OpenVINO executes Q/DQ as int8 kernels), fp16 the fp16
ONNX with the f16 inference hint. fp16 maps to encoder.fp16.onnx, not to the fp32 file plus the hint,
because `load` sees only a path: the file's `edgeae.precision` says which hint applies, and the fp16 label
never hides an fp32 run. A device without f16 arithmetic (x86 CPUs before AVX512-FP16) computes that file
in f32; `inference_precision` reports what the device actually chose.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.backends.base import Backend

# Inference precision per file precision. fp32 and int8 pin f32: GPUs default to f16 and AMX CPUs to bf16,
# which would make "fp32" a lower precision than ONNX Runtime's and move int8's float parts off its results.
HINTS = {"fp32": "f32", "fp16": "f16", "int8": "f32"}
VIRTUAL_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")


def missing_devices(device: str, available: list[str]) -> list[str]:
    """Devices named in `device` ("CPU", "GPU.1", "AUTO:GPU,CPU") that OpenVINO does not see here."""
    kind, _, listed = device.partition(":")
    names = listed.split(",") if kind in VIRTUAL_DEVICES and listed else [device]
    present = set(available) | {d.split(".")[0] for d in available} | set(VIRTUAL_DEVICES)
    return [n for n in names if n and n not in present]


def _detail(error: Exception) -> str:
    """OpenVINO's messages stack 'Exception from <source file>' lines over the cause: keep the cause."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return (lines or [type(error).__name__])[-1][:160]


def inference_precision(compiled) -> str:
    """The precision the device computes in ("f32", "f16", ...); "" where a device does not say (AUTO)."""
    try:
        return compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
    except RuntimeError:
        return ""


class OpenVINOBackend(Backend):
    name = "openvino"
    runs_concurrently = True  # one infer request per calling thread, on the compiled model's streams

    def __init__(self, compiled, path: Path, metadata: dict[str, str], precision_hint: str,
                 names: tuple[list[str], list[str]]):
        self.compiled, self.path, self.metadata = compiled, path, metadata
        self.precision_hint = precision_hint  # what was asked; inference_precision is what the device chose
        # Names from the model as read, not as compiled: the CPU plugin may move Sigmoid across DepthToSpace and
        # merge tensor names, after which get_any_name() can return an inner name ("convolution_3") for "image".
        self.input_names, self.output_names = names
        self.device = ",".join(compiled.get_property("EXECUTION_DEVICES"))
        self.inference_precision = inference_precision(compiled)
        # One request per calling thread, made on its first call and reused: a request is not thread-safe, and
        # streams > 1 serve several callers at once.
        self._local = threading.local()

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "CPU", threads: int = 0,
             precision_hint: str = "", streams: int = 1) -> "OpenVINOBackend":
        """device: an OpenVINO device name; threads: CPU inference threads (0 = OpenVINO's default);
        precision_hint: "f32"/"f16"/"bf16" (default: from the file's edgeae.precision, see HINTS);
        streams: calls that will run at once from that many threads (OpenVINO's streams, `threads` split
        between them); 1 is the latency setting, every thread on one call."""
        try:
            import openvino as ov
            from openvino.frontend import FrontEndManager
        except ImportError:
            raise EdgeAEError("OpenVINO is not installed; pip install edgeae[openvino]") from None
        path = Path(path)
        if not path.is_file():
            raise EdgeAEError(f"model {path} not found; run 'edgeae export RUN' (fp16/int8: 'edgeae build RUN') first")
        core = ov.Core()
        missing = missing_devices(device, core.available_devices)
        if missing:
            raise EdgeAEError(f"OpenVINO device {', '.join(missing)} not found; this machine has "
                              f"{', '.join(core.available_devices) or 'none'} (pass one of them as the device)")
        try:
            # The ONNX frontend directly: core.read_model would hand a broken file to every frontend in turn.
            frontend = FrontEndManager().load_by_framework("onnx")
            model = frontend.convert(frontend.load(str(path)))
        except Exception as e:  # OpenVINO raises RuntimeError and its own GeneralFailure types
            raise EdgeAEError(f"OpenVINO cannot read {path} ({_detail(e)}); re-export it with 'edgeae export RUN'") from None
        metadata = {k: str(v) for k, v in model.get_rt_info(["framework"]).value.items()} \
            if model.has_rt_info(["framework"]) else {}
        precision_hint = precision_hint or HINTS.get(metadata.get("edgeae.precision", "fp32"), "f32")
        cls.check_streams(streams)
        config = {"PERFORMANCE_HINT": "LATENCY" if streams == 1 else "THROUGHPUT",
                  "INFERENCE_PRECISION_HINT": precision_hint}
        if streams > 1:
            config["NUM_STREAMS"] = streams
        if threads and device.startswith("CPU"):
            config["INFERENCE_NUM_THREADS"] = threads
        names = ([i.get_any_name() for i in model.inputs], [o.get_any_name() for o in model.outputs])
        try:
            compiled = core.compile_model(model, device, config)
        except Exception as e:
            raise EdgeAEError(f"OpenVINO cannot compile {path.name} for {device} ({_detail(e)})") from None
        backend = cls(compiled, path, metadata, precision_hint, names)
        backend.streams = streams
        return backend

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # share_inputs: OpenVINO reads the caller's arrays in place; outputs are copied because the request
        # reuses its buffers on the next call while callers still hold the last result.
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        results = request.infer({k: np.ascontiguousarray(v) for k, v in feeds.items()}, share_inputs=True)
        return {name: results[output] for name, output in zip(self.output_names, self.compiled.outputs)}

    def close(self) -> None:
        self._local = threading.local()
        self.compiled = None
