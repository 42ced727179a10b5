"""INT8 by explicit quantisation: Q/DQ ONNX files that TensorRT and ONNX Runtime's CPU backend both run.

Writes RUN/encoder.int8.onnx and RUN/decoder.int8.onnx, quantize_config.json, and the "int8" section of
RUN/export_report.json (PSNR against the fp32 ONNX on real frames, ONNX Runtime CPU latency against fp32).

ONNX Runtime has no int8 ConvTranspose kernel, so the decoder is first rewritten exactly as
Conv(k=3, p=1, 4·C_out) + DepthToSpace(2, CRD) — the same arithmetic, a form whose Conv is quantised —
checked against PyTorch, and that form is quantised. Options are the ones TensorRT's ONNX parser accepts:
signed int8 activations and weights, symmetric activations, float bias (README, "TensorRT").

Weights use 7 of their 8 bits (ONNX Runtime's reduce_range). On x86 CPUs without VNNI (AVX2, e.g. an AMD
EPYC) ONNX Runtime's int8 Conv multiplies with VPMADDUBSW, which adds two u8·s8 products into a saturating
int16: with full-range weights the sums overflow. That gave 22.5 dB against fp32 where the same Q/DQ graph
computed without int8 kernels gives 50 dB (VNNI's VPDPBUSD adds into int32 and does not saturate). With
|w| ≤ 64, 2·255·64 < 2^15: no CPU saturates, and the lost bit cost 0.5 dB.

Activation ranges are the 99.99th percentile of |x| over the calibration frames, not their maximum: one
outlier pixel stretches a max range, and more frames bring more outliers. Worst-frame PSNR against fp32 on
vtest.avi, 32 calibration frames, seed model trained on vtest: max (MinMax) 37.9 dB, percentile 99.999
39.7, 99.99 41.8, 99.9 37.1 (clips real values); the 2-epoch synthetic model on synthetic frames: 48.0 /
47.8 / 49.2 dB (with only 4 frames 49.5 / – / 43.1: few frames favour the maximum). Entropy: 31 dB.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import torch
from torch import nn

from edgeae.config import atomic_write_bytes, atomic_write_json, load_config, save_config, to_dict
from edgeae.errors import EdgeAEError
from edgeae.export.fp16 import set_metadata
from edgeae.export.onnx_export import ExportConfig, depth_to_space_onnx
from edgeae.runtime.backends.onnxruntime import OnnxRuntimeBackend
from edgeae.runtime.quality import psnr_float
from edgeae.runtime.run_files import decoder_form_name, onnx_path
from edgeae.runtime.tuning import interleaved_medians
from edgeae.runtime.preprocess import frames_to_batch
from edgeae.training.data import load_images
from edgeae.training.train import TrainConfig, load_model


@dataclass(frozen=True)
class QuantizeConfig:
    calib_data: str = ""  # "" = the data the run was trained on
    calib_frames: int = 32
    calib_percentile: float = 99.99  # activation ranges: this percentile of |x|; 100 = the maximum (MinMax)
    eval_data: str = ""  # real frames for the PSNR check; "" = export's --real-frames, else calib_data
    eval_frames: int = 4
    per_channel: bool = True
    # The encoder's first conv sees 3 input channels, too few for int8 kernels to pay off: quantised it made
    # the int8 encoder slower than fp32 on ONNX Runtime CPU; left in float, the rest of the encoder gains.
    float_first_conv: bool = True
    # Residual adds (and the input centring Sub) stay float: quantised, every skip path of a residual network is
    # rounded to int8 again and the errors pile up block after block. The first models/denoiser on the held-out photos,
    # int8 − fp32 at σ 15 / 25 / 50: −0.34 / −0.19 / −0.10 dB with them quantised, −0.29 / −0.17 / −0.09 float
    # (keeping the last conv float as well gained 0.015 dB; 8-bit weights lost more on AVX2). The convolutions,
    # where the time goes, stay int8. Autoencoders without adds are unaffected.
    float_adds: bool = True
    # More encoder nodes (ONNX names) that stay float: mixed precision for the layers int8 hurts most. For
    # models/denoiser, chosen by keeping one Conv float at a time on the training photos held back for
    # validation: all int8, int8 − fp32 was −0.40 dB at σ 15; with Convs 1, 2 and 6 float (and 99.99th-percentile
    # ranges), −0.16 / −0.15 / −0.16 dB at σ 15 / 25 / 50 (the first width, --arch denoiser: Convs 1, 6, 7, 9).
    float_nodes: tuple[str, ...] = ()
    psnr_min: float = 35.0  # decoded int8 output against the fp32 ONNX
    rewrite_tolerance: float = 1e-5  # Conv+DepthToSpace decoder against PyTorch's ConvTranspose decoder
    latency_shape: tuple[int, int, int] = (1, 576, 768)  # N, H, W of the frames timed on ONNX Runtime CPU
    latency_runs: int = 20
    threads: int = 2
    checkpoint: str = "best"


def _metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def d2s_decoder(model: nn.Module, run_dir: Path, out: Path, tolerance: float) -> float:
    """Write the decoder's Conv+DepthToSpace form (the one ONNX Runtime quantises) to `out`: decoder.onnx where it
    is in that form (the export default), else rewritten from the exported ConvTranspose decoder's weights
    (onnx_export.depth_to_space_onnx). Returns its max abs error against PyTorch's decoder."""
    for path in (onnx_path(run_dir, "decoder"), run_dir / decoder_form_name("depth_to_space"),
                 run_dir / decoder_form_name("conv_transpose")):
        form = _metadata(path).get("edgeae.decoder_form") if path.is_file() else None
        if form in ("depth_to_space", "conv_transpose"):
            graph = onnx.load(str(path))
            atomic_write_bytes(out, (graph if form == "depth_to_space" else depth_to_space_onnx(graph)).SerializeToString())
            break
    else:
        raise EdgeAEError(f"{run_dir} has no decoder in Conv+DepthToSpace or ConvTranspose form to quantise; "
                          f"re-export it with 'edgeae export {run_dir}'")
    latent = torch.rand(2, model.cfg.latent_channels, 9, 12) * 8
    with torch.no_grad():
        ref = model.decoder(latent).numpy()
    with OnnxRuntimeBackend.load(out, providers=["CPUExecutionProvider"]) as ort_d2s:
        err = float(np.abs(ort_d2s.infer({"latent": latent.numpy()})["image"] - ref).max())
    if err > tolerance:
        raise EdgeAEError(f"Conv+DepthToSpace decoder differs from PyTorch by {err:.2e} > {tolerance:.0e}; this is a bug")
    return err


