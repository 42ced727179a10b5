"""`edgeae run --backend triton`: the camera pipeline with the model on a Triton server.

Sources, pre-processing, the task (anomaly threshold, alarms), sinks and events stay on this side, exactly as
in `edgeae run` (edgeae/runtime/pipeline.py, whose loop runs unchanged); only `reconstruct_batch` becomes one
request to the server's `<name>-reconstruct` (or `-denoise`) model.

When the server goes away the client behaves like a lost camera (sources.FrameSource._reconnect): it tries
again with capped exponential backoff (`CaptureOptions`: 0.1 s doubling to 2 s) and gives up, failing the run,
after `--reconnect-timeout` seconds (0: never). What happens to frames meanwhile follows the sources' rule:
  - with a live source (camera, stream), frames keep coming and cannot wait: each batch the server cannot
    take is dropped, and a `dropped` event names its source, frame indices and count; between tries no
    request is sent at all;
  - with files and folders only (nothing is dropped from a file), the step waits for the server instead.
Either way a `server_lost` event starts the outage and `server_back` ends it with its length and the frames
dropped in it, so every frame is either processed or named in a `dropped` event: none is lost silently.

`--score-on-server` (anomaly only): frames go to the server's `<name>-anomaly` model as captured (uint8 BGR, a
quarter of the float32 bytes) and the server runs the scoring with its copy of the run's calibration; scores
and reduced maps come back, and decisions, alarms, overlays and events stay here as before. On the 2-core AMD
EPYC with 8 cameras at 640×480 the server answered 32–38 frames/s this way against 22–24 on the float32 path
(benchmarks/serve.py, three make bench runs on 2026-11-28).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.backends.triton import DEFAULT_SERVER, ServerUnavailable
from edgeae.runtime.pipeline import RunConfig
from edgeae.runtime.sources import CaptureOptions
from edgeae.runtime.tasks.base import FrameResult

log = logging.getLogger("edgeae.serve")


class ServerLink:
    """One client's view of the server: up or down, when to try again, what was dropped while it was down."""

    def __init__(self, url: str, options: CaptureOptions = CaptureOptions(), wait: bool = False,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.url, self.options, self.wait = url, options, wait
        self.clock, self.sleep = clock, sleep
        self.down_since: float | None = None
        self.reason = ""
        self.next_try = 0.0
        self.delay = options.backoff_start_s
        self.dropped_in_outage = 0
        self.frames_dropped = 0
        self.outages = 0
        self.events: list[dict] = []  # server_lost / server_back, taken by the task wrapper in order

    @property
    def up(self) -> bool:
        return self.down_since is None

    def call(self, request: Callable[[], np.ndarray]) -> np.ndarray | None:
        """The request's answer, or None when the server is down and the frames must be dropped (live
        sources). Waits and retries instead when `wait` (files only); raises EdgeAEError on giving up."""
        while True:
            if self.up or self.clock() >= self.next_try:
                try:
                    answer = request()
                except ServerUnavailable as e:
                    self._failed(str(e))
                else:
                    self._succeeded()
                    return answer
            if not self.wait:
                return None
            self.sleep(max(0.0, self.next_try - self.clock()))

    def dropped(self, count: int) -> None:
        self.dropped_in_outage += count
        self.frames_dropped += count

    def take_events(self) -> list[dict]:
        events, self.events = self.events, []
        return events

    def _event(self, event: dict) -> None:
        self.events.append(event)
        log.warning("%s", event, extra={"event_fields": event})

    def _failed(self, reason: str) -> None:
        now = self.clock()
        if self.up:
            self.down_since, self.delay, self.outages = now, self.options.backoff_start_s, self.outages + 1
            self.reason = reason
            self._event({"event": "server_lost", "server": self.url, "reason": reason})
        else:
            self.delay = min(2 * self.delay, self.options.backoff_max_s)
        self.next_try = now + self.delay
        timeout = self.options.reconnect_timeout_s
        if timeout and now - self.down_since > timeout:
            self._event({"event": "gave_up", "server": self.url, "seconds": round(now - self.down_since, 3),
                         "frames_dropped": self.dropped_in_outage, "reason": reason})
            raise EdgeAEError(f"gave up on Triton server {self.url}, down for longer than --reconnect-timeout "
                              f"{timeout:g} s (0: retry until stopped): {reason}")

    def _succeeded(self) -> None:
        if not self.up:
            self._event({"event": "server_back", "server": self.url, "seconds": round(self.clock() - self.down_since, 3),
                         "frames_dropped": self.dropped_in_outage})
            self.down_since, self.dropped_in_outage, self.reason = None, 0, ""

    def summary(self) -> dict:
        return {"server": self.url, "outages": self.outages, "frames_dropped": self.frames_dropped,
                "down_now": not self.up}


class RemoteModel:
    """An Autoencoder on the triton backend whose `reconstruct_batch` goes through a ServerLink: None = dropped."""

    def __init__(self, ae, link: ServerLink):
        self.ae, self.link, self.info = ae, link, ae.info

    @classmethod
    def load(cls, run: str, server: str = DEFAULT_SERVER, model: str = "",
             options: CaptureOptions = CaptureOptions(), wait: bool = False, timeout_s: float = 10.0) -> "RemoteModel":
        """Connect to the server's models of `run` (the run folder here gives their names and checkpoint)."""
        from edgeae.runtime.autoencoder import Autoencoder

        # a server that is down at the start is waited for like a camera that is: backoff, then give up
        start, delay = time.monotonic(), options.backoff_start_s
        while True:
            try:
                ae = Autoencoder.load(run, backend="triton", server=server, model=model, timeout_s=timeout_s)
                return cls(ae, ServerLink(server, options, wait=wait))
            except ServerUnavailable as e:
                down = time.monotonic() - start
                if options.reconnect_timeout_s and down + delay > options.reconnect_timeout_s:
                    raise EdgeAEError(f"{e}; gave up after {down:.1f} s (--reconnect-timeout "
                                      f"{options.reconnect_timeout_s:g}): is 'edgeae serve {run}' running there?") from None
                if delay == options.backoff_start_s:
                    log.warning("waiting for the Triton server: %s", e)
                time.sleep(delay)
                delay = min(2 * delay, options.backoff_max_s)

    def reconstruct_batch(self, batch: np.ndarray) -> np.ndarray | None:
        return self.link.call(lambda: self.ae.reconstruct_batch(batch))

    def describe(self) -> str:
        return f"triton at {self.link.url}: {self.ae.fused.model} v{self.ae.fused.version}"

    def close(self) -> None:
        self.ae.close()

    def __enter__(self) -> "RemoteModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ServerScorer(RemoteModel):
    """--score-on-server: the pipeline's model for a run whose server scores frames. Takes each step's frames as
    captured (N×H×W×3 uint8 BGR, `takes_frames`) and returns the server's anomaly answer (score, anomalous, map)
    or None when the frames must be dropped, like RemoteModel."""

    takes_frames = True
    backend = None  # the server's <name>-anomaly model (TritonBackend), set by load

    @classmethod
    def load(cls, run: str, server: str = DEFAULT_SERVER, model: str = "", options: CaptureOptions = CaptureOptions(),
             wait: bool = False, timeout_s: float = 10.0) -> "ServerScorer":
        from pathlib import Path

        from edgeae.runtime.backends.triton import TritonBackend
        from edgeae.serve.models import ANOMALY

        scorer = super().load(run, server, model, options, wait, timeout_s)
        try:
            scorer.backend = TritonBackend.load(Path(run) / "encoder.onnx", server=server, model=model, kind=ANOMALY,
                                                timeout_s=timeout_s)
        except EdgeAEError as e:
            scorer.close()
            raise EdgeAEError(f"--score-on-server needs the server's anomaly model, served for a calibrated run "
                              f"('edgeae calibrate RUN' there, then 'edgeae serve RUN'): {e}") from None
        return scorer

    def reconstruct_batch(self, frames: np.ndarray) -> dict[str, np.ndarray] | None:
        return self.link.call(lambda: self.backend.request_all({"frame": frames}))

    def describe(self) -> str:
        return f"triton at {self.link.url}: {self.backend.model} v{self.backend.version} (scores on the server)"

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
        super().close()


class ServerScores:
    """The anomaly task over the server's answers: each frame's score and reduced map come from the server
    (ServerScorer); the decision with this side's threshold, the alarm per source, overlay and events stay here."""

    def __init__(self, task):
        self.task = task

    def __getattr__(self, name):  # name, set_threshold, full_maps, … are the task's own
        return getattr(self.task, name)

    def process(self, frames: list, batch: np.ndarray, answer: dict[str, np.ndarray], draw: bool) -> list[FrameResult]:
        return [self.task.decide(frame, float(answer["score"][i, 0]), answer["map"][i], draw)
                for i, frame in enumerate(frames)]


class GapAwareTask:
    """The run's task, plus what the server link reports: a step whose batch was dropped yields no images,
    a `dropped` event per source instead, and the link's `server_lost`/`server_back` come first."""

    def __init__(self, task, link: ServerLink):
        self.task, self.link = task, link

    def __getattr__(self, name):  # name, set_threshold, full_maps, … are the task's own
        return getattr(self.task, name)

    def process(self, frames: list, batch: np.ndarray, recon: np.ndarray | None, draw: bool) -> list[FrameResult]:
        link_events = self.link.take_events()
        if recon is None:
            results = [FrameResult(image=None) for _ in frames]
            first: dict[str, int] = {}
            by_source: dict[str, list[int]] = defaultdict(list)
            for i, frame in enumerate(frames):
                first.setdefault(frame.source, i)
                by_source[frame.source].append(frame.index)
            for source, indices in by_source.items():
                results[first[source]].events.append({"event": "dropped", "source": source, "frames": indices,
                                                      "count": len(indices), "reason": self.link.reason})
            self.link.dropped(len(frames))
        else:
            results = self.task.process(frames, batch, recon, draw)
        if link_events and results:
            results[0].events[:0] = link_events
        return results


@dataclass(frozen=True)
class RemoteRunConfig(RunConfig):
    """`edgeae run --backend triton`: RunConfig plus where the server is (saved beside the outputs like it)."""

    server: str = DEFAULT_SERVER
    model: str = ""          # the served name (default: the run folder's name)
    request_timeout: float = 10.0
    score_on_server: bool = False  # anomaly: frames go as captured to <name>-anomaly, which scores them

    def validate(self) -> None:
        super().validate()
        if self.backend != "triton":
            raise EdgeAEError(f"a remote run uses --backend triton, not {self.backend}")
        if not self.server or any(c.isspace() for c in self.server):
            raise EdgeAEError(f"--server {self.server!r} is not HOST:PORT of a Triton server's HTTP endpoint")
        if not self.request_timeout > 0:
            raise EdgeAEError("the request timeout must be above 0 seconds")
        if self.streams > 1:
            raise EdgeAEError(f"--streams {self.streams} splits this machine's cores between inference calls; with "
                              "--backend triton the server runs them ('edgeae serve --instances N' there): leave it out")
        if self.score_on_server and self.task != "anomaly":
            raise EdgeAEError(f"--score-on-server scores anomalies on the server; the task is {self.task}: "
                              "leave it out or use --task anomaly")

    @classmethod
    def of(cls, cfg: RunConfig, server: str, model: str = "", score_on_server: bool = False) -> "RemoteRunConfig":
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(RunConfig)}, server=server, model=model,
                   score_on_server=score_on_server)


