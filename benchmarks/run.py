"""The full benchmark (`make bench`): train or reuse the models, run every section, write reports/.

    python -m benchmarks.run                 # full run: reports/bench.json, bench.md, PNG plots
    python -m benchmarks.run --quick         # small shapes, few repetitions: checks the machinery

Each section returns its numbers or {"skipped": "reason"}; nothing is left blank or made up.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from benchmarks.context import Context
from benchmarks.models import BenchConfig, ensure_runs
from edgeae.config import to_dict
from edgeae.errors import EdgeAEError
from edgeae.runtime.benchmark import machine_threads, pin_threads
from edgeae.runtime.tuning import TuneConfig, cpu_info, tune


def sections() -> dict[str, Callable[[Context], dict]]:
    from benchmarks.anomaly import anomaly
    from benchmarks.codec import codec
    from benchmarks.compression import compression
    from benchmarks.denoise import denoise
    from benchmarks.latency import latency
    from benchmarks.parity import parity
    from benchmarks.pipeline import pipeline

    return {"parity": parity, "latency": latency, "pipeline": pipeline, "denoise": denoise,
            "anomaly": anomaly, "compression": compression, "codec": codec}


def machine(threads: int) -> dict:
    import cv2
    import numpy
    import onnxruntime
    import torch

    import edgeae

    cpu = cpu_info()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(), "cpu": cpu.model, "isa": list(cpu.isa), "cpu_summary": cpu.describe(),
            "int8_fast_path": cpu.int8_fast_path, "cores_usable": machine_threads(), "threads": threads,
            "os": platform.platform(), "python": platform.python_version(), "edgeae": edgeae.__version__,
            "git_commit": commit, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "opencv": cv2.__version__, "numpy": numpy.__version__}


def tune_runs(cfg: BenchConfig, runs: dict[str, Path]) -> dict:
    """Tune every model the sections run (RUN/tuning.json) on this machine, in this run: the tuned default they
    load is then the one measured beside PyTorch. Quick mode: a tiny budget on small frames."""
    quick = TuneConfig(budget_s=1.0, shapes=((1, 3, 64, 96),), min_rounds=1, max_rounds=2)
    out = {}
    for run in dict.fromkeys(runs.values()):
        print(f"bench: tuning {run} …", flush=True)
        sidecar = tune(run, quick if cfg.quick else TuneConfig(), progress=False)
        out[str(run)] = {k: sidecar[k] for k in ("cpu", "seconds", "shapes", "baseline", "winner", "speedup_vs_baseline",
                                                 "int8", "throughput", "unavailable", "stages")}
    return out


def run_sections(ctx: Context, only: list[str] | None = None) -> dict:
    results = {}
    for name, section in sections().items():
        if only and name not in only:
            results[name] = {"skipped": f"not selected (--only {','.join(only)})"}
            continue
        print(f"bench: {name} …", flush=True)
        t0 = time.perf_counter()
        try:
            results[name] = section(ctx)
        except (EdgeAEError, ImportError) as e:
            results[name] = {"skipped": str(e)}
        results[name]["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def benchmark(cfg: BenchConfig, only: list[str] | None = None) -> dict:
    """Run the suite; returns the report (with "_" keys holding images for the plots)."""
    if not Path(cfg.footage).is_file():
        raise EdgeAEError(f"footage {cfg.footage} not found; run 'make data' or pass --footage")
    threads = cfg.threads or machine_threads()
    pin_threads(threads)
    t0 = time.perf_counter()
    runs = ensure_runs(cfg)
    train_s = time.perf_counter() - t0
    ctx = Context(cfg, runs, threads)
    report = {"machine": machine(threads), "config": to_dict(cfg), "runs": {k: str(v) for k, v in runs.items()},
              "train_seconds": round(train_s, 1), "tuning": tune_runs(cfg, runs), "sections": run_sections(ctx, only)}
    from benchmarks.targets import targets

    report["targets"] = targets(report["sections"], report["machine"], report["tuning"].get(str(runs["seed"]), {}))
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--footage", default=BenchConfig.footage, help="video for training, anomaly and pipeline")
    parser.add_argument("--runs", default=BenchConfig.runs_dir, help="where the runs/bench-* models live")
    parser.add_argument("--out", default=BenchConfig.out, help="report folder")
    parser.add_argument("--quick", action="store_true", help="small shapes, few repetitions, tiny models")
    parser.add_argument("--threads", type=int, default=0, help="threads for every library (default: usable cores)")
    parser.add_argument("--readme", help="also rewrite the benchmark block of this README with the new tables")
    parser.add_argument("--only", help="comma-separated sections to run (others are reported as skipped)")
    args = parser.parse_args(argv)
    cfg = BenchConfig(footage=args.footage, runs_dir=args.runs, out=args.out, quick=args.quick, threads=args.threads)
    try:
        report = benchmark(cfg, args.only.split(",") if args.only else None)
        from benchmarks.report import write_reports

        paths = write_reports(report, Path(cfg.out), name="bench")
        if args.readme:
            from benchmarks.report import update_readme

            update_readme(Path(args.readme), report, "make bench")
            paths.append(Path(args.readme))
    except EdgeAEError as e:
        print(f"benchmarks.run: error: {e}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
