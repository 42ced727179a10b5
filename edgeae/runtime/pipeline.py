"""`edgeae run`: the per-step loop from sources through the model and a task to the sinks.

One step takes the next frame of every active source (capture runs in the sources' own threads),
batches same-size frames into one inference call, lets the task score/clean them, and hands the
results to the sinks (video encoding runs in its own thread). Each stage is timed.

When every source is a file, inference runs in threads of its own, ahead of the loop: step N+k is read,
preprocessed and submitted, then step N's result is taken and post-processed and written while the steps
after it run. k is the model's streams (`Autoencoder.load(streams=0)`: what the tuner measured as the most
frames per second on this machine, usually 1 or 2), so up to k inference calls run at once, each on its share
of the cores; k + 1 batch buffers rotate. Results, events and their order are the same as one step at a time.
A live source runs one step at a time instead: running ahead would hold each result until the camera's next
frame.

However a run stops (its sources end, a stop key, Ctrl-C or SIGTERM, an error) its outputs are finalised
and the last event is `end` with the reason; a live source that gave up makes the run fail afterwards.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from edgeae.config import save_config
from edgeae.errors import EdgeAEError
from edgeae.outputs import refuse_overwriting_inputs
from edgeae.runtime.preprocess import fill_batch, padded_size
from edgeae.runtime.run_files import PRECISIONS, ROLES, engine_path, onnx_path
from edgeae.runtime.sources import END, CaptureOptions, FrameSource
from edgeae.runtime.tasks.base import TASKS, make_task

log = logging.getLogger("edgeae.runtime")

STAGES = ("decode", "preprocess", "infer", "postprocess", "write")
LIVE_WAIT_S = 0.04  # how long a step waits for a live source once another source has given a frame
MAX_THREADS = 256   # --threads above this is a typo, not a machine (ONNX Runtime would start them all)


@dataclass(frozen=True)
class RunConfig:
    """Everything `edgeae run` was asked to do; saved as JSON beside its first output."""

    run: str
    task: str = "anomaly"
    sources: tuple[str, ...] = ()
    backend: str = "onnxruntime"
    precision: str = "fp32"
    threads: int = 0            # ONNX Runtime intra-op threads (0: its default)
    streams: int = 0            # file sources: inference calls at once (0: the tuned choice, else 1); live: 1
    out_video: str = ""
    out_frames: str = ""
    events: str = ""
    show: bool = False
    side_by_side: bool = False  # denoise/reconstruct: input | output
    max_frames: int = 0         # per source; 0 = until the source ends
    reconnect_timeout: float = CaptureOptions.reconnect_timeout_s  # live sources; 0 = retry until stopped
    threshold: float | None = None  # anomaly: decide with this instead of the calibrated threshold
    out_maps: str = ""              # anomaly: folder for each frame's float32 per-pixel score map (.npy)

    def validate(self) -> None:
        if self.task not in TASKS:
            raise EdgeAEError(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if not self.sources:
            raise EdgeAEError("no --source given; pass a camera index, video, image folder, URL or GStreamer pipeline")
        if self.max_frames < 0:
            raise EdgeAEError("--max-frames must be 0 (all) or more")
        if not 0 <= self.threads <= MAX_THREADS:
            raise EdgeAEError(f"--threads must be 0 (the backend's default) to {MAX_THREADS}")
        if not 0 <= self.streams <= MAX_THREADS:
            raise EdgeAEError(f"--streams must be 0 (the tuned choice) to {MAX_THREADS}")
        if self.reconnect_timeout < 0:
            raise EdgeAEError("--reconnect-timeout must be 0 (retry until stopped) or more seconds")
        if (self.threshold is not None or self.out_maps) and self.task != "anomaly":
            raise EdgeAEError(f"--threshold and --out-maps are for --task anomaly, not {self.task}")
        if self.threshold is not None and not (math.isfinite(self.threshold) and self.threshold > 0):
            raise EdgeAEError(f"--threshold {self.threshold} must be a finite number above 0")


class StageTimer:
    """Seconds spent per stage over all steps; reported as mean milliseconds per step."""

    def __init__(self):
        self.total = dict.fromkeys(STAGES, 0.0)
        self.steps = 0

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.total[name] += time.perf_counter() - start

    def mean_ms(self) -> dict[str, float]:
        return {k: 1000 * v / max(1, self.steps) for k, v in self.total.items()}


class BatchBuffers:
    """Frames → N×3×H'×W' float32 RGB in [0,1], written into a buffer reused for every step of one shape."""

    def __init__(self, multiple: int):
        self.multiple = multiple
        self._buffers: dict[tuple, np.ndarray] = {}

    def fill(self, images: list[np.ndarray]) -> np.ndarray:
        h, w = padded_size(*images[0].shape[:2], self.multiple)
        shape = (len(images), 3, h, w)
        if shape not in self._buffers:
            self._buffers[shape] = np.empty(shape, np.float32)
        return fill_batch(images, self.multiple, self._buffers[shape])


def group_by_size(frames: list) -> list[list]:
    """Frames of one size share an inference call; sources of different sizes get one call each."""
    groups: dict[tuple, list] = {}
    for frame in frames:
        groups.setdefault(frame.image.shape[:2], []).append(frame)
    return list(groups.values())


class Pipeline:
    """Runs sources → model → task → sinks until every source has ended (or max_frames, or a stop key)."""

    def __init__(self, ae, sources: list, task, sinks, max_frames: int = 0, progress: bool = True,
                 overlap: bool | None = None):
        self.ae, self.sources, self.task, self.sinks = ae, sources, task, sinks
        self.max_frames, self.progress = max_frames, progress
        # overlap (default: when no source is live): inference runs ahead in threads of its own (module doc), as
        # many steps as the model serves calls at once.
        self.overlap = all(not s.live for s in sources) if overlap is None else overlap
        self.ahead = max(1, getattr(ae, "streams", 1)) if self.overlap else 0
        # One set per step in flight, plus the one being filled: a step keeps its batch until it is post-processed.
        self.buffers = tuple(BatchBuffers(ae.info.downsample) for _ in range(self.ahead + 1))
        # a model that takes frames as captured (uint8 BGR: the Triton client's --score-on-server) gets them so
        self.takes_frames = bool(getattr(ae, "takes_frames", False))
        # Steps submitted and not yet finished, oldest first: the capture events taken before the step, and its
        # (frames, batch, job) per frame size; job() returns the reconstruction: a Future's result with overlap,
        # the inference call itself without.
        self._pending: deque[tuple[list[dict], list[tuple[list, np.ndarray, Callable[[], np.ndarray]]]]] = deque()
        self.timer = StageTimer()
        self.event_counts: Counter = Counter()
        self.frames_done: Counter = Counter()
        self._sizes: dict[str, tuple] = {}
        self._ended: set[str] = set()         # sources whose END the loop has taken
        self._held_end: dict[str, dict] = {}  # a source's `source_end`, held back until its last frame is through
        self._step_events: list[dict] = []    # the step being gathered: its frames' size changes
        self._start = time.perf_counter()

    def run(self) -> dict:
        """Process everything; returns frames, fps and mean ms per stage (see `summary`).

        The progress bar shows only on a terminal (disable=None); log lines are printed above it.
        """
        self._start = time.perf_counter()
        total = sum(s.length for s in self.sources) if all(not s.live for s in self.sources) else None
        active = list(self.sources)
        with logging_redirect_tqdm([logging.getLogger("edgeae")]), \
                tqdm(total=total or None, unit="frame", desc=f"run {self.task.name}",
                     disable=None if self.progress else True) as bar, \
                (ThreadPoolExecutor(self.ahead, thread_name_prefix="edgeae-infer") if self.ahead else nullcontext()) as inference:
            try:
                while active and not self.sinks.stop_requested:
                    with self.timer.stage("decode"):
                        frames, active = self._gather(active)
                    if frames:
                        self._step(frames, inference)
                        bar.update(len(frames))
                    else:  # a source ended or a live one is late: nothing to overlap with
                        self._finish_pending()
                        self._forward_source_events()
                self._finish_pending()
            except KeyboardInterrupt:
                self._finish_pending()  # the frames in flight are written before the run ends
                raise
        self._forward_source_events()
        return self.summary(time.perf_counter() - self._start)

    def end_event(self, reason: str) -> dict:
        """The run's last event: why it stopped (complete, stopped, interrupted, gave_up, error) and its totals."""
        return {"event": "end", "reason": reason, "frames": sum(self.frames_done.values()),
                "seconds": round(time.perf_counter() - self._start, 3)}

    def _gather(self, active: list) -> tuple[list, list]:
        """The next frame of each source: files block (nothing dropped), live ones wait briefly."""
        frames, still = [], []
        for source in active:
            item = source.read(timeout=(LIVE_WAIT_S if frames else 0.5) if source.live else None)
            if item is END:
                self._ended.add(source.name)
                continue
            still.append(source)
            if item is not None:
                frames.append(item)
                self._note_size(item)
                self.frames_done[source.name] += 1
                if self.max_frames and self.frames_done[source.name] >= self.max_frames:
                    still.pop()
        return frames, still

    def _note_size(self, frame) -> None:
        size = frame.image.shape[:2]
        previous = self._sizes.get(frame.source)
        if previous is not None and previous != size:
            # logged by the sinks; buffers follow the new size, video output is resized to the first. Emitted with
            # this step, before its frames, not now: earlier steps may still be in flight.
            self._step_events.append({"event": "size_change", "source": frame.source, "frame": frame.index,
                                      "from": list(previous), "to": list(size)})
        self._sizes[frame.source] = size

    def _step(self, frames: list, inference: ThreadPoolExecutor | None) -> None:
        """Preprocess and submit this step, then finish the oldest steps until at most `ahead` are in flight."""
        groups = group_by_size(frames)
        buffers = self.buffers[self.timer.steps % len(self.buffers)]
        with self.timer.stage("preprocess"):
            batches = [np.stack([f.image for f in group]) if self.takes_frames else buffers.fill([f.image for f in group])
                       for group in groups]
        jobs = [(group, batch, inference.submit(self.ae.reconstruct_batch, batch).result if inference is not None
                 else partial(self.ae.reconstruct_batch, batch)) for group, batch in zip(groups, batches)]
        # Capture events taken now go after the earlier steps' frames and before this step's: a `gap` precedes the
        # first frame after it, a `source_end` follows the source's last frame.
        events, self._step_events = self._take_source_events() + self._step_events, []
        self._pending.append((events, jobs))
        while len(self._pending) > self.ahead:
            self._finish_oldest()
        self.timer.steps += 1

    def _finish_pending(self) -> None:
        """Finish every step in flight (with overlap: wait for each in turn)."""
        while self._pending:
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        """Emit the oldest step's capture events, infer it (with overlap: wait for it), then its task and sinks."""
        events, jobs = self._pending.popleft()
        for event in events:
            self._emit(event)
        for group, batch, job in jobs:
            with self.timer.stage("infer"):
                recon = job()
            with self.timer.stage("postprocess"):
                results = self.task.process(group, batch, recon, self.sinks.draw)
            with self.timer.stage("write"):
                for frame, result in zip(group, results):
                    self.sinks.frame(frame.source, frame.index, result.image, frame.file)
                    if result.score_map is not None:
                        self.sinks.score_map(frame.source, frame.index, result.score_map)
                    for event in result.events:
                        self._emit(event)

    def _emit(self, event: dict) -> None:
        self.event_counts[event["event"]] += 1
        self.sinks.event(event)

    def _forward_source_events(self) -> None:
        for event in self._take_source_events():
            self._emit(event)

    def _take_source_events(self) -> list[dict]:
        """The capture events so far; a source's `source_end` waits until the loop has taken its last frame."""
        events = []
        for source in self.sources:
            while not source.events.empty():
                event = source.events.get_nowait()
                if event["event"] == "source_end":
                    self._held_end[source.name] = event
                else:
                    events.append(event)
            if source.name in self._ended and source.name in self._held_end:
                events.append(self._held_end.pop(source.name))
        return events

    def summary(self, seconds: float) -> dict:
        frames = sum(self.frames_done.values())
        return {"task": self.task.name, "model": self.ae.describe(), "frames": frames, "steps": self.timer.steps,
                "overlap": self.overlap, "steps_ahead": self.ahead,
                "seconds": round(seconds, 3),
                "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
                "stage_ms": {k: round(v, 3) for k, v in self.timer.mean_ms().items()},
                "capture_ms_per_frame": {s.name: round(1000 * s.read_seconds / max(1, self.frames_done[s.name]), 3)
                                         for s in self.sources},
                "live_frames_dropped": {s.name: s.dropped for s in self.sources if s.live},
                "gave_up": {s.name: s.gave_up for s in self.sources if s.gave_up},
                "events": dict(self.event_counts)}


