"""The two TensorRT flavours behind one small adapter.

Standard TensorRT (`import tensorrt`, ≥ 10: JetPack, datacenter GPUs) and TensorRT-RTX
(`import tensorrt_rtx_bindings` from `tensorrt-rtx-cu13-bindings`, or `tensorrt_rtx`) share the builder, parser and
runtime API. What differs lives here, in `Flavour`'s fields and `TensorRT`'s few methods:
- TensorRT-RTX builds ahead of time on a machine without a GPU, for compute capabilities
  8.0/8.6/8.9/12.x, and compiles kernels just in time on the device; standard TensorRT builds for
  the GPU it runs on and needs one.
- TensorRT-RTX execution contexts are created from a runtime config; its timing cache is a no-op
  (deprecated since 1.2), so only standard TensorRT keeps one.
- TensorRT-RTX can check an engine's header against this device (`Runtime.get_engine_validity`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache

from edgeae.errors import EdgeAEError
from edgeae.runtime.run_files import PRECISIONS

NO_GPU = "AOT, no GPU"


@dataclass(frozen=True)
class Flavour:
    name: str
    modules: tuple[str, ...]  # import names, first found wins
    pip: str  # what to install
    min_version: int  # major
    precisions: tuple[str, ...]  # all explicit: fp16 ONNX / int8 Q/DQ ONNX into strongly typed networks
    builds_without_gpu: bool
    timing_cache: bool
    runtime_config: bool  # execution contexts are created from engine.create_runtime_config()
    aot_compute_capabilities: tuple[str, ...]  # where an engine built without a GPU runs; () = only the build GPU


FLAVOURS = {
    "tensorrt": Flavour("tensorrt", ("tensorrt",), "tensorrt (NVIDIA's index or JetPack)", 10, PRECISIONS,
                        builds_without_gpu=False, timing_cache=True, runtime_config=False,
                        aot_compute_capabilities=()),
    # The PyPI wheels install `tensorrt_rtx_bindings`; NVIDIA's SDK samples import `tensorrt_rtx`.
    "tensorrt-rtx": Flavour("tensorrt-rtx", ("tensorrt_rtx_bindings", "tensorrt_rtx"), "tensorrt-rtx-cu13-libs tensorrt-rtx-cu13-bindings",
                            1, PRECISIONS, builds_without_gpu=True, timing_cache=False, runtime_config=True,
                            aot_compute_capabilities=("8.0", "8.6", "8.9", "12.0", "12.1")),
}


@dataclass(frozen=True)
class CudaDevice:
    name: str
    compute_capability: str  # "9.0"


@lru_cache(maxsize=1)
def cuda_device() -> CudaDevice | None:
    """Device 0 as the CUDA runtime sees it, or None (no cuda-python, no driver, no GPU)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        return None
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or not count:
        return None
    err, props = cudart.cudaGetDeviceProperties(0)
    if err != cudart.cudaError_t.cudaSuccess:
        return None
    return CudaDevice(props.name.split(b"\0")[0].decode(), f"{props.major}.{props.minor}")


def _import(flavour: Flavour):
    """The flavour's module; raises the last ImportError (or a broken install's error) when none imports."""
    error: Exception = ImportError(flavour.modules[0])
    for module in flavour.modules:
        try:
            return importlib.import_module(module)
        except Exception as e:  # a broken install (missing libs) is as good as none
            error = e
    raise error


def available() -> dict[str, str]:
    """flavour → version for each TensorRT flavour that imports here."""
    found = {}
    for name, flavour in FLAVOURS.items():
        try:
            found[name] = _import(flavour).__version__
        except Exception:
            continue
    return found


def describe() -> str:
    found = available()
    return ", ".join(f"{k} {v}" for k, v in found.items()) if found else "none (ONNX Runtime backends only)"


