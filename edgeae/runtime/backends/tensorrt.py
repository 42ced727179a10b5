"""TensorRT backend (standard TensorRT or TensorRT-RTX): runs `<role>.<precision>.engine` files.

The sequence is the documented one (TensorRT samples/python/common_runtime.py, Polygraphy's TrtRunner):
deserialise → execution context → per call: set_input_shape, infer_shapes, size outputs from the
context, set_tensor_address → async H2D → execute_async_v3 → async D2H → synchronise. One backend owns
one execution context and one CUDA stream; device and pinned host buffers grow to the largest shape
seen and are reused, so a steady stream of frames allocates nothing. Memory and streams come from
cuda-python, not torch.

Before deserialising, the engine must match the sha256 in its sidecar (`<engine>.json`, written by
`edgeae.runtime.engine_build`), and the sidecar is checked against this library and device: a changed
engine, or one built elsewhere, is refused with the reason.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime import tensorrt_flavour
from edgeae.runtime.backends.base import Backend
from edgeae.runtime.engine_cache import sidecar_path
from edgeae.runtime.run_files import engine_path

REBUILD = ("rebuild it here: 'edgeae build RUN --precision {precision}', or for an installed bundle "
           "'python -m edgeae.runtime.engine_build MODEL_DIR'")


def read_sidecar(engine: Path) -> dict:
    sidecar = sidecar_path(engine)
    if not Path(engine).is_file() or not sidecar.is_file():
        raise EdgeAEError(f"engine {engine} or its sidecar {sidecar.name} not found; run 'edgeae build RUN' first")
    try:
        return json.loads(sidecar.read_text())
    except json.JSONDecodeError:
        raise EdgeAEError(f"{sidecar} is not valid JSON; rebuild the engine with 'edgeae build RUN'") from None


def refusal(sidecar: dict, trt: tensorrt_flavour.TensorRT, device: tensorrt_flavour.CudaDevice | None) -> str | None:
    """Why an engine described by `sidecar` must not be loaded with this library on this device, and the fix;
    None when it may be."""
    name, rebuild = sidecar.get("engine", "engine"), REBUILD.format(precision=sidecar.get("precision", "fp32"))
    if (sidecar.get("flavour"), sidecar.get("flavour_version")) != (trt.name, trt.version):
        return (f"{name} was built with {sidecar.get('flavour')} {sidecar.get('flavour_version')}, this machine has "
                f"{trt.name} {trt.version}; {rebuild}")
    if device is None:
        return f"no CUDA device here to run {name} on (cuda-python finds none); use backend 'onnxruntime'"
    if device.compute_capability not in sidecar.get("compute_capabilities", []):
        return (f"{name} was built for {sidecar.get('device')}, compute capability "
                f"{'/'.join(sidecar.get('compute_capabilities', []))}; this device is {device.name}, "
                f"compute capability {device.compute_capability}; {rebuild}")
    return None


def check_in_profile(name: str, shape: tuple[int, ...], profile: dict) -> None:
    """Refuse an input shape outside the engine's optimisation profile, naming the range."""
    lo, hi = profile["min"], profile["max"]
    if len(shape) != len(lo) or any(not a <= s <= b for s, a, b in zip(shape, lo, hi)):
        fmt = lambda dims: "x".join(map(str, dims))  # noqa: E731
        raise EdgeAEError(f"input {name} of shape {fmt(shape)} is outside the engine's profile {fmt(lo)} … {fmt(hi)}; "
                          "rebuild with wider --min/--max")


def _cudart():
    """cuda-python's runtime module, imported when a backend is loaded (tests substitute a fake)."""
    from cuda.bindings import runtime

    return runtime


def _cuda(result):
    """cuda-python returns (err, *values): raise on error, return the values."""
    err, *values = result
    if err != _cudart().cudaError_t.cudaSuccess:
        raise EdgeAEError(f"CUDA error {err.name}; check the driver and device with 'edgeae doctor'")
    return values[0] if len(values) == 1 else values


