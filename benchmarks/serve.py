"""Load test of `edgeae serve`: N simulated cameras against one Triton server on loopback.

    python -m benchmarks.serve --run runs/bench-seed --footage data/opencv/vtest.avi --json reports/serve.json --plot reports/serve.png

How the cameras are simulated (said in the report too): each camera is a thread in this process that replays
frames of the footage (resized to --size, default 640×480) at --fps (default 10). Frame i is due at
t0 + i/fps; the camera sends it and waits for the answer. Two kinds of camera client (--kinds), each over the
same ServerLink as `edgeae run --backend triton` (reconnect, `dropped` events):
  reconstruct  the client path of `edgeae run --backend triton`: preprocessed here, float32 NCHW to
               `<run>-reconstruct`, the float32 reconstruction back (the client keeps the task);
  anomaly      `edgeae run --backend triton --score-on-server`: the uint8 BGR frame as captured to
               `<run>-anomaly`, its score and reduced map back (the server scores): a quarter of the bytes in,
               a small answer out.
A camera that is still waiting when later frames fall due skips to the newest one, as a live source does
(counted as `skipped`, the camera overrun); a frame the server cannot take is `dropped` (a `dropped` event).
Throughput is answered frames per second over the measured seconds; latency is request to answer. Every N in
--cameras is run against a server with dynamic batching (--max-batch, --queue-delay-us) and against one
serving batch 1 (max batch 1: every request alone), same instances and threads.
Traffic goes to 127.0.0.1 only; counts and times are bounded by --cameras, --seconds and --frames.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.tasks.base import FrameResult

CAMERAS = (1, 2, 4, 8, 16)
KINDS = ("reconstruct", "anomaly")
SIMULATION = ("threads in one client process replaying {footage} at {fps:g} fps, {w}x{h}, each sending one frame "
              "per request and waiting for the answer: `reconstruct` float32 NCHW in and out, as `edgeae run "
              "--backend triton`; `anomaly` the uint8 BGR frame in, score and reduced map out, as with --score-on-server; a "
              "camera still waiting when newer frames fall due skips to the newest (`skipped`)")


class ReceiveTask:
    """The simulated camera's task: records each answered frame (no post-processing: the load is the server's)."""

    name = "receive"

    def process(self, frames: list, batch: np.ndarray, recon: np.ndarray, draw: bool) -> list[FrameResult]:
        return [FrameResult(image=None, events=[{"event": "frame", "source": f.source, "frame": f.index}])
                for f in frames]


@dataclass
class SimFrame:
    image: np.ndarray
    index: int
    source: str
    timestamp: float = 0.0
    file: str = ""


@dataclass
class CameraLog:
    """What one simulated camera saw: answered, dropped and skipped frame indices, latencies, events in order."""

    name: str
    answered: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    outputs: dict[int, np.ndarray] = field(default_factory=dict)  # kept only when asked (`keep` frames)
    error: str = ""


def frame_sender(client):
    """image → the server's answer (None: dropped), for a serve.client.RemoteModel or ServerScorer."""
    if getattr(client, "takes_frames", False):  # ServerScorer: the frame as captured, scored on the server
        return lambda image: client.reconstruct_batch(image[None])
    from edgeae.runtime.pipeline import BatchBuffers

    buffers = BatchBuffers(client.info.downsample)
    return lambda image: client.reconstruct_batch(buffers.fill([image]))


def open_client(kind: str, run: str, url: str):
    """The client path of `edgeae run --backend triton` (anomaly: with --score-on-server)."""
    from edgeae.runtime.sources import CaptureOptions
    from edgeae.serve.client import RemoteModel, ServerScorer

    options = CaptureOptions(reconnect_timeout_s=0)
    return (ServerScorer if kind == "anomaly" else RemoteModel).load(run, url, options=options)


def read_frames(footage: str, count: int, size: tuple[int, int] | None) -> list[np.ndarray]:
    """`count` frames of the footage, resized to size (h, w) with INTER_AREA; None: native size."""
    from edgeae.runtime.sources import iter_video

    frames = list(iter_video(footage, limit=count))
    if size is not None:
        frames = [cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in frames]
    return frames