def real_batches(source: str, count: int, downsample: int, seed: int = 0) -> list[np.ndarray]:
    """`count` frames of a data source as 1×3×H×W float32 batches, padded as the runtime pads them."""
    images = load_images(source, max_images=count, seed=seed)
    return [frames_to_batch([cv2.cvtColor(im, cv2.COLOR_RGB2BGR)], downsample)[0] for im in images]


class _Feeds:
    """ONNX Runtime's CalibrationDataReader protocol over a list of feeds, with the ranges
    `CalibStridedMinMax` asks for."""

    def __init__(self, name: str, batches: list[np.ndarray]):
        self._feeds = [{name: b} for b in batches]
        self.set_range(0, len(batches))

    def __len__(self) -> int:
        return len(self._feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(self._feeds[start_index:end_index])

    def get_next(self):
        return next(self._it, None)


@contextlib.contextmanager
def _quiet_root_logger():
    """quantize_static logs 'consider pre-processing' on the root logger for every model; the models
    here come straight from the exporter, already shape-inferred."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_qdq(src: Path, dst: Path, input_name: str, batches: list[np.ndarray], per_channel: bool,
                 percentile: float, exclude: tuple[str, ...] = ()) -> None:
    """Static Q/DQ quantisation of `src` calibrated on `batches`, written atomically to `dst`.

    percentile: activation ranges cover this percentile of |x| (100: the maximum, MinMax).
    exclude: names of nodes that stay float.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not any(n.op_type in ("Conv", "MatMul", "Gemm") for n in onnx.load(str(src)).graph.node):
        # Nothing with weights (the residual denoisers' decoder is one DepthToSpace): the graph is its own int8 form.
        model = onnx.load(str(src))
        set_metadata(model, precision="int8", quantization="none needed: no Conv/MatMul to quantise")
        atomic_write_bytes(dst, model.SerializeToString())
        return
    method = CalibrationMethod.MinMax if percentile == 100 else CalibrationMethod.Percentile
    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger(), contextlib.redirect_stdout(io.StringIO()):
        out = Path(tmp) / dst.name  # (the histogram calibrator print()s its progress: kept off stdout)
        quantize_static(str(src), str(out), _Feeds(input_name, batches), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=per_channel,
                        calibrate_method=method, nodes_to_exclude=list(exclude),
                        reduce_range=True,  # 7-bit weights: no int16 saturation in AVX2 kernels (module docstring)
                        # TensorRT's parser refuses int32 bias and needs symmetric (zero-point 0) activations.
                        # Ranges (and histograms) are merged frame by frame: holding every intermediate tensor of
                        # 32 full frames takes GBs (and CalibMaxIntermediateOutputs drops data in ORT 1.32).
                        extra_options={"QuantizeBias": False, "ActivationSymmetric": True, "CalibStridedMinMax": 1,
                                       "CalibPercentile": percentile})
        model = onnx.load(str(out))
    method_text = f"ONNX Runtime quantize_static {_method_text(percentile)}"
    set_metadata(model, precision="int8", quantization=f"qdq int8 symmetric, 7-bit weights, {method_text}")
    onnx.checker.check_model(model)
    atomic_write_bytes(dst, model.SerializeToString())


def _method_text(percentile: float) -> str:
    return "MinMax" if percentile == 100 else f"Percentile {percentile:g}"


def _load_cpu(path: Path, threads: int) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend.load(path, providers=["CPUExecutionProvider"], threads=threads)


def evaluate_psnr(run_dir: Path, batches: list[np.ndarray], threads: int) -> dict:
    """Worst-frame PSNR of int8 against fp32 ONNX: the whole model, and the int8 decoder on fp32 latents."""
    names = ("encoder.onnx", "decoder.onnx", "encoder.int8.onnx", "decoder.int8.onnx")
    enc, dec, enc8, dec8 = (_load_cpu(run_dir / n, threads) for n in names)
    full, decoder = [], []
    with enc, dec, enc8, dec8:
        for x in batches:
            z = enc.infer({"image": x})["latent"]
            ref = dec.infer({"latent": z})["image"]
            decoder.append(psnr_float(dec8.infer({"latent": z})["image"], ref))
            full.append(psnr_float(dec8.infer({"latent": enc8.infer({"image": x})["latent"]})["image"], ref))
    return {"full": min(full), "decoder": min(decoder)}


def measure_latency(run_dir: Path, d2s_fp32: Path, cfg: QuantizeConfig) -> dict:
    """ONNX Runtime CPU medians (ms) for fp32 and int8 encoder, decoder and both chained, on one input."""
    n, h, w = cfg.latency_shape
    x = np.random.default_rng(0).random((n, 3, h, w), dtype=np.float32)
    names = {"fp32": ("encoder.onnx", "decoder.onnx"), "int8": ("encoder.int8.onnx", "decoder.int8.onnx")}
    models = {p: [_load_cpu(run_dir / f, cfg.threads) for f in files] for p, files in names.items()}
    d2s = _load_cpu(d2s_fp32, cfg.threads)
    z = models["fp32"][0].infer({"image": x})["latent"]
    fns = {"fp32_conv_depth_to_space_decoder": lambda: d2s.infer({"latent": z})}
    for p, (enc, dec) in models.items():
        fns[f"{p}.encoder"] = lambda enc=enc: enc.infer({"image": x})
        fns[f"{p}.decoder"] = lambda dec=dec: dec.infer({"latent": z})
        fns[f"{p}.full"] = lambda enc=enc, dec=dec: dec.infer({"latent": enc.infer({"image": x})["latent"]})
    medians = interleaved_medians(fns, cfg.latency_runs)
    out = {"shape": [n, 3, h, w], "threads": cfg.threads, "runs": cfg.latency_runs, "timing": "interleaved medians"}
    for p in names:
        out[p] = {part: medians[f"{p}.{part}"] for part in ("encoder", "decoder", "full")}
    out["fp32_conv_depth_to_space_decoder"] = medians["fp32_conv_depth_to_space_decoder"]
    out["speedup_full"] = out["fp32"]["full"] / out["int8"]["full"]
    return out


def _default_sources(run_dir: Path, cfg: QuantizeConfig) -> tuple[str, str]:
    calib = cfg.calib_data or load_config(TrainConfig, run_dir / "config.json").data
    export_cfg = run_dir / "export_config.json"
    real = load_config(ExportConfig, export_cfg).real_frames if export_cfg.is_file() else ""
    return calib, cfg.eval_data or real or calib


def quantize_run(run_dir: str | os.PathLike, cfg: QuantizeConfig = QuantizeConfig(), progress: bool = True) -> dict:
    """Write RUN/encoder.int8.onnx and RUN/decoder.int8.onnx, check them, add "int8" to export_report.json."""
    run_dir = Path(run_dir)
    for name in ("encoder.onnx", "decoder.onnx", "export_report.json"):
        if not (run_dir / name).is_file():
            raise EdgeAEError(f"{run_dir / name} not found; run 'edgeae export {run_dir}' first")
    if cfg.calib_frames < 1:
        raise EdgeAEError(f"--calib-frames must be ≥ 1, got {cfg.calib_frames}")
    if not 99 <= cfg.calib_percentile <= 100:  # lower clips real values (99.9 already did: module docstring)
        raise EdgeAEError(f"calib_percentile must be from 99 to 100, got {cfg.calib_percentile}")
    model, train_cfg, _ = load_model(run_dir, cfg.checkpoint)
    calib_source, eval_source = _default_sources(run_dir, cfg)
    s = train_cfg.model.downsample
    calib = real_batches(calib_source, cfg.calib_frames, s)
    with tempfile.TemporaryDirectory() as tmp:
        d2s = Path(tmp) / "decoder.d2s.onnx"
        rewrite_err = d2s_decoder(model, run_dir, d2s, cfg.rewrite_tolerance)
        nodes = onnx.load(str(run_dir / "encoder.onnx")).graph.node
        convs = [n.name for n in nodes if n.op_type == "Conv"]
        adds = [n.name for n in nodes if n.op_type in ("Add", "Sub")]
        exclude = tuple(dict.fromkeys([convs[0]] * cfg.float_first_conv + adds * cfg.float_adds + list(cfg.float_nodes)))
        unknown = sorted(set(cfg.float_nodes) - {n.name for n in nodes})
        if unknown:
            raise EdgeAEError(f"float_nodes {', '.join(unknown)} are not nodes of {run_dir / 'encoder.onnx'}")
        quantize_qdq(run_dir / "encoder.onnx", run_dir / "encoder.int8.onnx", "image", calib, cfg.per_channel,
                     cfg.calib_percentile, exclude=exclude)
        with _load_cpu(run_dir / "encoder.onnx", cfg.threads) as enc:
            latents = [enc.infer({"image": x})["latent"] for x in calib]  # the decoder sees fp32 latents
        quantize_qdq(d2s, run_dir / "decoder.int8.onnx", "latent", latents, cfg.per_channel, cfg.calib_percentile)
        scores = evaluate_psnr(run_dir, real_batches(eval_source, cfg.eval_frames, s, seed=1), cfg.threads)
        latency = measure_latency(run_dir, d2s, cfg)
    section = {"calibration": {"data": calib_source, "frames": len(calib),
                               "method": _method_text(cfg.calib_percentile)},
               "decoder_rewrite": {"form": "Conv(k=3,p=1,4*C_out) + DepthToSpace(2, CRD)",
                                   "max_abs_vs_pytorch": rewrite_err, "tolerance": cfg.rewrite_tolerance},
               "psnr_db_vs_fp32_onnx": scores, "psnr_min": cfg.psnr_min,
               "eval": {"data": eval_source, "frames": cfg.eval_frames},
               "latency_ms_onnxruntime_cpu": latency, "passed": bool(scores["full"] >= cfg.psnr_min),
               "quantize_config": to_dict(cfg)}
    report = json.loads((run_dir / "export_report.json").read_text())
    report["int8"] = section
    atomic_write_json(run_dir / "export_report.json", report)
    save_config(cfg, run_dir / "quantize_config.json")
    if progress:
        print(format_int8_summary(section))
    if not section["passed"]:
        raise EdgeAEError(f"int8 PSNR {scores['full']:.1f} dB against fp32 is below {cfg.psnr_min} dB; "
                          f"calibrate on more or more typical frames (--calib-frames, --calib-data)")
    return section


def format_int8_summary(section: dict) -> str:
    lat = section["latency_ms_onnxruntime_cpu"]
    shape = "x".join(map(str, lat["shape"]))
    return (f"int8 Q/DQ vs fp32 ONNX: PSNR {section['psnr_db_vs_fp32_onnx']['full']:.1f} dB (whole model, worst of "
            f"{section['eval']['frames']} frames), decoder alone {section['psnr_db_vs_fp32_onnx']['decoder']:.1f} dB\n"
            f"ONNX Runtime CPU at {shape}, {lat['threads']} threads, median ms: "
            f"fp32 {lat['fp32']['encoder']:.2f} + {lat['fp32']['decoder']:.2f} = {lat['fp32']['full']:.2f}; "
            f"int8 {lat['int8']['encoder']:.2f} + {lat['int8']['decoder']:.2f} = {lat['int8']['full']:.2f}; "
            f"speed-up {lat['speedup_full']:.2f}x (fp32 Conv+DepthToSpace decoder {lat['fp32_conv_depth_to_space_decoder']:.2f})")
