"""End-to-end frames per second of `edgeae run --task anomaly` on a video, with per-stage times.

    python benchmarks/pipeline_fps.py --run runs/demo --source data/opencv/vtest.avi [--video]

Calibrates the run first if it has no anomaly.json. Writes reports/pipeline_fps.json and prints the
--profile table. Target (issue 4): ≥ 25 frames/s on vtest.avi (768×576) with ONNX Runtime on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeae.config import atomic_write_json  # noqa: E402
from edgeae.runtime.pipeline import RunConfig, format_profile, run  # noqa: E402
from edgeae.runtime.tasks.anomaly import CALIBRATION_FILE, AnomalyConfig, calibrate_run  # noqa: E402

TARGET_FPS = 25.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="runs/demo")
    p.add_argument("--source", default="data/opencv/vtest.avi")
    p.add_argument("--frames", type=int, default=0, help="stop after N frames (0: the whole video)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    p.add_argument("--video", action="store_true", help="also write the annotated video (heatmap + boxes)")
    p.add_argument("--out", default="reports/pipeline_fps.json")
    args = p.parse_args(argv)

    if not (Path(args.run) / CALIBRATION_FILE).is_file():
        calibrate_run(args.run, args.source, AnomalyConfig(), limit=100, threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(run=args.run, task="anomaly", sources=(args.source,), threads=args.threads,
                        events=f"{tmp}/events.jsonl", out_video=f"{tmp}/anomaly.avi" if args.video else "",
                        max_frames=args.frames)
        summary = run(cfg, progress=False)
    report = {**summary, "source": args.source, "threads": args.threads, "video_written": args.video,
              "target_fps": TARGET_FPS, "meets_target": summary["fps"] >= TARGET_FPS,
              "machine": {"cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
                          "processor": platform.processor() or platform.machine()}}
    atomic_write_json(args.out, report)
    print(format_profile(summary))
    print(f"{'meets' if report['meets_target'] else 'BELOW'} the {TARGET_FPS:.0f} frames/s target; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
