"""`edgeae run`: the per-step loop from sources through the model and a task to the sinks.

One step takes the next frame of every active source (capture runs in the sources' own threads),
batches same-size frames into one inference call, lets the task score/clean them, and hands the
results to the sinks (video encoding runs in its own thread). Each stage is timed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeae.config import save_config
from edgeae.errors import EdgeAEError
from edgeae.runtime.preprocess import pad_to_multiple, padded_size
from edgeae.runtime.sources import END, FrameSource

log = logging.getLogger("edgeae.runtime")

TASKS = ("anomaly", "denoise", "reconstruct")
STAGES = ("decode", "preprocess", "infer", "postprocess", "write")
LIVE_WAIT_S = 0.04  # how long a step waits for a live source once another source has given a frame


@dataclass(frozen=True)
class RunConfig:
    """Everything `edgeae run` was asked to do; saved as JSON beside its first output."""

    run: str
    task: str = "anomaly"
    sources: tuple[str, ...] = ()
    backend: str = "onnxruntime"
    precision: str = "fp32"
    threads: int = 0            # ONNX Runtime intra-op threads (0: its default)
    out_video: str = ""
    out_frames: str = ""
    events: str = ""
    show: bool = False
    side_by_side: bool = False  # denoise/reconstruct: input | output
    max_frames: int = 0         # per source; 0 = until the source ends

    def validate(self) -> None:
        if self.task not in TASKS:
            raise EdgeAEError(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if not self.sources:
            raise EdgeAEError("no --source given; pass a camera index, video, image folder, URL or GStreamer pipeline")
        if self.max_frames < 0:
            raise EdgeAEError("--max-frames must be 0 (all) or more")


@dataclass
class FrameResult:
    """What a task made of one frame: an image for the visual sinks (None if not drawn) and events."""

    image: np.ndarray | None
    events: list[dict] = field(default_factory=list)


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

    SCALE = np.float32(1 / 255)

    def __init__(self, multiple: int):
        self.multiple = multiple
        self._buffers: dict[tuple, np.ndarray] = {}

    def fill(self, images: list[np.ndarray]) -> np.ndarray:
        h, w = padded_size(*images[0].shape[:2], self.multiple)
        shape = (len(images), 3, h, w)
        if shape not in self._buffers:
            self._buffers[shape] = np.empty(shape, np.float32)
        batch = self._buffers[shape]
        for i, image in enumerate(images):
            # cv2.split gives contiguous planes; scaling each straight into its RGB slot is one pass
            # per plane, about 3× faster than a strided BGR→RGB transpose + astype.
            for c, plane in enumerate(cv2.split(pad_to_multiple(image, self.multiple))):
                np.multiply(plane, self.SCALE, out=batch[i, 2 - c], casting="unsafe")
        return batch


def group_by_size(frames: list) -> list[list]:
    """Frames of one size share an inference call; sources of different sizes get one call each."""
    groups: dict[tuple, list] = {}
    for frame in frames:
        groups.setdefault(frame.image.shape[:2], []).append(frame)
    return list(groups.values())


class Pipeline:
    """Runs sources → model → task → sinks until every source has ended (or max_frames, or a stop key)."""

    def __init__(self, ae, sources: list, task, sinks, max_frames: int = 0, progress: bool = True):
        self.ae, self.sources, self.task, self.sinks = ae, sources, task, sinks
        self.max_frames, self.progress = max_frames, progress
        self.buffers = BatchBuffers(ae.info.downsample)
        self.timer = StageTimer()
        self.event_counts: Counter = Counter()
        self.frames_done: Counter = Counter()
        self._sizes: dict[str, tuple] = {}

    def run(self) -> dict:
        """Process everything; returns frames, fps and mean ms per stage (see `summary`)."""
        start = time.perf_counter()
        total = sum(s.length for s in self.sources) if all(not s.live for s in self.sources) else None
        active = list(self.sources)
        with tqdm(total=total or None, unit="frame", desc=f"run {self.task.name}", disable=not self.progress) as bar:
            while active and not self.sinks.stop_requested:
                with self.timer.stage("decode"):
                    frames, active = self._gather(active)
                if frames:
                    self._step(frames)
                    bar.update(len(frames))
                self._forward_source_events()
        self._forward_source_events()
        return self.summary(time.perf_counter() - start)

    def _gather(self, active: list) -> tuple[list, list]:
        """The next frame of each source: files block (nothing dropped), live ones wait briefly."""
        frames, still = [], []
        for source in active:
            item = source.read(timeout=(LIVE_WAIT_S if frames else 0.5) if source.live else None)
            if item is END:
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
            self._emit({"event": "size_change", "source": frame.source, "frame": frame.index,
                        "from": list(previous), "to": list(size)})
            log.info("%s: frame size changed %s → %s at frame %d; buffers follow, video output is resized",
                     frame.source, previous, size, frame.index)
        self._sizes[frame.source] = size

    def _step(self, frames: list) -> None:
        for group in group_by_size(frames):
            with self.timer.stage("preprocess"):
                batch = self.buffers.fill([f.image for f in group])
            with self.timer.stage("infer"):
                recon = self.ae.decode_batch(self.ae.encode_batch(batch))
            with self.timer.stage("postprocess"):
                results = self.task.process(group, batch, recon, self.sinks.draw)
            with self.timer.stage("write"):
                for frame, result in zip(group, results):
                    self.sinks.frame(frame.source, frame.index, result.image)
                    for event in result.events:
                        self._emit(event)
        self.timer.steps += 1

    def _emit(self, event: dict) -> None:
        self.event_counts[event["event"]] += 1
        self.sinks.event(event)

    def _forward_source_events(self) -> None:
        for source in self.sources:
            while not source.events.empty():
                self._emit(source.events.get_nowait())

    def summary(self, seconds: float) -> dict:
        frames = sum(self.frames_done.values())
        return {"task": self.task.name, "frames": frames, "steps": self.timer.steps, "seconds": round(seconds, 3),
                "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
                "stage_ms": {k: round(v, 3) for k, v in self.timer.mean_ms().items()},
                "capture_ms_per_frame": {s.name: round(1000 * s.read_seconds / max(1, self.frames_done[s.name]), 3)
                                         for s in self.sources},
                "live_frames_dropped": {s.name: s.dropped for s in self.sources if s.live},
                "events": dict(self.event_counts)}


def format_profile(summary: dict) -> str:
    """The --profile table: mean ms per step for each stage, and the end-to-end rate."""
    lines = [f"{'stage':<12} {'ms/step':>9}"]
    lines += [f"{name:<12} {ms:9.2f}" for name, ms in summary["stage_ms"].items()]
    lines.append(f"{'total':<12} {sum(summary['stage_ms'].values()):9.2f}")
    lines.append(f"{summary['frames']} frames in {summary['steps']} steps, {summary['seconds']:.2f} s: "
                 f"{summary['fps']:.1f} frames/s end to end")
    for name, ms in summary["capture_ms_per_frame"].items():
        lines.append(f"capture thread {name}: {ms:.2f} ms/frame read+decode (overlapped)")
    return "\n".join(lines)


def source_names(specs: tuple[str, ...]) -> list[str]:
    """Names used in events and output files: the spec itself, suffixed #i where two are alike."""
    counts = Counter(specs)
    return [spec if counts[spec] == 1 else f"{spec}#{i}" for i, spec in enumerate(specs)]


