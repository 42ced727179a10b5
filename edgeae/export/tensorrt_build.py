"""`edgeae build`: TensorRT engines for the encoder and decoder of a run, at fp32, fp16 or int8.

Precision is explicit in the ONNX (strongly typed networks): fp32 builds encoder.onnx, fp16 builds
encoder.fp16.onnx (written here from the fp32 file), int8 builds the Q/DQ encoder.int8.onnx (written by
`edgeae.export.quantize` when missing or stale). Writes RUN/<role>.<precision>.engine and its sidecar
(see engine_cache.py); an engine whose cache key is unchanged is not rebuilt.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import onnx

from edgeae.config import atomic_write_bytes, load_config, to_dict
from edgeae.errors import EdgeAEError
from edgeae.export.engine_cache import cache_key, cache_miss_reason, write_sidecar
from edgeae.export.onnx_export import sha256_file
from edgeae.runtime import tensorrt_flavour
from edgeae.training.model import ModelConfig

ROLES = (("encoder", "image"), ("decoder", "latent"))


@dataclass(frozen=True)
class BuildConfig:
    precision: str = "fp32"
    flavour: str = "auto"
    # Image shapes N×H×W: batches of 1–32 crops of 32×32 up to single 1088×1920 frames in one profile.
    min_shape: tuple[int, ...] = (1, 32, 32)
    opt_shape: tuple[int, ...] = (1, 576, 768)
    max_shape: tuple[int, ...] = (32, 1088, 1920)
    workspace_mb: int = 0  # 0 = TensorRT's default (the device's memory)
    timing_cache: str = ""  # "" = RUN/tensorrt.timing.cache (standard TensorRT only)
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


def profiles(cfg: BuildConfig, model: ModelConfig) -> dict[str, dict]:
    """Per role: the optimisation profile (input name, min/opt/max NCHW), checked against the model."""
    s = model.downsample
    shapes = {"min": cfg.min_shape, "opt": cfg.opt_shape, "max": cfg.max_shape}
    for name, (n, h, w) in shapes.items():
        if h % s or w % s:
            raise EdgeAEError(f"--{name} {n}x{h}x{w}: height and width must be multiples of {s} (the runtime pads frames to them)")
    if any(not a <= b <= c for a, b, c in zip(cfg.min_shape, cfg.opt_shape, cfg.max_shape)):
        raise EdgeAEError(f"profile must satisfy min ≤ opt ≤ max in every dimension, got "
                          f"{cfg.min_shape} ≤ {cfg.opt_shape} ≤ {cfg.max_shape}")
    image = {k: [n, model.in_channels, h, w] for k, (n, h, w) in shapes.items()}
    latent = {k: [n, model.latent_channels, h // s, w // s] for k, (n, h, w) in shapes.items()}
    return {"encoder": {"input": "image", **image}, "decoder": {"input": "latent", **latent}}


def source_onnx(run_dir: Path, role: str, precision: str) -> Path:
    return run_dir / (f"{role}.onnx" if precision == "fp32" else f"{role}.{precision}.onnx")


def prepare_onnx(run_dir: Path, cfg: BuildConfig) -> None:
    """Make the fp16 or int8 ONNX files the engines are built from."""
    if cfg.precision == "fp16":
        from edgeae.export.fp16 import convert_fp16

        for role, _ in ROLES:
            convert_fp16(run_dir / f"{role}.onnx", source_onnx(run_dir, role, "fp16"))
    elif cfg.precision == "int8" and _int8_stale(run_dir, cfg):
        from edgeae.export.quantize import QuantizeConfig, quantize_run

        quantize_run(run_dir, QuantizeConfig(calib_data=cfg.calib_data, calib_frames=cfg.calib_frames))


def _int8_stale(run_dir: Path, cfg: BuildConfig) -> bool:
    """Quantising takes a while: redo it only when the Q/DQ files are missing, older than the fp32 ones,
    or were calibrated differently."""
    from edgeae.export.quantize import QuantizeConfig

    files = [source_onnx(run_dir, r, p) for r, _ in ROLES for p in ("fp32", "int8")]
    if not all(f.is_file() for f in files) or not (run_dir / "quantize_config.json").is_file():
        return True
    if max(f.stat().st_mtime for f in files[0::2]) > min(f.stat().st_mtime for f in files[1::2]):
        return True
    old = load_config(QuantizeConfig, run_dir / "quantize_config.json")
    return (old.calib_data, old.calib_frames) != (cfg.calib_data, cfg.calib_frames)


def build_engine(trt: tensorrt_flavour.TensorRT, onnx_path: Path, engine: Path, profile: dict, workspace_mb: int,
                 timing_cache: Path | None) -> float:
    """Parse `onnx_path` into a strongly typed network and build `engine`; returns the build seconds."""
    api = trt.trt
    builder = api.Builder(trt.logger)
    network = trt.strongly_typed_network(builder)
    parser = api.OnnxParser(network, trt.logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgeAEError(f"{trt.name} cannot parse {onnx_path.name}: {errors[:300]}")
    config = builder.create_builder_config()
    if workspace_mb:
        config.set_memory_pool_limit(api.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(profile["input"], profile["min"], profile["opt"], profile["max"])
    config.add_optimization_profile(opt_profile)
    uses_cache = timing_cache is not None and trt.attach_timing_cache(config, timing_cache)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        hint = "; --workspace-mb needs a GPU to reserve memory on, omit it here" if workspace_mb else ""
        raise EdgeAEError(f"{trt.name} failed to build {engine.name}: {trt.last_error()}{hint}")
    atomic_write_bytes(engine, memoryview(serialized))
    if uses_cache:
        atomic_write_bytes(timing_cache, trt.timing_cache_bytes(config))
    return seconds


def _onnx_metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props
            if p.key.startswith("edgeae.")}


def build_run(run_dir: str | os.PathLike, cfg: BuildConfig = BuildConfig(), progress: bool = True) -> list[dict]:
    """Build (or find in the cache) RUN/encoder.<precision>.engine and RUN/decoder.<precision>.engine."""
    from edgeae.training.train import TrainConfig

    run_dir = Path(run_dir)
    if not (run_dir / "encoder.onnx").is_file():
        raise EdgeAEError(f"{run_dir}/encoder.onnx not found; run 'edgeae export {run_dir}' first")
    if cfg.precision not in tensorrt_flavour.PRECISIONS:
        raise EdgeAEError(f"precision {cfg.precision!r} is not one of {', '.join(tensorrt_flavour.PRECISIONS)}")
    model = load_config(TrainConfig, run_dir / "config.json").model
    shapes = profiles(cfg, model)
    prepare_onnx(run_dir, cfg)  # first: ONNX Runtime runs the fp16 / int8 files where no TensorRT is
    try:
        trt = tensorrt_flavour.load(cfg.flavour)
    except EdgeAEError as e:
        if cfg.precision == "fp32":
            raise
        raise EdgeAEError(f"{e} (the {cfg.precision} ONNX files are written; ONNX Runtime runs them)") from None
    trt.check_precision(cfg.precision)
    device, capabilities = trt.target(tensorrt_flavour.cuda_device())
    timing_cache = Path(cfg.timing_cache) if cfg.timing_cache else run_dir / "tensorrt.timing.cache"
    sidecars = []
    for role, _ in ROLES:
        onnx_path, engine = source_onnx(run_dir, role, cfg.precision), run_dir / f"{role}.{cfg.precision}.engine"
        key = {"flavour": trt.name, "flavour_version": trt.version, "device": device,
               "compute_capabilities": list(capabilities), "precision": cfg.precision, "profile": shapes[role],
               "onnx_sha256": sha256_file(onnx_path), "workspace_mb": cfg.workspace_mb}
        miss = cache_miss_reason(engine, key)
        if miss is None:
            sidecars.append({**json.loads(Path(f"{engine}.json").read_text()), "cache": "hit"})
        else:
            seconds = build_engine(trt, onnx_path, engine, shapes[role], cfg.workspace_mb,
                                   timing_cache if trt.flavour.timing_cache else None)
            side = write_sidecar(engine, key, role=role, onnx=onnx_path.name, build_seconds=round(seconds, 3),
                                 built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                 timing_cache=str(timing_cache) if trt.flavour.timing_cache else
                                 f"not used: a no-op in {trt.name}", build_config=to_dict(cfg),
                                 metadata=_onnx_metadata(onnx_path))
            sidecars.append({**side, "cache": f"miss ({miss})"})
        if progress:
            s = sidecars[-1]
            took = "cache hit" if s["cache"] == "hit" else f"built in {s['build_seconds']:.2f} s, {s['cache']}"
            print(f"{engine}: {trt.name} {trt.version}, {s['device']}, {took}")
    return sidecars
