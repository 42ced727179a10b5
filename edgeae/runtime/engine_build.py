"""TensorRT engines for a run or model folder, built without torch or onnx.

`edgeae build` calls `build_engines` after writing the fp16 / int8 ONNX; on a device, the bundle's
install.sh and its systemd unit's ExecStartPre run

    python -m edgeae.runtime.engine_build MODEL_DIR

which builds an engine for every precision whose ONNX files are in MODEL_DIR where TensorRT is, and
says that ONNX Runtime runs the model where it is not. A build that fails is an error (exit 2).

Input names, channel counts and the "edgeae.*" metadata are read through ONNX Runtime, which the base
install has. Writes <role>.<precision>.engine and its sidecar (engine_cache.py) from the precision's
ONNX; an engine whose cache key is unchanged is not rebuilt.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edgeae.config import atomic_write_bytes, to_dict
from edgeae.errors import EdgeAEError
from edgeae.runtime import tensorrt_flavour
from edgeae.runtime.engine_cache import cache_miss_reason, sha256_file, sidecar_path, write_sidecar
from edgeae.runtime.run_files import PRECISIONS, ROLES, check_role, engine_path, onnx_path


@dataclass(frozen=True)
class EngineConfig:
    precision: str = "fp32"
    flavour: str = "auto"
    # Image shapes N×H×W: batches of 1–32 crops of 32×32 up to single 1088×1920 frames in one profile.
    min_shape: tuple[int, ...] = (1, 32, 32)
    opt_shape: tuple[int, ...] = (1, 576, 768)
    max_shape: tuple[int, ...] = (32, 1088, 1920)
    workspace_mb: int = 0  # 0 = TensorRT's default (the device's memory)
    timing_cache: str = ""  # "" = RUN/tensorrt.timing.cache (standard TensorRT only)


@dataclass(frozen=True)
class OnnxModel:
    """What building an engine needs to know about one ONNX file."""

    path: Path
    input_name: str
    channels: int
    metadata: dict[str, str]


def read_onnx(path: Path, role: str) -> OnnxModel:
    """Input name, channel count and "edgeae.*" metadata of `path`, which must be the `role`'s model."""
    from edgeae.runtime.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend.load(path, providers=["CPUExecutionProvider"])
    try:
        first = backend.session.get_inputs()[0]
        metadata = {k: v for k, v in backend.metadata.items() if k.startswith("edgeae.")}
    finally:
        backend.close()
    check_role(metadata, role, path)
    if len(first.shape) != 4 or not isinstance(first.shape[1], int):
        raise EdgeAEError(f"{path}: input {first.name} is {first.shape}, not NCHW with fixed channels; "
                          "re-export it with 'edgeae export RUN'")
    return OnnxModel(path, first.name, first.shape[1], metadata)


def read_models(model_dir: Path, precision: str) -> dict[str, OnnxModel]:
    return {role: read_onnx(onnx_path(model_dir, role, precision), role) for role in ROLES}


