"""INT8 Q/DQ ONNX: the exact Conv+DepthToSpace decoder rewrite, quantisation, its report, int8 engines."""

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgeae.errors import EdgeAEError
from edgeae.export.quantize import QuantizeConfig, quantize_run
from edgeae.export.tensorrt_build import BuildConfig, build_run
from edgeae.training.model import Autoencoder, ModelConfig

SMALL = dict(calib_frames=4, eval_frames=2, latency_shape=(1, 64, 96), latency_runs=2)


@pytest.fixture(scope="module")
def int8_run(trained_run, tmp_path_factory):
    """`trained_run` quantised, calibrated on 4 of its synthetic training images. No PSNR gate here: the
    structure tests must not depend on how well a 2-epoch model quantises (the gate has its own tests)."""
    run = tmp_path_factory.mktemp("int8") / "run"
    shutil.copytree(trained_run, run)
    quantize_run(run, QuantizeConfig(**SMALL, psnr_min=0.0), progress=False)
    return run


def _reconstruct_int8(run, x, optimization):
    """The int8 encoder + decoder on ONNX Runtime CPU at a graph optimisation level."""
    import onnxruntime as ort

    out = x
    for role, name in (("encoder", "image"), ("decoder", "latent")):
        options = ort.SessionOptions()
        options.graph_optimization_level = optimization
        session = ort.InferenceSession(str(run / f"{role}.int8.onnx"), options, providers=["CPUExecutionProvider"])
        out = session.run(None, {name: out})[0]
    return out


def test_int8_onnx_files_are_qdq_with_int8_weights_and_float_bias(int8_run):
    for role in ("encoder", "decoder"):
        model = onnx.load(int8_run / f"{role}.int8.onnx")
        ops = {n.op_type for n in model.graph.node}
        assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "ConvTranspose" not in ops
        weights = [i for i in model.graph.initializer if i.name.endswith("weight_quantized")]
        assert weights and all(w.data_type == onnx.TensorProto.INT8 for w in weights)
        assert not any(i.data_type == onnx.TensorProto.INT32 for i in model.graph.initializer)  # TensorRT refuses
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["edgeae.precision"] == "int8" and meta["edgeae.role"] == role


