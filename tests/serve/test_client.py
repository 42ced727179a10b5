"""The client's outage rules without a server: backoff, dropped frames named in events, waiting for files."""

import numpy as np
import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime.backends.triton import ServerUnavailable
from edgeae.runtime.sources import CaptureOptions, Frame
from edgeae.runtime.tasks.base import FrameResult
from edgeae.serve.client import GapAwareTask, RemoteRunConfig, ServerLink


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Server:
    """A request that fails while `down`, counting the requests that reached it."""

    def __init__(self):
        self.down, self.requests = False, 0

    def __call__(self):
        self.requests += 1
        if self.down:
            raise ServerUnavailable("connection refused")
        return np.zeros(1)


def test_a_lost_server_is_retried_with_capped_backoff_and_nothing_is_sent_between_tries():
    clock, server = Clock(), Server()
    link = ServerLink("s:1", CaptureOptions(backoff_start_s=0.1, backoff_max_s=0.4, reconnect_timeout_s=0), clock=clock)
    server.down = True
    tries = []
    for k in range(200):  # 2 s of frames at 100 fps
        clock.now = k / 100
        before = server.requests
        assert link.call(server) is None
        if server.requests > before:
            tries.append(clock.now)
    gaps = np.diff(tries)  # a try falls on the first 10 ms frame at or after its time
    assert np.allclose(gaps[:3], [0.1, 0.2, 0.4], atol=0.011) and np.allclose(gaps[3:], 0.4, atol=0.011)
    assert [e["event"] for e in link.take_events()] == ["server_lost"]


def test_the_outage_ends_with_its_length_and_the_frames_dropped_in_it():
    clock, server = Clock(), Server()
    link = ServerLink("s:1", clock=clock)
    server.down = True
    link.call(server)
    link.dropped(3)
    server.down, clock.now = False, 5.0
    assert link.call(server) is not None
    lost, back = link.take_events()
    assert lost["event"] == "server_lost" and "connection refused" in lost["reason"]
    assert back == {"event": "server_back", "server": "s:1", "seconds": 5.0, "frames_dropped": 3}
    assert link.summary() == {"server": "s:1", "outages": 1, "frames_dropped": 3, "down_now": False}


def test_a_server_down_longer_than_the_reconnect_timeout_fails_the_run():
    clock, server = Clock(), Server()
    link = ServerLink("s:1", CaptureOptions(reconnect_timeout_s=1.0), clock=clock)
    server.down = True
    with pytest.raises(EdgeAEError, match="gave up on Triton server s:1"):
        for _ in range(100):
            link.call(server)
            clock.now += 0.1


def test_waiting_for_the_server_drops_nothing():
    clock, server = Clock(), Server()
    link = ServerLink("s:1", wait=True, clock=clock, sleep=clock.sleep)
    server.down = True
    original = link._failed

    def fail_then_recover(reason):  # the server comes back after its third refusal
        original(reason)
        server.down = link.outages and server.requests < 3

    link._failed = fail_then_recover
    assert link.call(server) is not None and server.requests == 4 and link.frames_dropped == 0
    assert [e["event"] for e in link.take_events()] == ["server_lost", "server_back"]


class Recorder:
    name = "record"

    def process(self, frames, batch, recon, draw):
        return [FrameResult(None, events=[{"event": "frame", "source": f.source, "frame": f.index}]) for f in frames]


def test_a_dropped_step_names_each_sources_frames_once_and_the_outage_comes_first():
    link = ServerLink("s:1")
    link.reason = "refused"
    link.events.append({"event": "server_lost", "server": "s:1", "reason": "refused"})
    task = GapAwareTask(Recorder(), link)
    frames = [Frame(np.zeros((2, 2, 3), np.uint8), i, 0.0, s) for s, i in (("a", 7), ("b", 3), ("a", 8))]
    results = task.process(frames, None, None, draw=False)
    assert all(r.image is None for r in results) and task.name == "record"
    events = [e for r in results for e in r.events]
    assert events[0]["event"] == "server_lost"
    assert events[1:] == [{"event": "dropped", "source": "a", "frames": [7, 8], "count": 2, "reason": "refused"},
                          {"event": "dropped", "source": "b", "frames": [3], "count": 1, "reason": "refused"}]
    assert link.frames_dropped == 3


def test_the_remote_run_config_keeps_every_run_option_and_adds_the_server(trained_run):
    from edgeae.runtime.pipeline import RunConfig

    cfg = RemoteRunConfig.of(RunConfig(run=str(trained_run), task="reconstruct", sources=("x.avi",), backend="triton",
                                       max_frames=5), server="127.0.0.1:9")
    assert cfg.max_frames == 5 and cfg.server == "127.0.0.1:9"
    with pytest.raises(EdgeAEError, match="--server"):
        RemoteRunConfig.of(cfg, server="").validate()


def test_edgeae_run_against_no_server_says_so(trained_run, synthetic_video, capsys):
    from edgeae.cli import main

    code = main(["run", str(trained_run), "--backend", "triton", "--server", "127.0.0.1:9", "--task", "reconstruct",
                 "--source", str(synthetic_video), "--reconnect-timeout", "0.3"])
    err = capsys.readouterr().err
    assert code == 2 and "Triton server 127.0.0.1:9 unavailable" in err and "edgeae serve" in err
