"""Frame sources for `edgeae run`: kinds, threaded capture, bad input."""

import time

import cv2
import numpy as np
import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime.sources import END, CaptureOptions, FrameSource, opencv_has_gstreamer, source_kind


def read_all(source: FrameSource) -> list:
    frames = []
    with source:
        while (item := source.read(timeout=10)) is not END:
            assert item is not None, "capture thread stalled"
            frames.append(item)
    return frames


def drain_events(source: FrameSource) -> list[dict]:
    return [source.events.get_nowait() for _ in range(source.events.qsize())]


@pytest.mark.parametrize("spec, kind", [
    ("0", "camera"), ("rtsp://10.0.0.2/live", "stream"), ("http://127.0.0.1:8080/stream.mjpg", "stream"),
    ("nvarguscamerasrc ! video/x-raw(memory:NVMM) ! nvvidconv ! appsink", "gstreamer"),
    ("clip.avi", "video"), ("photo.jpg", "image"),
])
def test_source_kind_recognises_what_opencv_users_pass(spec, kind):
    assert source_kind(spec) == kind


def test_video_file_source_drops_nothing_and_ends_cleanly(synthetic_video):
    source = FrameSource(str(synthetic_video))
    frames = read_all(source)
    assert [f.index for f in frames] == list(range(24))
    assert not source.live and source.dropped == 0
    assert frames[1].timestamp == pytest.approx(0.1)  # 10 fps file: video time, not wall time
    assert drain_events(source)[-1]["event"] == "source_end"


def test_grayscale_images_become_bgr(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((32, 48), 60 * i, np.uint8))
    frames = read_all(FrameSource(str(tmp_path)))
    assert [f.image.shape for f in frames] == [(32, 48, 3)] * 3


def test_unreadable_image_in_folder_is_skipped_and_logged(tmp_path):
    cv2.imwrite(str(tmp_path / "0.png"), np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "1.png").write_bytes(b"not a png")
    cv2.imwrite(str(tmp_path / "2.png"), np.zeros((16, 16, 3), np.uint8))
    source = FrameSource(str(tmp_path))
    assert [f.index for f in read_all(source)] == [0, 2]
    assert [e["event"] for e in drain_events(source)] == ["skip", "source_end"]


def test_missing_camera_gives_up_after_the_reconnect_timeout():
    options = CaptureOptions(backoff_start_s=0.02, backoff_max_s=0.05, reconnect_timeout_s=0.2)
    source = FrameSource("57", options=options)
    assert read_all(source) == []
    events = drain_events(source)
    assert [e["event"] for e in events] == ["lost", "gave_up", "source_end"]
    assert "camera 57 cannot be opened" in events[1]["reason"] and "camera 57 cannot be opened" in source.gave_up


def test_reconnect_timeout_zero_retries_until_stopped(monkeypatch):
    attempts = []

    def always_down(spec, kind, options):
        attempts.append(spec)
        raise EdgeAEError(f"stream {spec} cannot be opened")

    monkeypatch.setattr("edgeae.runtime.sources._open_capture", always_down)
    options = CaptureOptions(backoff_start_s=0.001, backoff_max_s=0.002, reconnect_timeout_s=0)
    with FrameSource("rtsp://127.0.0.1:9/down", options=options) as source:
        deadline = time.monotonic() + 20
        while len(attempts) < 50:  # a timeout of 0 read as "0 s" would have given up after the first retry
            assert time.monotonic() < deadline, "capture thread stopped retrying"
            time.sleep(0.01)
        assert source.read(timeout=0) is None
    assert "gave_up" not in [e["event"] for e in drain_events(source)] and not source.gave_up


@pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV has GStreamer: the error path does not apply")
def test_gstreamer_pipeline_without_gstreamer_names_the_fix():
    with pytest.raises(EdgeAEError, match="no GStreamer"):
        FrameSource("videotestsrc ! appsink")


def test_damaged_video_yields_its_readable_frames(footage):
    source = FrameSource(str(footage / "Megamind_bugy.avi"))
    frames = read_all(source)
    events = drain_events(source)
    assert len(frames) > 0 and all(f.image.shape == (528, 720, 3) for f in frames)
    assert {e["event"] for e in events} <= {"skip", "truncated", "source_end"}
    assert len(frames) + sum(e["event"] == "skip" for e in events) <= source.length
