import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime import tensorrt_flavour
from edgeae.runtime.tensorrt_flavour import FLAVOURS, Flavour


def test_a_flavour_that_is_not_installed_names_the_package_to_install(monkeypatch):
    missing = Flavour("tensorrt", ("edgeae_no_such_module",), "tensorrt (NVIDIA's index or JetPack)", 10,
                      ("fp32",), False, True, False, ())
    monkeypatch.setitem(FLAVOURS, "tensorrt", missing)
    with pytest.raises(EdgeAEError, match="not installed here.*pip install tensorrt"):
        tensorrt_flavour.load("tensorrt")


def test_unknown_flavour_is_refused():
    with pytest.raises(EdgeAEError, match="unknown TensorRT flavour"):
        tensorrt_flavour.load("tensorrt-lite")


def test_no_tensorrt_at_all_says_how_to_get_one(monkeypatch):
    monkeypatch.setattr(tensorrt_flavour, "available", lambda: {})
    with pytest.raises(EdgeAEError, match="no TensorRT installed; pip install tensorrt-rtx"):
        tensorrt_flavour.load("auto")


@pytest.mark.parametrize("name", sorted(FLAVOURS))
def test_each_flavour_states_its_precisions_and_refuses_others(name, tensorrt_rtx):
    trt = tensorrt_flavour.TensorRT(FLAVOURS[name], tensorrt_rtx)  # the API both flavours share
    assert FLAVOURS[name].precisions == ("fp32", "fp16", "int8")
    trt.check_precision("int8")
    with pytest.raises(EdgeAEError, match="does not build 'bf16' engines; it accepts fp32, fp16, int8"):
        trt.check_precision("bf16")


def test_auto_takes_tensorrt_rtx_where_no_gpu_is(monkeypatch, tensorrt_rtx):
    monkeypatch.setattr(tensorrt_flavour, "cuda_device", lambda: None)
    monkeypatch.setattr(tensorrt_flavour, "available", lambda: {"tensorrt": "10.9", "tensorrt-rtx": "1.7"})
    assert tensorrt_flavour.load("auto").name == "tensorrt-rtx"


def test_tensorrt_rtx_builds_ahead_of_time_for_its_compute_capabilities(tensorrt_rtx):
    trt = tensorrt_flavour.load("tensorrt-rtx")
    device, capabilities = trt.target(None)
    assert device == "AOT, no GPU" and capabilities == ("8.0", "8.6", "8.9", "12.0", "12.1")
    gpu = tensorrt_flavour.CudaDevice("NVIDIA RTX 4090", "8.9")
    assert trt.target(gpu)[0] == "NVIDIA RTX 4090 (compute capability 8.9)"


def test_timing_cache_is_written_and_read_back_where_the_flavour_keeps_one(tensorrt_rtx, tmp_path):
    trt = tensorrt_flavour.TensorRT(FLAVOURS["tensorrt"], tensorrt_rtx)  # the API both flavours share
    cache = tmp_path / "tensorrt.timing.cache"
    with pytest.warns(DeprecationWarning):  # TensorRT-RTX keeps the calls but ignores them
        config = tensorrt_rtx.Builder(trt.logger).create_builder_config()
        assert trt.attach_timing_cache(config, cache)
        cache.write_bytes(trt.timing_cache_bytes(config))
        assert cache.stat().st_size > 0 and trt.attach_timing_cache(config, cache)
    assert not tensorrt_flavour.load("tensorrt-rtx").attach_timing_cache(config, cache)


@pytest.mark.skipif(tensorrt_flavour.cuda_device() is not None, reason="a CUDA device is present")
def test_engine_header_check_says_invalid_where_no_gpu_can_run_it(built_engines):
    trt = tensorrt_flavour.load("tensorrt-rtx")
    data = (built_engines / "encoder.fp32.engine").read_bytes()
    assert trt.engine_invalid_reason(trt.trt.Runtime(trt.logger), data)