class TensorRT:
    """One imported flavour: its module as `.trt`, plus the calls that differ between flavours."""

    def __init__(self, flavour: Flavour, module):
        self.flavour, self.trt = flavour, module
        self.name, self.version = flavour.name, module.__version__
        self.logger = _error_logger(module)

    def last_error(self) -> str:
        """The last error TensorRT logged, on one line (for EdgeAEError messages)."""
        return " ".join(self.logger.errors[-1].split())[:300] if self.logger.errors else "no error logged"

    def target(self, device: CudaDevice | None) -> tuple[str, tuple[str, ...]]:
        """(device description, compute capabilities an engine built here runs on)."""
        if device is None:
            if not self.flavour.builds_without_gpu:
                raise EdgeAEError(f"{self.name} builds for the GPU it runs on and no CUDA device was found; "
                                  "use --flavour tensorrt-rtx, which builds without a GPU")
            return NO_GPU, self.flavour.aot_compute_capabilities
        return f"{device.name} (compute capability {device.compute_capability})", \
            self.flavour.aot_compute_capabilities or (device.compute_capability,)

    def attach_timing_cache(self, config, path) -> bool:
        """Give the builder the timing cache at `path` (created when missing); False where the flavour has none."""
        if not self.flavour.timing_cache:
            return False
        from pathlib import Path

        data = Path(path).read_bytes() if Path(path).is_file() else b""
        cache = config.create_timing_cache(data)
        if not config.set_timing_cache(cache, False):  # a cache from another device: start a fresh one
            config.set_timing_cache(config.create_timing_cache(b""), False)
        return True

    def timing_cache_bytes(self, config) -> bytes:
        return bytes(memoryview(config.get_timing_cache().serialize()))

    def check_precision(self, precision: str) -> None:
        if precision not in self.flavour.precisions:
            raise EdgeAEError(f"{self.name} {self.version} does not build {precision!r} engines; "
                              f"it accepts {', '.join(self.flavour.precisions)}")

    def strongly_typed_network(self, builder):
        # Strongly typed: precision comes from the ONNX's own types (fp16 casts, int8 Q/DQ); TensorRT
        # deprecates the precision builder flags.
        return builder.create_network(1 << int(self.trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))

    def execution_context(self, engine):
        if self.flavour.runtime_config:
            return engine.create_execution_context(engine.create_runtime_config())
        return engine.create_execution_context()

    def engine_invalid_reason(self, runtime, engine_bytes: bytes) -> str | None:
        """Why this device cannot run the engine, from its header (TensorRT-RTX only), else None."""
        check = getattr(runtime, "get_engine_validity", None)
        if check is None:
            return None
        validity, diagnostics = check(engine_bytes)
        if validity != self.trt.EngineValidity.INVALID:
            return None
        reasons = [d.name for d in self.trt.EngineInvalidityDiagnostics.__members__.values() if int(diagnostics) & int(d)]
        return ", ".join(reasons) or f"invalid engine ({self.last_error()})"


def _error_logger(module):
    """A TensorRT logger that keeps errors for our messages instead of printing every line."""

    class ErrorLog(module.ILogger):
        def __init__(self):
            module.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if severity in (module.ILogger.Severity.ERROR, module.ILogger.Severity.INTERNAL_ERROR) \
                    and "Thread context has not been set" not in msg:  # TensorRT-RTX noise without a GPU
                self.errors.append(msg)

    return ErrorLog()


def load(name: str = "auto") -> TensorRT:
    """Import the flavour asked for; "auto" takes standard TensorRT where a GPU is, TensorRT-RTX otherwise."""
    if name == "auto":
        order = ("tensorrt", "tensorrt-rtx") if cuda_device() else ("tensorrt-rtx", "tensorrt")
        found = available()
        name = next((n for n in order if n in found), "")
        if not name:
            raise EdgeAEError("no TensorRT installed; pip install tensorrt-rtx-cu13-libs tensorrt-rtx-cu13-bindings "
                              "(or standard TensorRT ≥ 10), see 'edgeae doctor'")
    if name not in FLAVOURS:
        raise EdgeAEError(f"unknown TensorRT flavour {name!r}; choose auto, {', '.join(FLAVOURS)}")
    flavour = FLAVOURS[name]
    try:
        module = _import(flavour)
    except Exception as e:
        raise EdgeAEError(f"{name} is not installed here ({type(e).__name__}); pip install {flavour.pip}") from None
    major = int(str(module.__version__).split(".")[0])
    if major < flavour.min_version:
        raise EdgeAEError(f"{name} {module.__version__} is too old; edgeae needs ≥ {flavour.min_version}")
    return TensorRT(flavour, module)
