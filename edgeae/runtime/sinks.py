"""Where `edgeae run` puts its results: annotated video, image folder, a window, JSON-lines events.

Every sink leaves usable files when a run is interrupted: events are flushed line by line, images are
written atomically one by one, and video is Motion-JPEG in AVI (see VideoSink).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
from pathlib import Path

import cv2
import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.visualise import write_image

log = logging.getLogger("edgeae.runtime")


class VideoSink:
    """Frames → Motion-JPEG AVI, encoded in a background thread so inference does not wait for it.

    Why MJPG in AVI: every frame is a self-contained JPEG chunk appended to the file, so a run that is
    killed leaves a file FFmpeg/OpenCV play up to the last chunk written (only the index at the end is
    missing). MP4 writes its index (the 'moov' atom) at the end: a killed run leaves an unplayable file.
    The frame size is fixed by the first frame; later frames of another size are resized to it.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0, queue_size: int = 8):
        self.path = Path(path)
        if self.path.suffix.lower() != ".avi":
            raise EdgeAEError(f"video output {self.path} must end in .avi (Motion-JPEG AVI survives interruption)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self.frames_written = 0
        self._size: tuple[int, int] | None = None
        self._writer: cv2.VideoWriter | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"video:{self.path.name}", daemon=True)
        self._thread.start()

    def write(self, image: np.ndarray) -> None:
        """Queue one BGR frame; blocks only when the encoder is `queue_size` frames behind."""
        if self._error:
            raise EdgeAEError(f"writing {self.path} failed: {self._error}")
        self._queue.put(image)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._writer is not None:
            self._writer.release()

    def _run(self) -> None:
        while (image := self._queue.get()) is not None:
            if self._error:
                continue
            try:
                self._encode(image)
            except Exception as e:  # surfaced to the pipeline at the next write()
                self._error = e

    def _encode(self, image: np.ndarray) -> None:
        size = (image.shape[1], image.shape[0])
        if self._writer is None:
            self._size = size
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, size)
            if not self._writer.isOpened():
                raise EdgeAEError(f"cannot open {self.path} for writing; check the folder is writable")
        elif size != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames_written += 1


class ImageFolderSink:
    """One image per frame, each written atomically (a reader never sees half an image)."""

    def __init__(self, folder: str | os.PathLike, extension: str = ".jpg"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.extension = extension

    def write(self, image: np.ndarray, index: int) -> None:
        write_image(self.folder / f"{index:06d}{self.extension}", image)

    def close(self) -> None:
        pass


class EventSink:
    """JSON lines, one event per line, flushed as written: an interrupted run leaves a parsable file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")

    def write(self, event: dict) -> None:
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class WindowSink:
    """A window per source (`--show`); 'q' or Esc in the window stops the run."""

    def __init__(self):
        check_display()
        self.stop_requested = False

    def write(self, image: np.ndarray, title: str) -> None:
        cv2.imshow(title, image)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop_requested = True

    def close(self) -> None:
        cv2.destroyAllWindows()


def check_display() -> None:
    """Raise EdgeAEError unless a window can be opened (a display and an OpenCV with a GUI)."""
    gui = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                if line.strip().startswith("GUI:")), "")
    if gui in ("", "NONE"):
        raise EdgeAEError("--show needs OpenCV with a GUI; this one has none (opencv-python-headless): "
                          "pip install opencv-python, or write --out-video instead")
    # A Qt/GTK build aborts the whole process when there is no display: check before asking it.
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EdgeAEError("--show needs a display (DISPLAY is not set); run on the desktop or use --out-video")


class SinkSet:
    """The outputs one run asked for, per source: routes each frame's image and events to them.

    With several sources, video and image outputs get one file/folder each (`out_0.avi`, `frames/0/`);
    events from all sources share one file and carry their source's name.
    """

    def __init__(self, names: list[str], out_video: str = "", out_frames: str = "", events: str = "",
                 show: bool = False, fps: float = 25.0):
        self.window = WindowSink() if show else None
        multi = len(names) > 1
        self.videos, self.folders = {}, {}
        for i, name in enumerate(names):
            if out_video:
                path = Path(out_video)
                self.videos[name] = VideoSink(path.with_name(f"{path.stem}_{i}{path.suffix}") if multi else path, fps)
            if out_frames:
                self.folders[name] = ImageFolderSink(Path(out_frames) / str(i) if multi else out_frames)
        self.events = EventSink(events) if events else None
        self.first_output = next((p for p in (out_video, out_frames, events) if p), "")
        if not self.first_output and not show:
            log.warning("no output asked for: pass --out-video, --out-frames, --events or --show")

    @property
    def draw(self) -> bool:
        """Whether tasks need to draw images at all (skipped when only events are written)."""
        return bool(self.videos or self.folders or self.window)

    @property
    def stop_requested(self) -> bool:
        return bool(self.window and self.window.stop_requested)

    def frame(self, source: str, index: int, image: np.ndarray | None) -> None:
        if image is None:
            return
        if source in self.videos:
            self.videos[source].write(image)
        if source in self.folders:
            self.folders[source].write(image, index)
        if self.window:
            self.window.write(image, f"edgeae: {source}")

    def event(self, event: dict) -> None:
        if self.events:
            self.events.write(event)
        if event["event"] in ("alarm", "gap", "lost", "gave_up", "truncated", "skip", "error"):
            log.info("%s", event)

    def close(self) -> None:
        for sink in [*self.videos.values(), *self.folders.values(), self.events, self.window]:
            if sink is not None:
                sink.close()
