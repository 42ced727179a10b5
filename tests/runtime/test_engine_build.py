"""Engine building owned by the runtime: what a device's install.sh and service run, without torch or onnx."""

import json
import shutil
import sys

import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime import engine_build, tensorrt_flavour


@pytest.fixture
def model_dir(built_engines, tmp_path):
    """A bundle's model folder: fp32 and fp16 ONNX, no engines yet."""
    model = tmp_path / "model"
    shutil.copytree(built_engines, model, ignore=shutil.ignore_patterns("*.engine", "*.engine.json", "*.cache"))
    return model


def test_engine_building_imports_neither_torch_nor_onnx(run_without_torch):
    result = run_without_torch("""
        import edgeae.runtime.engine_build, edgeae.runtime.engine_cache, edgeae.runtime.backends.tensorrt
        import edgeae.export.bundle
        assert not {"torch", "onnx", "edgeae.cli", "edgeae.training"} & set(sys.modules)
    """)
    assert result.returncode == 0, result.stderr


def test_prepare_without_tensorrt_says_onnxruntime_runs_the_model(trained_run, monkeypatch):
    monkeypatch.setattr(tensorrt_flavour, "available", lambda: {})
    assert engine_build.prepare(trained_run) == "no TensorRT on this device: ONNX Runtime will run the model"
    assert not list(trained_run.glob("*.engine"))


def test_prepare_builds_an_engine_per_bundled_precision_and_reuses_them(model_dir, tensorrt_rtx):
    assert engine_build.prepare(model_dir).endswith("(4 built, 0 unchanged)")
    for name in ("encoder.fp32", "decoder.fp32", "encoder.fp16", "decoder.fp16"):
        sidecar = json.loads((model_dir / f"{name}.engine.json").read_text())
        assert sidecar["profile"]["max"][0] == engine_build.EngineConfig().max_shape[0]
    assert engine_build.prepare(model_dir).endswith("(0 built, 4 unchanged)")


def test_prepare_builds_nothing_for_a_gpu_the_flavour_cannot_run(model_dir, tensorrt_rtx, monkeypatch):
    h100 = tensorrt_flavour.CudaDevice("NVIDIA H100 80GB HBM3", "9.0")
    monkeypatch.setattr(tensorrt_flavour, "cuda_device", lambda: h100)
    assert engine_build.prepare(model_dir).endswith("do not run on compute capability 9.0: ONNX Runtime will run the model")
    assert not list(model_dir.glob("*.engine"))


def test_a_failing_engine_build_is_an_error_not_a_skip(model_dir, tensorrt_rtx, monkeypatch, capsys):
    def fails(trt, source, engine, *args):
        raise EdgeAEError(f"{trt.name} failed to build {engine.name}: out of memory")

    monkeypatch.setattr(engine_build, "build_engine", fails)
    assert engine_build.main([str(model_dir)]) == 2
    err = capsys.readouterr().err
    assert "failed to build encoder.fp32.engine" in err and err.count("\n") == 1


def test_swapped_encoder_and_decoder_are_refused_before_building(trained_run, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(trained_run / "encoder.onnx", model / "decoder.onnx")
    shutil.copy(trained_run / "decoder.onnx", model / "encoder.onnx")
    with pytest.raises(EdgeAEError, match="encoder.onnx is the decoder, not the encoder .*swapped"):
        engine_build.build_engines(model, progress=False)