def run_camera(name: str, model, frames: list[np.ndarray], fps: float, stop: threading.Event,
               log: CameraLog, keep: int = 0, max_frames: int = 0) -> None:
    """Replay `frames` at `fps` through `model` (a serve.client.RemoteModel or ServerScorer) until `stop`
    (or max_frames)."""
    from edgeae.serve.client import GapAwareTask

    task = GapAwareTask(ReceiveTask(), model.link)
    send = frame_sender(model)
    start, i = time.perf_counter(), 0
    try:
        while not stop.is_set() and (not max_frames or i < max_frames):
            due = math.floor((time.perf_counter() - start) * fps)
            if due < i:  # early: a camera gives frame i at its time, not before
                stop.wait(start + i / fps - time.perf_counter())
                continue
            if due > i:  # late: frames i … due-1 were replaced by newer ones before we could take them
                log.skipped.extend(range(i, due))
                i = due
            frame = SimFrame(frames[i % len(frames)], i, name)
            sent = time.perf_counter()
            answer = send(frame.image)
            if answer is not None:
                log.latencies_ms.append(1000 * (time.perf_counter() - sent))
                if i < keep:
                    log.outputs[i] = answer.copy()
            for result in task.process([frame], None, answer, draw=False):
                for event in result.events:
                    log.events.append(event)
                    if event["event"] == "frame":
                        log.answered.append(event["frame"])
                    elif event["event"] == "dropped":
                        log.dropped.extend(event["frames"])
            i += 1
    except Exception as e:  # a camera that fails says why in the report; the others go on
        log.error = f"{type(e).__name__}: {e}"


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def measure(run: str, url: str, frames: list[np.ndarray], cameras: int, fps: float, seconds: float,
            warmup_s: float = 1.0, kind: str = "reconstruct") -> dict:
    """`cameras` simulated cameras of `kind` for warmup + `seconds`; the numbers cover the last `seconds` only."""
    models = [open_client(kind, run, url) for _ in range(cameras)]
    logs = [CameraLog(f"camera{c}") for c in range(cameras)]
    stop = threading.Event()
    threads = [threading.Thread(target=run_camera, args=(log.name, m, frames, fps, stop, log), daemon=True)
               for m, log in zip(models, logs)]
    for t in threads:
        t.start()
    stop.wait(warmup_s)
    marks = [(len(log.answered), len(log.latencies_ms), len(log.dropped), len(log.skipped)) for log in logs]
    t0 = time.perf_counter()
    stop.wait(seconds)
    counts = [(len(log.answered), len(log.latencies_ms), len(log.dropped), len(log.skipped)) for log in logs]
    elapsed = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join(timeout=60)
    for m in models:
        m.close()
    answered = sum(c[0] - m[0] for c, m in zip(counts, marks))
    latencies = [x for log, (_, l0, _, _), (_, l1, _, _) in zip(logs, marks, counts) for x in log.latencies_ms[l0:l1]]
    return {"cameras": cameras, "offered_fps": round(cameras * fps, 1), "seconds": round(elapsed, 2),
            "frames_per_s": round(answered / elapsed, 2), "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99), "answered": answered,
            "dropped": sum(c[2] - m[2] for c, m in zip(counts, marks)),
            "skipped": sum(c[3] - m[3] for c, m in zip(counts, marks)),
            "errors": [log.error for log in logs if log.error]}


@dataclass(frozen=True)
class LoadTestConfig:
    run: str
    footage: str = "data/opencv/vtest.avi"
    cameras: tuple[int, ...] = CAMERAS
    kinds: tuple[str, ...] = KINDS
    fps: float = 10.0
    seconds: float = 4.0
    size: tuple[int, int] | None = (480, 640)
    frames: int = 40              # distinct footage frames replayed in a loop
    max_batch: int = 8
    queue_delay_us: int = 5000
    instances: int = 1
    threads: int = 0
    serve_python: str = ""