def test_encoder_first_conv_stays_float_the_rest_is_quantised(int8_run):
    graph = onnx.load(int8_run / "encoder.int8.onnx").graph
    produced_by = {out: n.op_type for n in graph.node for out in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert [produced_by.get(c.input[1]) for c in convs] == [None] + ["DequantizeLinear"] * 3


def test_int8_weights_use_seven_bits_so_avx2_int8_kernels_cannot_saturate(int8_run):
    # Without VNNI, ONNX Runtime adds pairs of u8·s8 products in int16: 2·255·64 fits, 2·255·127 does not.
    for role in ("encoder", "decoder"):
        initializers = onnx.load(int8_run / f"{role}.int8.onnx").graph.initializer
        weights = [onnx.numpy_helper.to_array(i) for i in initializers if i.name.endswith("weight_quantized")]
        assert weights and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64


def test_int8_cpu_kernels_compute_what_the_qdq_graph_says(int8_run):
    """ONNX Runtime's fused int8 kernels against the same Q/DQ graph run node by node in float: this CPU's
    int8 arithmetic must not change the result. Saturating AVX2 kernels put them 22-29 dB apart; sound
    kernels differ only where a value rounds the other way (56 dB for this model, 44-50 for one trained longer)."""
    import onnxruntime as ort

    from edgeae.export.quantize import real_batches
    from edgeae.runtime.quality import psnr_float as psnr

    for x in real_batches("synthetic", 2, 16, seed=1):
        kernels = _reconstruct_int8(int8_run, x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        reference = _reconstruct_int8(int8_run, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        assert psnr(kernels, reference) >= 40


def test_float_nodes_stay_float_and_a_name_not_in_the_encoder_is_refused(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    quantize_run(run, QuantizeConfig(**SMALL, psnr_min=0.0, float_nodes=("node_conv2d_2",)), progress=False)
    graph = onnx.load(run / "encoder.int8.onnx").graph
    produced_by = {out: n.op_type for n in graph.node for out in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert [produced_by.get(c.input[1]) for c in convs] == [None, "DequantizeLinear", None, "DequantizeLinear"]
    with pytest.raises(EdgeAEError, match="float_nodes node_conv9 are not nodes of"):
        quantize_run(run, QuantizeConfig(**SMALL, float_nodes=("node_conv9",)), progress=False)


def test_quantize_refuses_int8_output_below_psnr_min(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    with pytest.raises(EdgeAEError, match=r"int8 PSNR .* dB against fp32 is below 1000.0 dB"):
        quantize_run(run, QuantizeConfig(calib_frames=1, eval_frames=1, latency_shape=(1, 16, 16), latency_runs=1,
                                         psnr_min=1000.0), progress=False)


def test_int8_decoder_uses_depth_to_space_in_pixel_shuffle_order(int8_run):
    nodes = [n for n in onnx.load(int8_run / "decoder.int8.onnx").graph.node if n.op_type == "DepthToSpace"]
    assert len(nodes) == 4
    assert all(onnx.helper.get_attribute_value(next(a for a in n.attribute if a.name == "mode")) == b"CRD" for n in nodes)


def test_export_report_gains_an_int8_section(int8_run):
    report = json.loads((int8_run / "export_report.json").read_text())
    assert report["passed"] and report["precision"] == "fp32"  # the fp32 parity rows are kept
    int8 = report["int8"]
    assert int8["decoder_rewrite"]["max_abs_vs_pytorch"] <= 1e-5
    assert int8["calibration"] == {"data": "synthetic", "frames": 4, "method": "Percentile 99.99"}
    latency = int8["latency_ms_onnxruntime_cpu"]
    assert latency["shape"] == [1, 3, 64, 96] and latency["fp32"]["full"] > 0 and latency["int8"]["full"] > 0
    assert latency["speedup_full"] > 0


def test_int8_engines_build_from_the_qdq_onnx(int8_run, tensorrt_rtx):
    before = (int8_run / "encoder.int8.onnx").stat().st_mtime_ns
    sidecars = build_run(int8_run, BuildConfig(precision="int8", flavour="tensorrt-rtx", calib_frames=4,
                                               opt_shape=(1, 64, 96), max_shape=(2, 128, 128)), progress=False)
    assert [s["precision"] for s in sidecars] == ["int8", "int8"]
    assert (int8_run / "decoder.int8.engine").stat().st_size > 10_000
    assert (int8_run / "encoder.int8.onnx").stat().st_mtime_ns == before  # calibrated the same way: not redone


def test_int8_matches_fp32_onnx_on_real_frames_by_35_db(trained_run, footage, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    vtest = str(footage / "vtest.avi")
    section = quantize_run(run, QuantizeConfig(calib_data=vtest, calib_frames=4, eval_data=vtest, eval_frames=2,
                                               latency_shape=(1, 576, 768), latency_runs=3), progress=False)
    assert section["psnr_db_vs_fp32_onnx"]["full"] >= 35 and section["passed"]
    saved = json.loads((run / "export_report.json").read_text())["int8"]
    assert saved["eval"]["data"] == vtest and saved["latency_ms_onnxruntime_cpu"]["shape"] == [1, 3, 576, 768]


def test_quantize_needs_an_exported_run(tmp_path):
    with pytest.raises(EdgeAEError, match="run 'edgeae export"):
        quantize_run(tmp_path, QuantizeConfig(**SMALL), progress=False)


def test_runtime_runs_the_int8_onnx(int8_run):
    from edgeae.runtime import Autoencoder as Runtime

    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    with Runtime.load(int8_run, precision="int8") as ae:
        assert ae.reconstruct([frame])[0].shape == frame.shape
