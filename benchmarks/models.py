"""The models the suite measures: trained and exported into runs/bench-*, reused when their config matches."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgeae.config import to_dict
from edgeae.runtime import sources
from edgeae.training.model import ModelConfig
from edgeae.training.train import TrainConfig

# The stronger denoiser: two stride-2 levels instead of four, so the latent (64 channels at 1/4 size)
# keeps the detail that the seed's 16x downsampling blurs away.
DENOISE_VARIANT = "shallow"


@dataclass(frozen=True)
class BenchConfig:
    footage: str = "data/opencv/vtest.avi"
    runs_dir: str = "runs"
    out: str = "reports"
    quick: bool = False
    threads: int = 0  # 0: the cores this process may use
    seed: int = 0


ROLES = ("seed", "denoise-seed", f"denoise-{DENOISE_VARIANT}")


def train_configs(cfg: BenchConfig) -> dict[str, TrainConfig]:
    """name → TrainConfig of every model the suite trains (small budgets: `make bench` trains on 2 cores).

    Quick mode trains one tiny seed model that stands in for every role: it checks the machinery.
    """
    if cfg.quick:
        return {"seed": TrainConfig(data=cfg.footage, epochs=1, samples_per_epoch=256, val_samples=64, max_images=24,
                                    batch_size=64, seed=cfg.seed, device="cpu")}
    # Budgets fit `make bench` on 2 CPU cores. Frame models learn from 128x128 crops: with 32x32 crops every
    # latent touches a crop border and whole frames come back with a 16-pixel grid (README, "Crop size").
    base = TrainConfig(data=cfg.footage, epochs=8, crop_size=128, samples_per_epoch=1024, batch_size=16,
                       val_samples=256, max_images=200, seed=cfg.seed, device="cpu")
    denoise = dataclasses.replace(base, task="denoise", noise="gaussian", noise_level=25 / 255, epochs=4)
    # The shallow denoiser's 4x downsampling shows no grid with 32x32 crops; this budget beat NLM at σ 25.
    shallow = dataclasses.replace(denoise, model=ModelConfig.named(DENOISE_VARIANT), epochs=6, lr=2e-3, crop_size=32,
                                  samples_per_epoch=8192, batch_size=64, val_samples=512)
    return {"seed": base, "denoise-seed": denoise, f"denoise-{DENOISE_VARIANT}": shallow}


def ensure_runs(bench: BenchConfig) -> dict[str, Path]:
    """role → run folder, training what is missing."""
    trained = {name: ensure_run(name, tc, bench) for name, tc in train_configs(bench).items()}
    return {role: trained.get(role, trained["seed"]) for role in ROLES}


def first_unseen_frame(cfg: TrainConfig) -> int:
    """First video frame training never read: load_images samples max_images frames with an even stride."""
    cap = sources.open_video(cfg.data)
    count = sources.video_frame_count(cap)
    cap.release()
    stride = max(1, count // cfg.max_images) if count else 1
    return min(count, stride * cfg.max_images)


def _matches(run: Path, cfg: TrainConfig) -> bool:
    try:
        saved = json.loads((run / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return saved == to_dict(cfg) and (run / "encoder.onnx").is_file() and (run / "decoder.onnx").is_file()


def _export_config(train_cfg: TrainConfig):
    from edgeae.export.onnx_export import ExportConfig

    return ExportConfig(real_frames=train_cfg.data, parity_shapes=((1, 32, 32), (2, 64, 96)))


def _exported_with(run: Path, export_cfg) -> bool:
    try:
        return json.loads((run / "export_config.json").read_text()) == to_dict(export_cfg)
    except (OSError, json.JSONDecodeError):
        return False


def ensure_run(name: str, train_cfg: TrainConfig, bench: BenchConfig) -> Path:
    """runs/bench-NAME trained with `train_cfg` and exported; reused as is when both configs match."""
    from edgeae.export.onnx_export import export_onnx
    from edgeae.training.train import train

    run = Path(bench.runs_dir) / f"bench-{name}"
    export_cfg = _export_config(train_cfg)
    if not _matches(run, train_cfg):
        shutil.rmtree(run, ignore_errors=True)  # a bench-* folder is this suite's cache, trained by it
        print(f"training {run} ({train_cfg.model.name}, {train_cfg.task}, {train_cfg.epochs} epochs)", flush=True)
        train(train_cfg, run, progress=not bench.quick)
    if not _exported_with(run, export_cfg):
        for stale in [*run.glob("*.fp16.onnx"), *run.glob("*.int8.onnx")]:  # derived from the old export
            stale.unlink()
        export_onnx(run, export_cfg, progress=False)
    if name == "seed" and not bench.quick:  # parity and latency measure the seed model in every precision
        build_precisions(run)
    return run


def build_precisions(run: Path) -> dict[str, str]:
    """fp16 / int8 ONNX (and TensorRT engines) through 'edgeae build' where this edgeae has it and they are
    missing; returns {precision: why it is not there} for the ones that could not be built."""
    import importlib.util

    from edgeae import cli

    if importlib.util.find_spec("edgeae.export.tensorrt_build") is None:
        return {p: "this edgeae has no 'edgeae build' (issue 3)" for p in ("fp16", "int8")}
    problems = {}
    for precision in ("fp32", "fp16", "int8"):
        if precision != "fp32" and (run / f"encoder.{precision}.onnx").is_file():
            continue
        code = cli.main(["build", str(run), "--precision", precision])
        if code != 0:
            problems[precision] = f"'edgeae build {run} --precision {precision}' exited with {code}"
    return problems