def make_task(cfg: RunConfig, ae):
    if cfg.task == "anomaly":
        from edgeae.runtime.tasks.anomaly import load_task

        return load_task(cfg.run, ae.info.checkpoint_sha256)
    from edgeae.runtime.tasks.denoise import DenoiseTask

    return DenoiseTask(cfg.task, side_by_side=cfg.side_by_side, model_task=ae.info.task)


def load_model(cfg: RunConfig):
    from edgeae.runtime.autoencoder import Autoencoder

    options = {"threads": cfg.threads} if cfg.threads else {}
    return Autoencoder.load(cfg.run, backend=cfg.backend, precision=cfg.precision, **options)


def open_sources(cfg: RunConfig) -> list:
    """Open every source before any output is written; a failure closes the ones already open."""
    opened = []
    try:
        for spec, name in zip(cfg.sources, source_names(cfg.sources)):
            opened.append(FrameSource(spec, name))
    except BaseException:
        for source in opened:
            source.close()
        raise
    return opened


def run(cfg: RunConfig, progress: bool = True) -> dict:
    """Load the model and task, open sources and sinks, run to the end; returns the summary."""
    from edgeae.runtime.sinks import SinkSet

    cfg.validate()
    with load_model(cfg) as ae:
        task = make_task(cfg, ae)
        sources = open_sources(cfg)
        fps = next((s.fps for s in sources if s.fps), 25.0)
        try:
            sinks = SinkSet([s.name for s in sources], cfg.out_video, cfg.out_frames, cfg.events, cfg.show, fps)
            if sinks.first_output:
                save_config(cfg, Path(str(sinks.first_output) + ".run.json"))
            for source in sources:
                source.start()
            try:
                return Pipeline(ae, sources, task, sinks, cfg.max_frames, progress).run()
            finally:
                sinks.close()
        finally:
            for source in sources:
                source.close()

