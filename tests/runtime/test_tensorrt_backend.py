"""The TensorRT backend: what can be checked without a GPU here, and real execution where one exists."""

import json
import shutil

import numpy as np
import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime import Autoencoder, tensorrt_flavour
from edgeae.runtime.backends import backend_class
from edgeae.runtime.backends.tensorrt import TensorRTBackend, check_in_profile, refusal

NO_GPU_HERE = tensorrt_flavour.cuda_device() is None


def _can_execute() -> str:
    """Empty when an installed TensorRT can run engines on this machine's GPU, else why not."""
    device, found = tensorrt_flavour.cuda_device(), tensorrt_flavour.available()
    if device is None:
        return "no CUDA device (engines are built here, not executed)"
    if "tensorrt" in found:
        return ""
    if "tensorrt-rtx" in found and device.compute_capability in tensorrt_flavour.FLAVOURS["tensorrt-rtx"].aot_compute_capabilities:
        return ""
    return (f"no installed TensorRT runs on compute capability {device.compute_capability} "
            "(TensorRT-RTX runs on 8.0/8.6/8.9/12.x; standard TensorRT is not installed)")


def test_tensorrt_is_a_registered_backend_choosing_engine_files(tmp_path):
    cls = backend_class("tensorrt")
    assert cls is TensorRTBackend
    assert cls.model_file(tmp_path, "decoder", "fp16") == tmp_path / "decoder.fp16.engine"
    assert backend_class("onnxruntime").model_file(tmp_path, "encoder", "int8") == tmp_path / "encoder.int8.onnx"


@pytest.mark.skipif(not NO_GPU_HERE, reason="a CUDA device is present: loading is tested by the execution tests")
def test_loading_without_a_cuda_device_is_a_clear_refusal(built_engines):
    with pytest.raises(EdgeAEError, match="no CUDA device here to run encoder.fp32.engine"):
        TensorRTBackend.load(built_engines / "encoder.fp32.engine")


def test_engine_from_another_library_version_is_refused(built_engines, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(built_engines, run)
    sidecar_path = run / "encoder.fp16.engine.json"
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["flavour_version"] = "0.9.0"
    sidecar_path.write_text(json.dumps(sidecar))
    with pytest.raises(EdgeAEError, match="built with tensorrt-rtx 0.9.0.*edgeae build RUN --precision fp16"):
        TensorRTBackend.load(run / "encoder.fp16.engine")


def test_engine_for_other_compute_capabilities_is_refused(built_engines):
    trt = tensorrt_flavour.load("tensorrt-rtx")
    sidecar = json.loads((built_engines / "decoder.fp32.engine.json").read_text())
    h100 = tensorrt_flavour.CudaDevice("NVIDIA H100 80GB HBM3", "9.0")
    reason = refusal(sidecar, trt, h100)
    assert "compute capability 8.0/8.6/8.9/12.0/12.1" in reason and "compute capability 9.0" in reason
    assert refusal(sidecar, trt, tensorrt_flavour.CudaDevice("NVIDIA RTX 4090", "8.9")) is None


def test_engine_that_does_not_match_its_sidecar_sha256_is_refused(built_engines, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(built_engines, run)
    engine = run / "encoder.fp32.engine"
    data = bytearray(engine.read_bytes())
    data[len(data) // 2] ^= 1
    engine.write_bytes(bytes(data))
    with pytest.raises(EdgeAEError, match="does not match the engine_sha256 in its sidecar.*rebuild it"):
        TensorRTBackend.load(engine)


def test_missing_sidecar_is_a_clear_error(built_engines, tmp_path):
    shutil.copy(built_engines / "encoder.fp32.engine", tmp_path)
    with pytest.raises(EdgeAEError, match="sidecar encoder.fp32.engine.json not found"):
        TensorRTBackend.load(tmp_path / "encoder.fp32.engine")


def test_input_outside_the_profile_is_refused_naming_the_range():
    profile = {"input": "image", "min": [1, 3, 32, 32], "opt": [1, 3, 64, 64], "max": [4, 3, 256, 256]}
    check_in_profile("image", (4, 3, 256, 256), profile)
    with pytest.raises(EdgeAEError, match="1x3x576x768 is outside the engine's profile 1x3x32x32 … 4x3x256x256"):
        check_in_profile("image", (1, 3, 576, 768), profile)


@pytest.mark.skipif(not NO_GPU_HERE, reason="a CUDA device is present, so auto may rightly pick TensorRT")
def test_auto_backend_falls_back_to_onnxruntime_without_a_gpu(built_engines):
    with Autoencoder.load(built_engines, backend="auto", precision="fp16") as ae:
        assert ae.encoder.name == "onnxruntime" and ae.encoder.metadata["edgeae.precision"] == "fp16"


@pytest.mark.gpu
@pytest.mark.tensorrt_exec
@pytest.mark.skipif(bool(_can_execute()), reason=_can_execute() or "runs")
@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-3), ("fp16", 2e-2)])
def test_engines_match_onnxruntime_on_the_gpu(trained_run, tmp_path, precision, tolerance):
    from edgeae.export.tensorrt_build import BuildConfig, build_run

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    build_run(run, BuildConfig(precision=precision, opt_shape=(1, 64, 96), max_shape=(4, 256, 256)), progress=False)
    frames = [np.random.default_rng(i).integers(0, 256, (72, 100, 3), dtype=np.uint8) for i in range(3)]
    with Autoencoder.load(run) as ref, Autoencoder.load(run, "tensorrt", precision) as trt:
        for n in (1, 3, 2, 3):  # shape changes re-bind buffers; repeats reuse them
            batch = np.random.default_rng(n).random((n, 3, 64, 96), dtype=np.float32)
            got, want = trt.encode_batch(batch), ref.encode_batch(batch)
            assert np.abs(got - want).max() <= tolerance * max(1.0, np.abs(want).max())
            assert np.abs(trt.decode_batch(want) - ref.decode_batch(want)).max() <= tolerance
        assert trt.reconstruct(frames)[0].shape == frames[0].shape
        with pytest.raises(EdgeAEError, match="outside the engine's profile"):
            trt.encode_batch(np.random.default_rng(0).random((8, 3, 32, 32), dtype=np.float32))