def format_profile(summary: dict) -> str:
    """The --profile table: mean ms per step for each stage, and the end-to-end rate."""
    lines = [f"model: {summary['model']}"] if summary.get("model") else []
    lines.append(f"{'stage':<12} {'ms/step':>9}")
    lines += [f"{name:<12} {ms:9.2f}" for name, ms in summary["stage_ms"].items()]
    lines.append(f"{'total':<12} {sum(summary['stage_ms'].values()):9.2f}")
    lines.append(f"{summary['frames']} frames in {summary['steps']} steps, {summary['seconds']:.2f} s: "
                 f"{summary['fps']:.1f} frames/s end to end")
    if summary.get("overlap"):
        ahead = summary.get("steps_ahead", 1)
        lines.append(f"inference ran {ahead} step{'s' * (ahead != 1)} ahead in {ahead} thread{'s' * (ahead != 1)} of its "
                     "own: 'infer' is the time waited for it")
    for name, ms in summary["capture_ms_per_frame"].items():
        lines.append(f"capture thread {name}: {ms:.2f} ms/frame read+decode (overlapped)")
    return "\n".join(lines)


def source_names(specs: tuple[str, ...]) -> list[str]:
    """Names used in events and output files: the spec itself, suffixed #i where two are alike."""
    counts = Counter(specs)
    return [spec if counts[spec] == 1 else f"{spec}#{i}" for i, spec in enumerate(specs)]


