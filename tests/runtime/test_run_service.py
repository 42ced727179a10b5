"""`edgeae run` as a service: real processes on a live stream, stopped with SIGTERM or started twice."""

from __future__ import annotations

import signal
import subprocess
import sys

import cv2

from edgeae.runtime.sinks import partial_path
from tests.runtime.test_stream_reconnect import MjpegServer, events_of, wait_for


def run_argv(run, source: str, *options) -> list[str]:
    """`edgeae run` as its own process: reconstruct task, one thread."""
    return [sys.executable, "-m", "edgeae.cli", "run", str(run), "--task", "reconstruct", "--source", source,
            "--threads", "1", *map(str, options)]


def start_run(run, source: str, *options) -> subprocess.Popen:
    """Started in the background, stderr a pipe (as under systemd)."""
    return subprocess.Popen(run_argv(run, source, *options), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def frames_in(events) -> int:
    return sum(e["event"] == "frame" for e in events_of(partial_path(events)))


def test_sigterm_finalises_the_video_and_ends_the_events_with_interrupted(trained_run, tmp_path):
    server = MjpegServer(frames=100000)
    video, events = tmp_path / "out.avi", tmp_path / "events.jsonl"
    proc = start_run(trained_run, server.url, "--out-video", video, "--events", events)
    try:
        wait_for(lambda: frames_in(events) >= 10 or proc.poll() is not None, timeout=120)
        proc.send_signal(signal.SIGTERM)  # what systemd sends on stop
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        server.stop()
    assert proc.returncode == 130, err
    lines = events_of(events)
    assert lines[-1]["event"] == "end" and lines[-1]["reason"] == "interrupted"
    written = sum(e["event"] == "frame" for e in lines)
    cap = cv2.VideoCapture(str(video))
    header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))  # 0 when the AVI index was never written
    cap.release()
    # A frame is queued for the video just before its event is written: the signal may fall in between.
    assert written >= 10 and written <= header <= written + 1
    assert not partial_path(video).exists() and not partial_path(events).exists()


def test_second_run_on_the_same_outputs_is_refused_with_one_line(trained_run, tmp_path):
    server = MjpegServer(frames=100000)
    video, events = tmp_path / "out.avi", tmp_path / "events.jsonl"
    first = start_run(trained_run, server.url, "--out-video", video, "--events", events)
    try:
        wait_for(lambda: frames_in(events) >= 3 or first.poll() is not None, timeout=120)
        argv = run_argv(trained_run, server.url, "--out-video", video, "--events", events, "--max-frames", 3)
        second = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    finally:
        first.kill()
        server.stop()
    err = second.stderr.strip().splitlines()
    assert second.returncode == 2 and "being written by another edgeae process" in err[-1]
    assert first.returncode == 130
    lines = events_of(events)
    indices = [e["frame"] for e in lines if e["event"] == "frame"]
    assert [e["event"] for e in lines].count("end") == 1 and indices == sorted(set(indices))