class FakeCudart:
    """Host memory standing in for device memory: enough of cuda-python's runtime to run `_infer`."""

    class cudaError_t:  # noqa: N801 (cuda-python's names)
        cudaSuccess = 0

    class cudaMemcpyKind:  # noqa: N801
        cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost = 1, 2

    def __init__(self):
        self.live, self.mallocs = {}, 0

    def _alloc(self, nbytes):
        import ctypes

        buf = ctypes.create_string_buffer(nbytes)
        self.live[ctypes.addressof(buf)] = buf
        self.mallocs += 1
        return 0, ctypes.addressof(buf)

    cudaMalloc = cudaMallocHost = _alloc

    def _free(self, ptr):
        del self.live[ptr]
        return (0,)

    cudaFree = cudaFreeHost = _free

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        import ctypes

        ctypes.memmove(dst, src, count)
        return (0,)

    def cudaStreamCreate(self):
        return 0, 7

    def cudaStreamSynchronize(self, stream):
        return (0,)

    def cudaStreamDestroy(self, stream):
        return (0,)


class FakeContext:
    """An 'engine' whose output is its input doubled, read from and written to the bound addresses."""

    def __init__(self):
        self.shapes, self.addresses, self.rebinds = {}, {}, 0

    def set_input_shape(self, name, shape):
        self.shapes[name] = self.shapes["y"] = tuple(shape)
        return True

    def infer_shapes(self):
        return []

    def get_tensor_shape(self, name):
        return self.shapes[name]

    def set_tensor_address(self, name, address):
        self.addresses[name] = address
        self.rebinds += 1
        return True

    def execute_async_v3(self, stream):
        import ctypes

        count = int(np.prod(self.shapes["x"]))
        src = np.ctypeslib.as_array(ctypes.cast(self.addresses["x"], ctypes.POINTER(ctypes.c_float)), (count,))
        dst = np.ctypeslib.as_array(ctypes.cast(self.addresses["y"], ctypes.POINTER(ctypes.c_float)), (count,))
        dst[:] = 2 * src
        return True


def test_infer_copies_through_reused_buffers_rebinding_only_when_they_grow(monkeypatch, tensorrt_rtx):
    import edgeae.runtime.backends.tensorrt as mod

    fake, context = FakeCudart(), FakeContext()
    monkeypatch.setattr(mod, "_cudart", lambda: fake)
    trt = tensorrt_flavour.load("tensorrt-rtx")
    monkeypatch.setattr(trt, "execution_context", lambda engine: context)
    engine = type("Engine", (), {"num_io_tensors": 2, "get_tensor_name": lambda self, i: "xy"[i],
                                 "get_tensor_mode": lambda self, n: tensorrt_rtx.TensorIOMode.INPUT if n == "x" else
                                 tensorrt_rtx.TensorIOMode.OUTPUT,
                                 "get_tensor_dtype": lambda self, n: tensorrt_rtx.DataType.FLOAT})()
    profile = {"input": "x", "min": [1, 3, 32, 32], "opt": [1, 3, 32, 32], "max": [8, 3, 64, 64]}
    backend = TensorRTBackend(trt, None, engine, {"profile": profile}, "fake.engine")
    rng = np.random.default_rng(0)
    for n, side in ((2, 32), (2, 32), (1, 32), (4, 64), (2, 32)):
        x = rng.random((n, 3, side, side), dtype=np.float32)
        assert np.array_equal(backend.infer({"x": x})["y"], 2 * x)
    assert context.rebinds == 4 and fake.mallocs == 8  # allocated at 2x32x32, grown once to 4x64x64
    backend.close()
    backend.close()
    assert not fake.live