def load_model(cfg: RunConfig, streams: int = 1):
    """The run's model; streams: inference calls it will serve at once (0: the tuned number, see Autoencoder.load)."""
    from edgeae.runtime.autoencoder import Autoencoder

    options = {"threads": cfg.threads} if cfg.threads else {}
    return Autoencoder.load(cfg.run, backend=cfg.backend, precision=cfg.precision, streams=streams, **options)


def open_sources(cfg: RunConfig) -> list:
    """Open every source before any output is written; a failure closes the ones already open."""
    options = CaptureOptions(reconnect_timeout_s=cfg.reconnect_timeout)
    opened = []
    try:
        for spec, name in zip(cfg.sources, source_names(cfg.sources)):
            opened.append(FrameSource(spec, name, options=options))
    except BaseException:
        for source in opened:
            source.close()
        raise
    return opened


def config_path(first_output: str) -> Path:
    """The RunConfig saved beside the first output: out.avi → out.avi.run.json."""
    return Path(f"{first_output}.run.json")


def check_outputs(cfg: RunConfig) -> None:
    """Refuse any output (as the sinks name them, per source) that is one of the run's inputs."""
    from edgeae.runtime.sinks import output_paths

    paths = output_paths(source_names(cfg.sources), cfg.out_video, cfg.out_frames, cfg.events, cfg.out_maps)
    outputs = paths.labelled()
    first = next((p for p in (cfg.out_video, cfg.out_frames, cfg.events, cfg.out_maps) if p), "")
    if first:
        outputs["the saved run config"] = config_path(first)
    inputs = {f"--source {spec}": spec for spec in cfg.sources} | {"run folder": cfg.run}
    for role in ROLES:
        for precision in PRECISIONS:
            for path in (onnx_path(cfg.run, role, precision), engine_path(cfg.run, role, precision)):
                inputs[f"model file {path.name}"] = path
    refuse_overwriting_inputs(outputs, inputs)


