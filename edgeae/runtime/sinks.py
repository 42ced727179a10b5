"""Where `edgeae run` puts its results: annotated video, image folder, a window, JSON-lines events, anomaly maps.

Every sink leaves usable files when a run is interrupted: events are flushed line by line, images are
written atomically one by one, and video is Motion-JPEG in AVI (see VideoSink). Videos and events are
written under a temporary name (`partial_path`) and renamed when finalised, so the final name only ever
holds a complete file; a killed run leaves the partial one, still playable/parsable. Each output is locked
(`OutputLock`) while written: a second run on the same path is refused instead of mixing its output in.
"""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgeae.config import atomic_write_bytes
from edgeae.errors import EdgeAEError
from edgeae.outputs import OutputLock
from edgeae.runtime.visualise import write_image

log = logging.getLogger("edgeae.runtime")


def partial_path(path: str | os.PathLike) -> Path:
    """Where an output is written until it is finalised: out.avi → out.partial.avi."""
    path = Path(path)
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def _make_parent(path: Path, what: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgeAEError(f"cannot create the folder for {what} {path}: {e.strerror}; choose a writable path") from None


class VideoSink:
    """Frames → Motion-JPEG AVI, encoded in a background thread so inference does not wait for it.

    Why MJPG in AVI: every frame is a self-contained JPEG chunk appended to the file, so a run that is
    killed leaves a file FFmpeg/OpenCV play up to the last chunk written (only the index at the end is
    missing). MP4 writes its index (the 'moov' atom) at the end: a killed run leaves an unplayable file.
    The frame size is fixed by the first frame; later frames of another size are resized to it.
    Frames go to `partial_path(path)` until `close()` writes the index and renames it to `path`.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0, queue_size: int = 8):
        self.path = Path(path)
        if self.path.suffix.lower() != ".avi":
            raise EdgeAEError(f"video output {self.path} must end in .avi (Motion-JPEG AVI survives interruption)")
        _make_parent(self.path, "video output")
        self.partial = partial_path(self.path)
        try:  # the writer opens at the first frame (its size): find an unwritable folder now, not then
            self.partial.touch()
        except OSError as e:
            raise EdgeAEError(f"cannot write video output {self.path}: {e.strerror}; choose a writable path") from None
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
        """Encode what is queued, write the AVI index, rename to `path`; raise if writing failed."""
        self._queue.put(None)
        self._thread.join()
        if self._writer is not None:
            self._writer.release()
        if self.frames_written:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)
        if self._error:
            raise EdgeAEError(f"writing {self.path} failed: {self._error}")

    def _run(self) -> None:
        while (image := self._queue.get()) is not None:
            if self._error:
                continue
            try:
                self._encode(image)
            except Exception as e:  # surfaced to the pipeline at the next write() and at close()
                self._error = e

    def _encode(self, image: np.ndarray) -> None:
        size = (image.shape[1], image.shape[0])
        if self._writer is None:
            self._size = size
            self._writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, size)
            if not self._writer.isOpened():
                raise EdgeAEError(f"cannot open {self.partial} for writing; check the folder is writable")
        elif size != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames_written += 1


# Formats that keep every pixel: a frame named after such a source file keeps its format; others become PNG.
LOSSLESS_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


def output_name(source_file: str, index: int, extension: str) -> str:
    """A frame's file name: after its source file (lossless: its own format, else .png), or the index for video."""
    if not source_file:
        return f"{index:06d}{extension}"
    name = Path(source_file)
    return name.name if name.suffix.lower() in LOSSLESS_EXTENSIONS else f"{name.stem}.png"


class ImageFolderSink:
    """One image per frame, each written atomically (a reader never sees half an image); frames of an image
    folder are named after their source files and written losslessly, video frames are numbered."""

    def __init__(self, folder: str | os.PathLike, extension: str = ".jpg"):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgeAEError(f"cannot create frames folder {self.folder}: {e.strerror}; "
                              "choose a writable path") from None
        self.extension = extension

    def write(self, image: np.ndarray, index: int, source_file: str = "") -> None:
        path = self.folder / output_name(source_file, index, self.extension)
        try:
            write_image(path, image)
        except OSError as e:
            raise EdgeAEError(f"cannot write {path}: {e.strerror}; "
                              "check the disk and the folder's permissions") from None

    def close(self) -> None:
        pass


class MapSink:
    """The anomaly task's per-pixel score map of each frame as float32 H×W `.npy` (np.load reads it), named
    by frame index like ImageFolderSink's images and written atomically. Unlike the overlay, whose colours
    saturate at twice the threshold, the values are the scores themselves (threshold units of the frame score)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgeAEError(f"cannot create maps folder {self.folder}: {e.strerror}; choose a writable path") from None

    def write(self, score_map: np.ndarray, index: int) -> None:
        path = self.folder / f"{index:06d}.npy"
        buffer = io.BytesIO()
        np.save(buffer, score_map.astype(np.float32, copy=False), allow_pickle=False)
        try:
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as e:
            raise EdgeAEError(f"cannot write {path}: {e.strerror}; check the disk and the folder's permissions") from None

    def close(self) -> None:
        pass


class EventSink:
    """JSON lines, one event per line, flushed as written: an interrupted run leaves a parsable file.

    Lines go to `partial_path(path)` (readable while the run goes on); `close()` renames it to `path`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        _make_parent(self.path, "events file")
        self.partial = partial_path(self.path)
        try:
            self._file = open(self.partial, "w", encoding="utf-8")
        except OSError as e:
            raise EdgeAEError(f"cannot write events file {self.path}: {e.strerror}; choose a writable path") from None

    def write(self, event: dict) -> None:
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        os.replace(self.partial, self.path)


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


@dataclass
class OutputPaths:
    """The files and folders one run writes: per source for video and frames, one events file for all."""

    videos: dict[str, Path] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)
    events: Path | None = None
    maps: dict[str, Path] = field(default_factory=dict)

    def labelled(self) -> dict[str, Path]:
        """Option name (and source, where there are several) → path: what errors and locks call them."""
        multi = len(self.videos) > 1 or len(self.folders) > 1 or len(self.maps) > 1
        named = lambda option, source: f"{option} (source {source})" if multi else option
        labels = {named("--out-video", s): p for s, p in self.videos.items()}
        labels |= {named("--out-frames", s): p for s, p in self.folders.items()}
        labels |= {named("--out-maps", s): p for s, p in self.maps.items()}
        if self.events:
            labels["--events"] = self.events
        return labels


