"""Sinks leave usable files, even when the run is killed; complete files appear under their name only when finalised."""

import json
import os
import shutil
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgeae.errors import EdgeAEError
from edgeae.outputs import OutputLock
from edgeae.runtime.sinks import EventSink, SinkSet, VideoSink, check_display, partial_path


def frame_count(path) -> int:
    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        n += 1
    return n


def test_video_sink_writes_playable_mjpeg_and_resizes_odd_frames(tmp_path):
    sink = VideoSink(tmp_path / "out.avi", fps=10)
    for size in [(48, 64)] * 4 + [(60, 80)]:
        sink.write(np.full((*size, 3), 100, np.uint8))
    sink.close()
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (64, 48)
    assert frame_count(tmp_path / "out.avi") == 5


def test_video_sink_refuses_containers_that_break_on_interrupt(tmp_path):
    with pytest.raises(EdgeAEError, match=r"\.avi"):
        VideoSink(tmp_path / "out.mp4")


def test_events_are_readable_while_the_file_is_still_open(tmp_path):
    sink = EventSink(tmp_path / "e.jsonl")
    sink.write({"event": "frame", "frame": 0})
    assert json.loads(sink.partial.read_text()) == {"event": "frame", "frame": 0}
    sink.close()


def test_video_and_events_take_their_name_only_when_finalised(tmp_path):
    video, events = VideoSink(tmp_path / "out.avi", fps=10), EventSink(tmp_path / "e.jsonl")
    video.write(np.full((48, 64, 3), 100, np.uint8))
    events.write({"event": "frame", "frame": 0})
    assert not (tmp_path / "out.avi").exists() and not (tmp_path / "e.jsonl").exists()
    video.close()
    events.close()
    assert frame_count(tmp_path / "out.avi") == 1 and (tmp_path / "e.jsonl").read_text().count("\n") == 1
    assert not partial_path(tmp_path / "out.avi").exists() and not partial_path(tmp_path / "e.jsonl").exists()


def test_video_that_could_not_be_written_fails_on_close(tmp_path):
    sink = VideoSink(tmp_path / "gone" / "out.avi", fps=10)
    shutil.rmtree(tmp_path / "gone")  # the folder vanishes before the first frame opens the writer
    sink.write(np.full((48, 64, 3), 100, np.uint8))
    with pytest.raises(EdgeAEError, match="out.avi"):
        sink.close()


def test_video_in_a_folder_that_cannot_be_created_is_an_error_at_once(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(EdgeAEError, match="choose a writable path"):
        VideoSink(tmp_path / "file" / "out.avi")


def test_second_writer_of_an_output_is_refused_and_the_first_one_kept(tmp_path):
    first = SinkSet(["cam"], out_video=str(tmp_path / "out.avi"), events=str(tmp_path / "e.jsonl"))
    first.event({"event": "frame", "frame": 0})
    with pytest.raises(EdgeAEError, match="being written by another edgeae process"):
        SinkSet(["cam"], events=str(tmp_path / "e.jsonl"))
    first.close({"event": "end", "reason": "complete"})
    lines = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [e["event"] for e in lines] == ["frame", "end"]
    with OutputLock(tmp_path / "e.jsonl"):  # released on close
        pass


def test_frames_folder_lock_is_the_same_whether_or_not_the_folder_existed(tmp_path):
    first = SinkSet(["cam"], out_frames=str(tmp_path / "frames"))  # creates the folder
    with pytest.raises(EdgeAEError, match="--out-frames"):
        SinkSet(["cam"], out_frames=str(tmp_path / "frames"))  # finds it existing
    first.close()


@pytest.mark.skipif(bool(os.environ.get("DISPLAY")), reason="a display is present: the headless error path does not apply")
def test_show_without_display_is_a_clear_error():
    with pytest.raises(EdgeAEError, match="--show needs"):
        check_display()


KILLED_WRITER = """
import os, signal, sys
import numpy as np
from edgeae.runtime.sinks import EventSink, VideoSink
video, events = VideoSink(sys.argv[1], fps=10), EventSink(sys.argv[2])
rng = np.random.default_rng(0)
for i in range(40):  # noisy frames: large JPEGs, so the writer's buffer reaches the disk
    video.write(rng.integers(0, 256, (240, 320, 3), np.uint8))
    events.write({"event": "frame", "frame": i})
while not video._queue.empty():  # let the encoder thread take the frames, then die without closing
    pass
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_killed_run_leaves_playable_video_and_parsable_events(tmp_path):
    video, events = tmp_path / "out.avi", tmp_path / "events.jsonl"
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(video), str(events)], capture_output=True)
    assert result.returncode == -signal.SIGKILL
    assert not video.exists() and not events.exists()  # never finalised: the partial files hold it all
    lines = [json.loads(line) for line in partial_path(events).read_text().splitlines()]
    assert [e["frame"] for e in lines] == list(range(40))
    assert frame_count(partial_path(video)) > 0
