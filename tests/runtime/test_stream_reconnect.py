"""A loopback MJPEG-over-HTTP server stands in for an IP camera: reading, dropping, reconnecting."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from edgeae.runtime.pipeline import RunConfig, run
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


FAST_RECONNECT = CaptureOptions(backoff_start_s=0.05, backoff_max_s=0.2, give_up_after_s=15, timeout_ms=3000)


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
    monkeypatch.setattr("edgeae.runtime.pipeline.FrameSource",
                        lambda spec, name: FrameSource(spec, name, options=FAST_RECONNECT))
    server = MjpegServer(brightness=60)
    events = tmp_path / "events.jsonl"
    cfg = RunConfig(run=str(trained_run), task="reconstruct", sources=(server.url,), events=str(events),
                    out_frames=str(tmp_path / "frames"), side_by_side=True, max_frames=40, threads=1)
    result = {}
    runner = threading.Thread(target=lambda: result.update(run(cfg, progress=False)), daemon=True)
    runner.start()
    try:
        wait_for(lambda: sum(e["event"] == "frame" for e in events_of(events)) >= 10)
        server.stop()
        wait_for(lambda: any(e["event"] == "lost" for e in events_of(events)))
        server = MjpegServer(port=server.port, brightness=200)
        runner.join(timeout=60)
        assert not runner.is_alive(), "run did not finish after the camera came back"
    finally:
        server.stop()
    kinds = [e["event"] for e in events_of(events)]
    gap = next(e for e in events_of(events) if e["event"] == "gap")
    assert gap["seconds"] > 0 and kinds.index("lost") < kinds.index("gap")
    assert result["frames"] == 40 and kinds.count("frame") == 40
    inputs = [cv2.imread(str(p))[30:, :96] for p in sorted((tmp_path / "frames").iterdir())]  # input half, below the label
    assert inputs[0].mean() < 100 < inputs[-1].mean()  # the restarted camera sends brighter frames