def run(cfg: RunConfig, progress: bool = True) -> dict:
    """Load the model and task, open sources and sinks, run to the end; returns the summary.

    Raises EdgeAEError, after finalising the outputs, when a live source gave up (down longer than
    `reconnect_timeout`): a service must not look as if it finished normally.
    """
    cfg.validate()
    check_outputs(cfg)
    sources = open_sources(cfg)  # first: whether any is live decides how the model is loaded
    try:
        # Files run ahead with several inference calls at once where that gives more frames per second here
        # (--streams 0: the tuner's measured choice); a live source runs one frame at a time, for latency.
        with load_model(cfg, cfg.streams if all(not s.live for s in sources) else 1) as ae:
            task = make_task(cfg.task, cfg.run, ae.info, cfg.side_by_side)
            if cfg.threshold is not None:  # validate(): both only for the anomaly task
                task.set_threshold(cfg.threshold)
            if cfg.out_maps:
                task.full_maps = True
            summary = _run_to_sinks(cfg, ae, task, sources, progress)
    finally:
        for source in sources:
            source.close()
    if summary["gave_up"]:
        name, why = next(iter(summary["gave_up"].items()))
        raise EdgeAEError(f"gave up on source {name}, down for longer than --reconnect-timeout "
                          f"{cfg.reconnect_timeout:g} s (0: retry until stopped): {why}")
    return summary