def run(cfg: RemoteRunConfig, progress: bool = True) -> dict:
    """pipeline.run with the model on the server; the summary adds `server` (outages, frames dropped)."""
    from edgeae.runtime.pipeline import _run_to_sinks, check_outputs, open_sources
    from edgeae.runtime.tasks.base import make_task

    cfg.validate()
    check_outputs(cfg)
    options = CaptureOptions(reconnect_timeout_s=cfg.reconnect_timeout)
    opener = ServerScorer if cfg.score_on_server else RemoteModel
    with opener.load(cfg.run, cfg.server, cfg.model, options, timeout_s=cfg.request_timeout) as model:
        task = make_task(cfg.task, cfg.run, model.info, cfg.side_by_side)
        if cfg.threshold is not None:
            task.set_threshold(cfg.threshold)
        if cfg.out_maps:
            task.full_maps = True
        sources = open_sources(cfg)
        model.link.wait = not any(s.live for s in sources)  # files wait for the server; live frames cannot
        if cfg.score_on_server:
            task = ServerScores(task)
        try:
            summary = _run_to_sinks(cfg, model, GapAwareTask(task, model.link), sources, progress)
        finally:
            for source in sources:
                source.close()
    summary["server"] = model.link.summary()
    if summary["gave_up"]:
        name, why = next(iter(summary["gave_up"].items()))
        raise EdgeAEError(f"gave up on source {name}, down for longer than --reconnect-timeout "
                          f"{cfg.reconnect_timeout:g} s (0: retry until stopped): {why}")
    return summary
