"""A loopback MJPEG-over-HTTP server stands in for an IP camera: reading, dropping, reconnecting."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.pipeline import RunConfig, run
from edgeae.runtime.sinks import partial_path
from edgeae.runtime.sources import CaptureOptions, FrameSource

BOUNDARY = b"frame"


class MjpegServer:
    """multipart/x-mixed-replace JPEGs on 127.0.0.1; at most `frames` per client, then it stops itself."""

    def __init__(self, port: int = 0, frames: int = 1500, fps: float = 50, brightness: int = 60):
        self.stopping = threading.Event()
        jpeg = cv2.imencode(".jpg", np.full((64, 96, 3), brightness, np.uint8))[1].tobytes()
        chunk = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (BOUNDARY, len(jpeg), jpeg)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.end_headers()
                for _ in range(frames):
                    if server.stopping.wait(1 / fps):
                        return
                    try:
                        self.wfile.write(chunk)
                    except OSError:
                        return

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(condition, timeout: float = 20.0) -> None:
    """Poll until `condition()` holds (the stream runs in other threads); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def events_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


FAST_RECONNECT = CaptureOptions(backoff_start_s=0.05, backoff_max_s=0.2, reconnect_timeout_s=15, timeout_ms=3000)


def fast_reconnect(monkeypatch) -> None:
    """The pipeline's sources retry every ≤0.2 s (keeping the run's --reconnect-timeout)."""
    monkeypatch.setattr("edgeae.runtime.pipeline.FrameSource", lambda spec, name, options: FrameSource(
        spec, name, options=replace(FAST_RECONNECT, reconnect_timeout_s=options.reconnect_timeout_s)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_in_thread(cfg: RunConfig) -> tuple[threading.Thread, dict]:
    """`run(cfg)` in a daemon thread; the dict gets its summary or the exception it raised."""
    result = {}

    def target():
        try:
            result["summary"] = run(cfg, progress=False)
        except Exception as e:
            result["error"] = e

    runner = threading.Thread(target=target, daemon=True)
    runner.start()
    return runner, result


def test_live_stream_keeps_only_the_newest_frame():
    server = MjpegServer()
    try:
        with FrameSource(server.url, options=FAST_RECONNECT) as source:
            assert source.live and source.frames.maxsize == 1
            wait_for(lambda: source.dropped >= 3)  # nobody reads: older frames are replaced
            assert source.read(timeout=5) is not None
    finally:
        server.stop()


def test_run_survives_camera_restart_and_reports_the_gap(trained_run, tmp_path, monkeypatch):
    fast_reconnect(monkeypatch)
    server = MjpegServer(brightness=60)
    events = tmp_path / "events.jsonl"
    cfg = RunConfig(run=str(trained_run), task="reconstruct", sources=(server.url,), events=str(events),
                    out_frames=str(tmp_path / "frames"), side_by_side=True, max_frames=40, threads=1)
    result = {}
    runner = threading.Thread(target=lambda: result.update(run(cfg, progress=False)), daemon=True)
    runner.start()
    try:
        wait_for(lambda: sum(e["event"] == "frame" for e in events_of(partial_path(events))) >= 10)
        server.stop()
        wait_for(lambda: any(e["event"] == "lost" for e in events_of(partial_path(events))))
        server = MjpegServer(port=server.port, brightness=200)
        runner.join(timeout=60)
        assert not runner.is_alive(), "run did not finish after the camera came back"
    finally:
        server.stop()
    kinds = [e["event"] for e in events_of(events)]
    gap = next(e for e in events_of(events) if e["event"] == "gap")
    assert gap["seconds"] > 0 and kinds.index("lost") < kinds.index("gap")
    assert result["frames"] == 40 and kinds.count("frame") == 40
    inputs = [cv2.imread(str(p))[30:, :96] for p in sorted((tmp_path / "frames").glob("*.jpg"))]  # input half, below the label
    assert inputs[0].mean() < 100 < inputs[-1].mean()  # the restarted camera sends brighter frames


def test_stream_down_at_start_is_retried_until_it_comes_up(trained_run, tmp_path, monkeypatch):
    fast_reconnect(monkeypatch)
    port = free_port()
    events = tmp_path / "events.jsonl"
    cfg = RunConfig(run=str(trained_run), task="reconstruct", sources=(f"http://127.0.0.1:{port}/stream.mjpg",),
                    events=str(events), max_frames=5, threads=1, reconnect_timeout=30)
    runner, result = run_in_thread(cfg)
    server = None
    try:
        wait_for(lambda: any(e["event"] == "lost" for e in events_of(partial_path(events))))
        server = MjpegServer(port=port)
        runner.join(timeout=60)
        assert not runner.is_alive(), "run did not finish after the stream came up"
    finally:
        if server:
            server.stop()
    assert "error" not in result and result["summary"]["frames"] == 5
    kinds = [e["event"] for e in events_of(events)]
    assert kinds.index("lost") < kinds.index("gap") < kinds.index("frame") and kinds[-1] == "end"


def test_stream_down_longer_than_reconnect_timeout_fails_the_run(trained_run, tmp_path, monkeypatch):
    fast_reconnect(monkeypatch)
    server = MjpegServer()
    events = tmp_path / "events.jsonl"
    cfg = RunConfig(run=str(trained_run), task="reconstruct", sources=(server.url,), events=str(events),
                    threads=1, reconnect_timeout=1)
    runner, result = run_in_thread(cfg)
    try:
        wait_for(lambda: any(e["event"] == "frame" for e in events_of(partial_path(events))))
    finally:
        server.stop()
    runner.join(timeout=30)
    assert not runner.is_alive(), "run kept going although the stream stayed down past --reconnect-timeout"
    assert isinstance(result.get("error"), EdgeAEError) and "gave up" in str(result["error"])
    lines = events_of(events)
    gave_up = next(e for e in lines if e["event"] == "gave_up")
    assert gave_up["seconds"] > 1 and lines[-1]["event"] == "end" and lines[-1]["reason"] == "gave_up"
