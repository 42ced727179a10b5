"""Real TensorRT-RTX engine builds on the CPU from the project's own exported ONNX."""

import json
import shutil

import onnx
import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime.engine_cache import sha256_file
from edgeae.export.tensorrt_build import BuildConfig, build_run, parse_shape
from edgeae.runtime import tensorrt_flavour


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("role", ["encoder", "decoder"])
def test_engine_is_built_with_a_sidecar_describing_it(built_engines, role, precision):
    engine = built_engines / f"{role}.{precision}.engine"
    sidecar = json.loads((built_engines / f"{role}.{precision}.engine.json").read_text())
    source = built_engines / (f"{role}.onnx" if precision == "fp32" else f"{role}.{precision}.onnx")
    assert engine.stat().st_size > 10_000
    assert sidecar["flavour"] == "tensorrt-rtx" and sidecar["flavour_version"] == tensorrt_flavour.available()["tensorrt-rtx"]
    assert sidecar["precision"] == precision and sidecar["onnx_sha256"] == sha256_file(source)
    assert sidecar["engine_sha256"] == sha256_file(engine) and sidecar["build_seconds"] > 0
    if tensorrt_flavour.cuda_device() is None:
        assert sidecar["device"] == "AOT, no GPU" and "8.6" in sidecar["compute_capabilities"]
    expected = {"encoder": ([1, 3, 32, 32], [4, 3, 256, 256]), "decoder": ([1, 96, 2, 2], [4, 96, 16, 16])}[role]
    assert (sidecar["profile"]["min"], sidecar["profile"]["max"]) == expected
    assert sidecar["metadata"]["edgeae.role"] == role and sidecar["metadata"]["edgeae.precision"] == precision


def test_fp16_onnx_keeps_float32_inputs_and_outputs(built_engines):
    model = onnx.load(built_engines / "encoder.fp16.onnx")
    float32, float16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert model.graph.input[0].type.tensor_type.elem_type == float32
    assert model.graph.output[0].type.tensor_type.elem_type == float32
    assert all(init.data_type == float16 for init in model.graph.initializer if init.name.endswith("weight"))


def test_second_build_with_the_same_key_is_a_cache_hit(built_engines):
    before = (built_engines / "encoder.fp32.engine").stat().st_mtime_ns
    sidecars = build_run(built_engines, BuildConfig(flavour="tensorrt-rtx", opt_shape=(1, 64, 96), max_shape=(4, 256, 256)),
                         progress=False)
    assert [s["cache"] for s in sidecars] == ["hit", "hit"]
    assert (built_engines / "encoder.fp32.engine").stat().st_mtime_ns == before


def test_changed_onnx_is_a_cache_miss(built_engines, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(built_engines, run)
    model = onnx.load(run / "decoder.onnx")
    model.doc_string = "changed"
    onnx.save(model, run / "decoder.onnx")
    sidecars = build_run(run, BuildConfig(flavour="tensorrt-rtx", opt_shape=(1, 64, 96), max_shape=(4, 256, 256)),
                         progress=False)
    assert sidecars[0]["cache"] == "hit" and sidecars[1]["cache"] == "miss (onnx_sha256 changed)"


@pytest.mark.parametrize("cfg, message", [
    (BuildConfig(max_shape=(4, 250, 256)), "multiples of 16"),
    (BuildConfig(min_shape=(1, 64, 64), opt_shape=(1, 32, 32)), "min ≤ opt ≤ max"),
    (BuildConfig(opt_shape=(64, 32, 32)), "min ≤ opt ≤ max"),
])
def test_profile_outside_its_range_is_refused(built_engines, cfg, message):
    with pytest.raises(EdgeAEError, match=message):
        build_run(built_engines, cfg, progress=False)


def test_shape_text_must_be_n_x_h_x_w():
    assert parse_shape("2x576x768") == (2, 576, 768)
    with pytest.raises(EdgeAEError, match="NxHxW"):
        parse_shape("576x768")


def test_standard_tensorrt_without_a_gpu_is_refused_with_the_alternative(tensorrt_rtx):
    trt = tensorrt_flavour.TensorRT(tensorrt_flavour.FLAVOURS["tensorrt"], tensorrt_rtx)  # the API both share
    with pytest.raises(EdgeAEError, match="use --flavour tensorrt-rtx"):
        trt.target(None)


def test_without_tensorrt_fp16_onnx_is_still_written(trained_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    monkeypatch.setattr(tensorrt_flavour, "available", lambda: {})
    with pytest.raises(EdgeAEError, match="no TensorRT installed.*fp16 ONNX files are written"):
        build_run(run, BuildConfig(precision="fp16"), progress=False)
    assert (run / "encoder.fp16.onnx").is_file() and not (run / "encoder.fp16.engine").exists()
