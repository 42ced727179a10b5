"""The one place that names the files of a run folder; every stage imports these instead of spelling them.

A run folder holds, per role (encoder, decoder) and precision (fp32, fp16, int8):
  {role}.onnx              fp32 ONNX, written by 'edgeae export'
  {role}.{precision}.onnx  fp16 / int8 (Q/DQ) ONNX, written by 'edgeae build'
  {role}.{precision}.engine  a TensorRT engine (+ .json sidecar)
and, for the tuner (runtime/tuning.py) to time on the device, the fp32 model's equivalent forms:
  decoder.{form}.onnx      the decoder in the layer form decoder.onnx does not use
  autoencoder.{form}.onnx  encoder and decoder fused into one graph, image → reconstruction, per decoder form
  tuning.json              the tuner's pick and every candidate's timing, written on the device
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeae.errors import EdgeAEError

ROLES = ("encoder", "decoder")
PRECISIONS = ("fp32", "fp16", "int8")
# ConvTranspose2d(k=4, s=2, p=1) as trained, or one of its exact rewrites: Conv(k=3) + DepthToSpace, or the
# 2×2 "phase" Conv + DepthToSpace + crop (export/onnx_export.py). Which is fastest depends on the CPU and the
# runtime, so 'edgeae export' writes all of them and the tuner picks on the device.
DECODER_FORMS = ("depth_to_space", "conv_transpose", "phase")
TUNING_FILE = "tuning.json"


def onnx_name(role: str, precision: str = "fp32") -> str:
    """encoder.onnx for fp32, encoder.fp16.onnx / encoder.int8.onnx for the others."""
    return f"{role}.onnx" if precision == "fp32" else f"{role}.{precision}.onnx"


def engine_name(role: str, precision: str) -> str:
    return f"{role}.{precision}.engine"


def onnx_path(run_dir: str | os.PathLike, role: str, precision: str = "fp32") -> Path:
    return Path(run_dir) / onnx_name(role, precision)


def engine_path(run_dir: str | os.PathLike, role: str, precision: str) -> Path:
    return Path(run_dir) / engine_name(role, precision)


def decoder_form_name(form: str) -> str:
    """decoder.conv_transpose.onnx / decoder.depth_to_space.onnx / decoder.phase.onnx: the fp32 decoder in one
    layer form."""
    return f"decoder.{form}.onnx"


def fused_name(form: str) -> str:
    """autoencoder.{form}.onnx: encoder → decoder in one graph (input "image", output "reconstruction")."""
    return f"autoencoder.{form}.onnx"


def form_names() -> list[str]:
    """Every optional form file 'edgeae export' may write; a deploy bundle ships the ones present."""
    return [decoder_form_name(f) for f in DECODER_FORMS] + [fused_name(f) for f in DECODER_FORMS]


def check_role(metadata: dict[str, str], role: str, path: Path) -> None:
    """Refuse an ONNX file whose "edgeae.role" metadata is not the role its file name claims."""
    found = metadata.get("edgeae.role")
    if found is None:
        raise EdgeAEError(f"{path} has no edgeae.role metadata; re-export it with 'edgeae export RUN'")
    if found != role:
        raise EdgeAEError(f"{path} is the {found}, not the {role} (edgeae.role in its metadata): the encoder and "
                          "decoder files are swapped; re-export with 'edgeae export RUN'")
