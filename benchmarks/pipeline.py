"""Pipeline frames per second on the footage, per task, with the time of each stage.

Runs edgeae's own camera pipeline (`edgeae run`, edgeae/runtime/pipeline.py) so the numbers are the
product's: its stages are decode, preprocess, infer (encoder + decoder), postprocess (the task) and
write (events). The anomaly task is calibrated on the footage first when the run has no threshold.
"""

from __future__ import annotations

import tempfile

from benchmarks.context import Context
from benchmarks.models import DENOISE_VARIANT
from edgeae.runtime.pipeline import STAGES, RunConfig, run
from edgeae.runtime.tasks.anomaly import CALIBRATION_FILE, AnomalyConfig, calibrate_run


def _run_task(ctx: Context, run_dir, task: str, frames: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        # backend auto, threads 0, streams 0: the fp32 form, settings and streams RUN/tuning.json picked on this machine
        cfg = RunConfig(run=str(run_dir), task=task, sources=(ctx.cfg.footage,), backend="auto", threads=0,
                        events=f"{tmp}/events.jsonl", max_frames=frames)
        summary = run(cfg, progress=False)
    return {"frames": summary["frames"], "fps": summary["fps"], "ms_per_frame": summary["stage_ms"],
            "model": summary.get("model", ""), "steps_ahead": summary.get("steps_ahead", 0)}


def pipeline(ctx: Context) -> dict:
    frames = 24 if ctx.cfg.quick else 200
    seed = ctx.runs["seed"]
    if not (seed / CALIBRATION_FILE).is_file():
        calibrate_run(str(seed), ctx.cfg.footage, AnomalyConfig(), limit=24 if ctx.cfg.quick else 100,
                      threads=ctx.threads, progress=False)
    tasks = {"reconstruct (seed)": (seed, "reconstruct"), "anomaly (seed)": (seed, "anomaly"),
             f"denoise ({DENOISE_VARIANT})": (ctx.runs[f"denoise-{DENOISE_VARIANT}"], "denoise")}
    results = {name: _run_task(ctx, run_dir, task, frames) for name, (run_dir, task) in tasks.items()}
    return {"source": ctx.cfg.footage, "backend": "auto: the tuned fp32 default",
            "model": results["anomaly (seed)"]["model"], "stages": list(STAGES), "tasks": results,
            "implementation": "edgeae/runtime/pipeline.py (`edgeae run`), one frame per step, the tuned streams in flight"}
