"""`edgeae build`: the fp16 / int8 ONNX of a run, then its TensorRT engines at fp32, fp16 or int8.

Precision is explicit in the ONNX (strongly typed networks): fp32 builds encoder.onnx, fp16 builds
encoder.fp16.onnx (written here from the fp32 file), int8 builds the Q/DQ encoder.int8.onnx (written by
`edgeae.export.quantize` when missing or stale). Making those files needs onnx (and torch for int8
calibration); building the engines from them does not, and is the runtime's job
(`edgeae.runtime.engine_build`, which devices run too).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from edgeae.config import load_config
from edgeae.errors import EdgeAEError
from edgeae.runtime import engine_build, tensorrt_flavour
from edgeae.runtime.engine_build import EngineConfig
from edgeae.runtime.run_files import ROLES, onnx_path


@dataclass(frozen=True)
class BuildConfig(EngineConfig):
    """The engine settings plus what making the int8 ONNX needs."""

    calib_frames: int = 32  # int8: frames for the Q/DQ calibration when it must be (re)made
    calib_data: str = ""  # int8: "" = the run's training data


def parse_shape(text: str, flag: str = "shape") -> tuple[int, int, int]:
    """'1x576x768' → (1, 576, 768)."""
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise EdgeAEError(f"{flag} {text!r} is not NxHxW with positive integers, e.g. 1x576x768")
    return dims  # type: ignore[return-value]


def prepare_onnx(run_dir: Path, cfg: BuildConfig) -> None:
    """Make the fp16 or int8 ONNX files the engines are built from."""
    if cfg.precision == "fp16":
        from edgeae.export.fp16 import convert_fp16

        for role in ROLES:
            convert_fp16(onnx_path(run_dir, role), onnx_path(run_dir, role, "fp16"))
    elif cfg.precision == "int8" and _int8_stale(run_dir, cfg):
        from edgeae.export.quantize import QuantizeConfig, quantize_run

        quantize_run(run_dir, QuantizeConfig(calib_data=cfg.calib_data, calib_frames=cfg.calib_frames))


def _int8_stale(run_dir: Path, cfg: BuildConfig) -> bool:
    """Quantising takes a while: redo it only when the Q/DQ files are missing, older than the fp32 ones,
    or were calibrated differently."""
    from edgeae.export.quantize import QuantizeConfig

    files = [onnx_path(run_dir, r, p) for r in ROLES for p in ("fp32", "int8")]
    if not all(f.is_file() for f in files) or not (run_dir / "quantize_config.json").is_file():
        return True
    if max(f.stat().st_mtime for f in files[0::2]) > min(f.stat().st_mtime for f in files[1::2]):
        return True
    saved = json.loads((run_dir / "quantize_config.json").read_text())
    if set(saved) != {f.name for f in dataclasses.fields(QuantizeConfig)}:
        return True  # written by an older quantiser (e.g. before 7-bit weights and percentile calibration)
    old = load_config(QuantizeConfig, run_dir / "quantize_config.json")
    return (old.calib_data, old.calib_frames) != (cfg.calib_data, cfg.calib_frames)


def build_run(run_dir: str | os.PathLike, cfg: BuildConfig = BuildConfig(), progress: bool = True) -> list[dict]:
    """Write the precision's ONNX, then build (or find in the cache) RUN/encoder.<precision>.engine and
    RUN/decoder.<precision>.engine; returns their sidecars."""
    run_dir = Path(run_dir)
    if not onnx_path(run_dir, "encoder").is_file():
        raise EdgeAEError(f"{run_dir}/encoder.onnx not found; run 'edgeae export {run_dir}' first")
    if cfg.precision not in tensorrt_flavour.PRECISIONS:
        raise EdgeAEError(f"precision {cfg.precision!r} is not one of {', '.join(tensorrt_flavour.PRECISIONS)}")
    engine_build.profiles(cfg, engine_build.read_models(run_dir, "fp32"))  # a bad profile fails before any work
    prepare_onnx(run_dir, cfg)  # first: ONNX Runtime runs the fp16 / int8 files where no TensorRT is
    try:
        trt = tensorrt_flavour.load(cfg.flavour)
    except EdgeAEError as e:
        if cfg.precision == "fp32":
            raise
        raise EdgeAEError(f"{e} (the {cfg.precision} ONNX files are written; ONNX Runtime runs them)") from None
    return engine_build.build_engines(run_dir, cfg, trt=trt, progress=progress)