def load_test(cfg: LoadTestConfig, progress=print) -> dict:
    """Both serving modes at every camera count; each mode on its own server process."""
    from edgeae.serve import launch
    from edgeae.serve.config import ServeConfig

    from edgeae.runtime.tasks.anomaly import CALIBRATION_FILE

    if "anomaly" in cfg.kinds and not (Path(cfg.run) / CALIBRATION_FILE).is_file():
        raise EdgeAEError(f"{cfg.run} is not calibrated, so its server has no anomaly model: run 'edgeae calibrate "
                          f"{cfg.run} --data FOOTAGE' or pass --kinds reconstruct")
    load_at_start = os.getloadavg()  # other work on the machine: the numbers are measured under it
    report = launch.serve_python(cfg.serve_python)
    frames = read_frames(cfg.footage, cfg.frames, cfg.size)
    h, w = frames[0].shape[:2]
    modes = {"dynamic batching": (cfg.max_batch, cfg.queue_delay_us), "batch 1": (1, 0)}
    results: dict[str, dict] = {kind: {} for kind in cfg.kinds}
    for mode, (max_batch, delay) in modes.items():
        http, grpc, metrics = launch.free_ports(3)
        serve_cfg = ServeConfig(runs=(cfg.run,), http_port=http, grpc_port=grpc, metrics_port=metrics,
                                max_batch=max_batch, queue_delay_us=delay, instances=cfg.instances, threads=cfg.threads)
        server = launch.start(serve_cfg, report)
        try:
            info = server.wait_ready()
            for kind in cfg.kinds:
                rows = []
                for n in cfg.cameras:
                    progress(f"serve bench: {kind}, {mode}, {n} camera(s) …")
                    rows.append(measure(cfg.run, server.url, frames, n, cfg.fps, cfg.seconds, kind=kind))
                results[kind][mode] = {"max_batch": max_batch, "queue_delay_us": delay,
                                       "form": info["models"][0]["form"], "rows": rows}
        finally:
            server.stop()
    speedups = {kind: [{"cameras": dyn["cameras"],
                        "throughput_x": round(dyn["frames_per_s"] / one["frames_per_s"], 2) if one["frames_per_s"] else None,
                        "p99_dynamic_ms": dyn["p99_ms"], "p99_batch1_ms": one["p99_ms"]}
                       for dyn, one in zip(by_mode["dynamic batching"]["rows"], by_mode["batch 1"]["rows"])]
                for kind, by_mode in results.items()}
    import edgeae
    from edgeae.runtime.tuning import cpu_info

    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_info().describe(), "load_average_at_start": [round(x, 2) for x in load_at_start], "python_client": platform.python_version(), "serve_python": report.python,
            "edgeae": edgeae.__version__, "run": cfg.run, "frame_size": [h, w], "fps_per_camera": cfg.fps,
            "seconds_per_point": cfg.seconds, "instances": cfg.instances,
            "simulation": SIMULATION.format(footage=Path(cfg.footage).name, fps=cfg.fps, w=w, h=h),
            "kinds": results, "speedup": speedups}


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(result["kinds"])
    fig, axes = plt.subplots(len(kinds), 2, figsize=(10, 4 * len(kinds)), squeeze=False)
    for (left, right), kind in zip(axes, kinds):
        modes = result["kinds"][kind]
        for mode, data in modes.items():
            n = [r["cameras"] for r in data["rows"]]
            left.plot(n, [r["frames_per_s"] for r in data["rows"]], marker="o", label=mode)
            right.plot(n, [r["p99_ms"] or float("nan") for r in data["rows"]], marker="o", label=mode)
        n = [r["cameras"] for r in modes["batch 1"]["rows"]]
        left.plot(n, [c * result["fps_per_camera"] for c in n], ls=":", color="grey", label="offered")
        for ax, label in ((left, f"{kind}: answered frames/s"), (right, f"{kind}: p99 latency (ms)")):
            ax.set_xscale("log", base=2)
            ax.set_xticks(n, [str(x) for x in n])
            ax.set_xlabel("simulated cameras")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
    h, w = result["frame_size"]
    fig.suptitle(f"edgeae serve on {result['cpu'].split(';')[0]}: {w}x{h} at {result['fps_per_camera']:g} fps per camera")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_result(result: dict) -> str:
    lines = [f"edgeae serve load test, {result['date']}, {result['cpu']}, load average at start "
             f"{result['load_average_at_start'][0]} (other work shares the cores)", f"cameras: {result['simulation']}",
             f"{'kind':12} {'mode':18} {'cameras':>7} {'offered':>8} {'frames/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
             f"{'dropped':>8} {'skipped':>8}"]
    for kind, modes in result["kinds"].items():
        for mode, data in modes.items():
            for r in data["rows"]:
                lines.append(f"{kind:12} {mode:18} {r['cameras']:7d} {r['offered_fps']:8.1f} {r['frames_per_s']:9.2f} "
                             f"{r['p50_ms'] or 0:8.1f} {r['p99_ms'] or 0:8.1f} {r['dropped']:8d} {r['skipped']:8d}")
    for kind, rows in result["speedup"].items():
        lines.append(f"{kind}: dynamic batching vs batch 1: " + ", ".join(f"{s['cameras']} cam {s['throughput_x']}×"
                                                                          for s in rows))
    forms = {data["form"] for modes in result["kinds"].values() for data in modes.values()}
    lines.append(f"server form: {'; '.join(sorted(forms))}")
    return "\n".join(lines)