def output_paths(names: list[str], out_video: str = "", out_frames: str = "", events: str = "",
                 out_maps: str = "") -> OutputPaths:
    """Where each source's outputs go: with several sources, `out_0.avi`, `frames/0/`, `maps/0/` … (one per source)."""
    paths, multi = OutputPaths(events=Path(events) if events else None), len(names) > 1
    for i, name in enumerate(names):
        if out_video:
            path = Path(out_video)
            paths.videos[name] = path.with_name(f"{path.stem}_{i}{path.suffix}") if multi else path
        if out_frames:
            paths.folders[name] = Path(out_frames) / str(i) if multi else Path(out_frames)
        if out_maps:
            paths.maps[name] = Path(out_maps) / str(i) if multi else Path(out_maps)
    return paths


# Events worth a log line (per-frame scores are not: they go to the events file only).
LOGGED_EVENTS = ("alarm", "alarm_end", "lost", "gap", "gave_up", "truncated", "skip", "error", "size_change",
                 "source_end", "end")


class SinkSet:
    """The outputs one run asked for, per source: routes each frame's image and events to them.

    With several sources, video, image and map outputs get one file/folder each (`out_0.avi`, `frames/0/`);
    events from all sources share one file and carry their source's name. Every output is locked first,
    so a second run on one of them is refused before anything is written.
    """

    def __init__(self, names: list[str], out_video: str = "", out_frames: str = "", events: str = "",
                 show: bool = False, fps: float = 25.0, out_maps: str = ""):
        self.paths = output_paths(names, out_video, out_frames, events, out_maps)
        self.videos, self.folders, self.events, self.window = {}, {}, None, None
        self.maps: dict[str, MapSink] = {}
        self._locks: list[OutputLock] = []
        try:
            self._lock_outputs()
            self.window = WindowSink() if show else None
            for name, path in self.paths.videos.items():
                self.videos[name] = VideoSink(path, fps)
            for name, path in self.paths.folders.items():
                self.folders[name] = ImageFolderSink(path)
            for name, path in self.paths.maps.items():
                self.maps[name] = MapSink(path)
            self.events = EventSink(self.paths.events) if self.paths.events else None
        except BaseException:
            self.close()
            raise
        self.first_output = next((p for p in (out_video, out_frames, events, out_maps) if p), "")
        if not self.first_output and not show:
            log.warning("no output asked for: pass --out-video, --out-frames, --events, --out-maps or --show")

    def _lock_outputs(self) -> None:
        for label, path in self.paths.labelled().items():
            folder = path in self.paths.folders.values() or path in self.paths.maps.values()
            if not folder:
                _make_parent(path, label)
            self._locks.append(OutputLock(path, label, folder=folder).acquire())

    @property
    def draw(self) -> bool:
        """Whether tasks need to draw images at all (skipped when only events are written)."""
        return bool(self.videos or self.folders or self.window)

    @property
    def stop_requested(self) -> bool:
        return bool(self.window and self.window.stop_requested)

    def frame(self, source: str, index: int, image: np.ndarray | None, source_file: str = "") -> None:
        if image is None:
            return
        if source in self.videos:
            self.videos[source].write(image)
        if source in self.folders:
            self.folders[source].write(image, index, source_file)
        if self.window:
            self.window.write(image, f"edgeae: {source}")

    def score_map(self, source: str, index: int, score_map: np.ndarray) -> None:
        if source in self.maps:
            self.maps[source].write(score_map, index)

    def event(self, event: dict) -> None:
        if self.events:
            self.events.write(event)
        if event["event"] in LOGGED_EVENTS:
            log.info("%s", json.dumps(event), extra={"event_fields": event})

    def close(self, end: dict | None = None) -> None:
        """Finalise every output, then write `end` (the last event, once the videos are complete).

        Every sink is closed and every lock released even when one fails; the first failure is raised.
        """
        failure: BaseException | None = None
        for sink in [*self.videos.values(), *self.folders.values(), *self.maps.values(), self.window]:
            try:
                if sink is not None:
                    sink.close()
            except Exception as e:
                failure = failure or e
        try:
            if end is not None:
                self.event(end if failure is None else {**end, "error": str(failure)})
            if self.events:
                self.events.close()
        except Exception as e:
            failure = failure or e
        finally:
            for lock in self._locks:
                lock.release()
            self._locks = []
        if failure is not None:
            raise failure