class _Buffer:
    """A device buffer and a pinned host buffer of the same capacity, grown on demand."""

    def __init__(self):
        self.capacity, self.device, self.host = 0, 0, 0

    def ensure(self, nbytes: int) -> bool:
        """Make room for `nbytes`; True when the addresses changed."""
        if nbytes <= self.capacity:
            return False
        cudart = _cudart()
        self.free()
        self.device = _cuda(cudart.cudaMalloc(nbytes))
        self.host = _cuda(cudart.cudaMallocHost(nbytes))
        self.capacity = nbytes
        return True

    def host_array(self, shape: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(shape))
        return np.ctypeslib.as_array(ctypes.cast(self.host, ctypes.POINTER(ctypes.c_float)), (count,)).reshape(shape)

    def free(self) -> None:
        cudart = _cudart()
        if self.capacity:
            _cuda(cudart.cudaFree(self.device))
            _cuda(cudart.cudaFreeHost(self.host))
        self.capacity, self.device, self.host = 0, 0, 0


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, trt, runtime, engine, sidecar: dict, path: Path):
        cudart = _cudart()
        self.trt, self.runtime, self.engine, self.sidecar, self.path = trt, runtime, engine, sidecar, path
        self.context = trt.execution_context(engine)
        if self.context is None:
            raise EdgeAEError(f"TensorRT could not create an execution context for {path} ({trt.last_error()})")
        io = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = lambda n: engine.get_tensor_mode(n) == trt.trt.TensorIOMode.INPUT  # noqa: E731
        self.input_names = [n for n in io if is_input(n)]
        self.output_names = [n for n in io if not is_input(n)]
        for n in io:  # fp16/int8 engines keep float32 I/O (keep_io_types); anything else is a foreign engine
            if engine.get_tensor_dtype(n) != trt.trt.DataType.FLOAT:
                raise EdgeAEError(f"{path}: tensor {n} is {engine.get_tensor_dtype(n)}, edgeae engines have float32 I/O")
        self.metadata = dict(sidecar.get("metadata", {}))
        self.stream = _cuda(cudart.cudaStreamCreate())
        self.buffers = {n: _Buffer() for n in io}
        self.shapes: dict[str, tuple[int, ...]] = {}

    @classmethod
    def model_file(cls, model_dir: str | os.PathLike, role: str, precision: str) -> Path:
        return engine_path(model_dir, role, precision)

    @classmethod
    def load(cls, path: str | os.PathLike, **options) -> "TensorRTBackend":
        path = Path(path)
        sidecar = read_sidecar(path)
        rebuild = REBUILD.format(precision=sidecar.get("precision", "fp32"))
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sidecar.get("engine_sha256"):
            raise EdgeAEError(f"refusing {path}: it does not match the engine_sha256 in its sidecar "
                              f"(changed or partly written since it was built); {rebuild}")
        trt = tensorrt_flavour.load(sidecar.get("flavour", "auto"))
        reason = refusal(sidecar, trt, tensorrt_flavour.cuda_device())
        if reason:
            raise EdgeAEError(f"refusing {path}: {reason}")
        runtime = trt.trt.Runtime(trt.logger)
        invalid = trt.engine_invalid_reason(runtime, data)
        if invalid:
            raise EdgeAEError(f"refusing {path}: {trt.name} says {invalid}; {rebuild}")
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise EdgeAEError(f"TensorRT could not deserialise {path} ({trt.last_error()}); {rebuild}")
        return cls(trt, runtime, engine, sidecar, path)

    def _set_shapes(self, feeds: dict[str, np.ndarray]) -> None:
        """Set input shapes, size outputs and (re)bind addresses; nothing to do when no shape changed."""
        changed = {n: a.shape for n, a in feeds.items() if self.shapes.get(n) != a.shape}
        if not changed:
            return
        for name, shape in changed.items():
            check_in_profile(name, shape, self.sidecar["profile"])
            if not self.context.set_input_shape(name, shape):
                raise EdgeAEError(f"TensorRT refused shape {shape} for {name} ({self.trt.last_error()})")
            self.shapes[name] = shape
        missing = self.context.infer_shapes()
        if missing:
            raise EdgeAEError(f"TensorRT could not infer shapes for {missing}; this is a bug")
        for name in self.output_names:
            self.shapes[name] = tuple(self.context.get_tensor_shape(name))
        for name, shape in self.shapes.items():
            buffer = self.buffers[name]
            if buffer.ensure(int(np.prod(shape)) * 4) and not self.context.set_tensor_address(name, buffer.device):
                raise EdgeAEError(f"TensorRT refused the address of {name}; this is a bug")

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = _cudart()
        self._set_shapes(feeds)
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, array in feeds.items():
            buffer = self.buffers[name]
            np.copyto(buffer.host_array(array.shape), array)  # into pinned memory: the async copy needs it
            _cuda(cudart.cudaMemcpyAsync(buffer.device, buffer.host, array.nbytes, h2d, self.stream))
        if not self.context.execute_async_v3(int(self.stream)):
            raise EdgeAEError(f"TensorRT execution failed for {self.path} ({self.trt.last_error()})")
        outputs = {}
        for name in self.output_names:
            buffer, shape = self.buffers[name], self.shapes[name]
            _cuda(cudart.cudaMemcpyAsync(buffer.host, buffer.device, int(np.prod(shape)) * 4, d2h, self.stream))
        _cuda(cudart.cudaStreamSynchronize(self.stream))
        for name in self.output_names:
            outputs[name] = self.buffers[name].host_array(self.shapes[name]).copy()  # the pinned buffer is reused
        return outputs

    def close(self) -> None:
        if getattr(self, "stream", None) is None:
            return
        cudart = _cudart()
        _cuda(cudart.cudaStreamSynchronize(self.stream))
        for buffer in self.buffers.values():
            buffer.free()
        _cuda(cudart.cudaStreamDestroy(self.stream))
        self.stream = None
        self.context = self.engine = self.runtime = None