def serve_section(ctx) -> dict:
    """`make bench`'s serve section: a shortened load test on the seed run, skipped where no server can start."""
    cfg = LoadTestConfig(run=str(ctx.runs["seed"]), footage=ctx.cfg.footage,
                         cameras=(1, 8) if ctx.cfg.quick else CAMERAS, seconds=1.5 if ctx.cfg.quick else 4.0,
                         size=(96, 128) if ctx.cfg.quick else (480, 640), frames=8 if ctx.cfg.quick else 40)
    return load_test(cfg, progress=lambda line: print(line, flush=True))


def parse_size(text: str) -> tuple[int, int] | None:
    if text == "native":
        return None
    w, _, h = text.partition("x")
    if not (w.isdigit() and h.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH (e.g. 640x480) or 'native'")
    return int(h), int(w)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="exported run folder to serve")
    parser.add_argument("--footage", default=LoadTestConfig.footage)
    parser.add_argument("--cameras", default=",".join(map(str, CAMERAS)), help="camera counts, comma-separated")
    parser.add_argument("--kinds", default=",".join(KINDS), help="camera clients, comma-separated: "
                        "reconstruct (float32, as edgeae run --backend triton), anomaly (uint8 frame in, score out)")
    parser.add_argument("--fps", type=float, default=LoadTestConfig.fps, help="frames per second per camera")
    parser.add_argument("--seconds", type=float, default=LoadTestConfig.seconds, help="measured seconds per point")
    parser.add_argument("--size", type=parse_size, default=(480, 640), help="WxH the frames are resized to, or native")
    parser.add_argument("--max-batch", type=int, default=LoadTestConfig.max_batch)
    parser.add_argument("--queue-delay-us", type=int, default=LoadTestConfig.queue_delay_us)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads per server instance")
    parser.add_argument("--serve-python", default="", help="interpreter for the server (default: .venv-serve's)")
    parser.add_argument("--json", help="write the numbers here")
    parser.add_argument("--plot", help="write the throughput/latency plot here (PNG)")
    args = parser.parse_args(argv)
    cameras = tuple(int(c) for c in args.cameras.split(","))
    kinds = tuple(args.kinds.split(","))
    if not kinds or set(kinds) - set(KINDS):
        parser.error(f"--kinds: comma-separated from {', '.join(KINDS)}")
    if not cameras or min(cameras) < 1 or max(cameras) > 64 or not 0 < args.seconds <= 60 or not 0 < args.fps <= 60:
        parser.error("cameras 1-64, seconds (0, 60], fps (0, 60]: the load test stays bounded")
    cfg = LoadTestConfig(run=args.run, footage=args.footage, cameras=cameras, kinds=kinds, fps=args.fps, seconds=args.seconds,
                         size=args.size, max_batch=args.max_batch, queue_delay_us=args.queue_delay_us,
                         instances=args.instances, threads=args.threads, serve_python=args.serve_python)
    try:
        result = load_test(cfg)
    except EdgeAEError as e:
        print(f"benchmarks.serve: error: {e}", file=sys.stderr)
        return 2
    print(format_result(result))
    if args.json:
        from edgeae.config import atomic_write_json

        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")
    if args.plot:
        plot(result, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