def _run_to_sinks(cfg: RunConfig, ae, task, sources: list, progress: bool) -> dict:
    """Run the pipeline into the sinks; they are finalised, `end` written last, however it stops."""
    from edgeae.runtime.sinks import SinkSet

    fps = next((s.fps for s in sources if s.fps), 25.0)
    sinks = SinkSet([s.name for s in sources], cfg.out_video, cfg.out_frames, cfg.events, cfg.show, fps,
                    out_maps=cfg.out_maps)
    pipeline = Pipeline(ae, sources, task, sinks, cfg.max_frames, progress)
    reason = "error"
    try:
        if sinks.first_output:
            save_config(cfg, config_path(sinks.first_output))
        for source in sources:
            source.start()
        summary = pipeline.run()
        reason = "gave_up" if summary["gave_up"] else "stopped" if sinks.stop_requested else "complete"
        return summary
    except KeyboardInterrupt:
        reason = "interrupted"
        raise
    finally:
        sinks.close(pipeline.end_event(reason))


class _JsonLines(logging.Formatter):
    """One JSON object per record, an event's fields at the top level: what a journal or collector parses."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"level": record.levelname.lower()}
        fields = getattr(record, "event_fields", None)
        entry |= fields if fields else {"message": record.getMessage()}
        return json.dumps(entry, separators=(",", ":"), default=str)


@contextmanager
def run_logging(stream=None):
    """Log `edgeae.*` to stderr for a run: `edgeae run: ...` lines on a terminal, else one JSON line each."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("edgeae run: %(message)s") if stream.isatty() else _JsonLines())
    logger = logging.getLogger("edgeae")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