def profiles(cfg: EngineConfig, models: dict[str, OnnxModel]) -> dict[str, dict]:
    """Per role: the optimisation profile (input name, min/opt/max NCHW), checked against the model."""
    encoder = models["encoder"]
    try:
        s = int(encoder.metadata["edgeae.downsample"])
    except (KeyError, ValueError):
        raise EdgeAEError(f"{encoder.path} lacks edgeae.downsample metadata; re-export it with 'edgeae export RUN'") from None
    shapes = {"min": cfg.min_shape, "opt": cfg.opt_shape, "max": cfg.max_shape}
    for name, (n, h, w) in shapes.items():
        if h % s or w % s:
            raise EdgeAEError(f"--{name} {n}x{h}x{w}: height and width must be multiples of {s} (the runtime pads frames to them)")
    if any(not a <= b <= c for a, b, c in zip(cfg.min_shape, cfg.opt_shape, cfg.max_shape)):
        raise EdgeAEError(f"profile must satisfy min ≤ opt ≤ max in every dimension, got "
                          f"{cfg.min_shape} ≤ {cfg.opt_shape} ≤ {cfg.max_shape}")
    scale = {"encoder": 1, "decoder": s}
    return {role: {"input": m.input_name,
                   **{k: [n, m.channels, h // scale[role], w // scale[role]] for k, (n, h, w) in shapes.items()}}
            for role, m in models.items()}


def build_engine(trt: tensorrt_flavour.TensorRT, source: Path, engine: Path, profile: dict, workspace_mb: int,
                 timing_cache: Path | None) -> float:
    """Parse `source` into a strongly typed network and build `engine`; returns the build seconds."""
    api = trt.trt
    builder = api.Builder(trt.logger)
    network = trt.strongly_typed_network(builder)
    parser = api.OnnxParser(network, trt.logger)
    if not parser.parse_from_file(str(source)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgeAEError(f"{trt.name} cannot parse {source.name}: {' '.join(errors.split())[:300]}")
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


def build_engines(model_dir: str | os.PathLike, cfg: EngineConfig = EngineConfig(),
                  trt: tensorrt_flavour.TensorRT | None = None, progress: bool = True) -> list[dict]:
    """Build (or find in the cache) <role>.<precision>.engine for both roles; returns their sidecars,
    each with "cache": "hit" or "miss (why)".

    trt: an already loaded flavour; None loads `cfg.flavour`.
    """
    model_dir = Path(model_dir)
    if cfg.precision not in PRECISIONS:
        raise EdgeAEError(f"precision {cfg.precision!r} is not one of {', '.join(PRECISIONS)}")
    models = read_models(model_dir, cfg.precision)
    shapes = profiles(cfg, models)
    trt = trt or tensorrt_flavour.load(cfg.flavour)
    trt.check_precision(cfg.precision)
    device, capabilities = trt.target(tensorrt_flavour.cuda_device())
    timing_cache = Path(cfg.timing_cache) if cfg.timing_cache else model_dir / "tensorrt.timing.cache"
    sidecars = []
    for role, model in models.items():
        engine = engine_path(model_dir, role, cfg.precision)
        key = {"flavour": trt.name, "flavour_version": trt.version, "device": device,
               "compute_capabilities": list(capabilities), "precision": cfg.precision, "profile": shapes[role],
               "onnx_sha256": sha256_file(model.path), "workspace_mb": cfg.workspace_mb}
        miss = cache_miss_reason(engine, key)
        if miss is None:
            sidecars.append({**json.loads(sidecar_path(engine).read_text()), "cache": "hit"})
        else:
            seconds = build_engine(trt, model.path, engine, shapes[role], cfg.workspace_mb,
                                   timing_cache if trt.flavour.timing_cache else None)
            side = write_sidecar(engine, key, role=role, onnx=model.path.name, build_seconds=round(seconds, 3),
                                 built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                 timing_cache=str(timing_cache) if trt.flavour.timing_cache else
                                 f"not used: a no-op in {trt.name}", build_config=to_dict(cfg),
                                 metadata=model.metadata)
            sidecars.append({**side, "cache": f"miss ({miss})"})
        if progress:
            s = sidecars[-1]
            took = "cache hit" if s["cache"] == "hit" else f"built in {s['build_seconds']:.2f} s, {s['cache']}"
            print(f"{engine}: {trt.name} {trt.version}, {s['device']}, {took}")
    return sidecars


def precisions_present(model_dir: Path) -> list[str]:
    """The precisions whose encoder and decoder ONNX are both in `model_dir` (what a bundle shipped)."""
    return [p for p in PRECISIONS if all(onnx_path(model_dir, role, p).is_file() for role in ROLES)]


def prepare(model_dir: str | os.PathLike) -> str:
    """A device's first run (and every service start): the engines of every precision in `model_dir`
    where TensorRT is installed, built or found in the cache; returns one line saying what runs the model."""
    model_dir = Path(model_dir)
    precisions = precisions_present(model_dir)
    if "fp32" not in precisions:
        raise EdgeAEError(f"{model_dir} has no encoder.onnx/decoder.onnx; pass the model folder of an installed bundle")
    if not tensorrt_flavour.available():
        return "no TensorRT on this device: ONNX Runtime will run the model"
    trt, device = tensorrt_flavour.load("auto"), tensorrt_flavour.cuda_device()
    if device is None and not trt.flavour.builds_without_gpu:
        return f"{trt.name} {trt.version} builds only for a GPU and none was found: ONNX Runtime will run the model"
    # Engines this GPU cannot run would make `--backend auto` pick TensorRT and then refuse them.
    if device is not None and device.compute_capability not in trt.target(device)[1]:
        return (f"{trt.name} {trt.version} engines do not run on compute capability {device.compute_capability}: "
                "ONNX Runtime will run the model")
    sidecars = [s for p in precisions for s in build_engines(model_dir, EngineConfig(precision=p), trt=trt)]
    built = sum(s["cache"] != "hit" for s in sidecars)
    return (f"{trt.name} {trt.version}: {', '.join(precisions)} engines ready in {model_dir} "
            f"({built} built, {len(sidecars) - built} unchanged)")


def main(argv: list[str] | None = None) -> int:
    """`python -m edgeae.runtime.engine_build MODEL_DIR`; returns the exit code (0 ok, 2 error)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m edgeae.runtime.engine_build MODEL_DIR", file=sys.stderr)
        return 2
    try:
        print(prepare(argv[0]))
    except EdgeAEError as e:
        print(f"edgeae engine_build: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
