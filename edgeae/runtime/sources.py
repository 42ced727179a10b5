"""Reading frames with OpenCV: image files, image folders, video files, cameras, streams, GStreamer.

Frames are BGR uint8 HxWx3 (OpenCV's convention); grayscale and BGRA inputs are converted.
The iter_* functions read synchronously (training, calibration); FrameSource captures in a thread
for `edgeae run`.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edgeae.errors import EdgeAEError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """Grayscale (HxW or HxWx1) and BGRA frames → BGR; BGR passes through untouched."""
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as BGR uint8, or raise EdgeAEError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise EdgeAEError(f"image {path} not found; check the path")
    frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if frame is None:
        raise EdgeAEError(f"cannot decode image {path}: not an image OpenCV can read")
    if frame.dtype != np.uint8:  # 16-bit PNG/TIFF: keep the top 8 bits
        frame = (frame / 257).astype(np.uint8) if frame.dtype == np.uint16 else frame.astype(np.uint8)
    return to_bgr(frame)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in `folder`, sorted by name; error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgeAEError(f"data folder {folder} not found; check the path or run 'make data'")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise EdgeAEError(f"data folder {folder} has no images ({', '.join(IMAGE_EXTENSIONS)}); point --data at a folder of images")
    return files


def is_camera(spec: str | int) -> bool:
    return isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit())


def open_video(spec: str | int) -> cv2.VideoCapture:
    """Open a video file, camera index or stream URL; raise EdgeAEError if OpenCV cannot."""
    if is_camera(spec):
        cap = cv2.VideoCapture(int(spec))
        if not cap.isOpened():
            raise EdgeAEError(f"camera {spec} cannot be opened: is it connected and free? ('edgeae doctor' lists cameras)")
        return cap
    if "://" not in str(spec) and not Path(spec).is_file():
        raise EdgeAEError(f"video {spec} not found; check the path")
    cap = cv2.VideoCapture(str(spec))
    if not cap.isOpened():
        raise EdgeAEError(f"video {spec} cannot be opened: not a video, or a codec this OpenCV build lacks")
    return cap


def video_frame_count(cap: cv2.VideoCapture) -> int:
    """Frame count the container claims (0 if unknown, e.g. cameras and streams)."""
    return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))


def iter_video(spec: str | int, limit: int | None = None, stride: int = 1) -> Iterator[np.ndarray]:
    """Yield every `stride`-th frame of a video/camera, at most `limit` frames.

    A file that yields no frame at all is an error; a damaged file ends at its last good frame.
    """
    cap = open_video(spec)
    try:
        index = produced = 0
        while limit is None or produced < limit:
            ok = cap.grab()
            if not ok:
                break
            if index % stride == 0:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    yield to_bgr(frame)
                    produced += 1
            index += 1
        if produced == 0:
            raise EdgeAEError(f"video {spec} opened but yielded no frames: empty or damaged file")
    finally:
        cap.release()


def iter_frames(spec: str | int, limit: int | None = None, stride: int = 1) -> Iterator[np.ndarray]:
    """Frames from an image file, an image folder, a video file or a camera index, as BGR uint8."""
    if not is_camera(spec) and "://" not in str(spec):
        path = Path(spec)
        if path.is_dir():
            for f in list_images(path)[::stride][:limit]:
                yield read_image(f)
            return
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            yield read_image(path)
            return
    yield from iter_video(spec, limit=limit, stride=stride)


# ---------------------------------------------------------------------------------------------------
# Live capture for `edgeae run`: any source OpenCV users expect, read in its own thread.

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
KINDS = ("camera", "stream", "gstreamer", "video", "folder", "image")
LIVE_KINDS = ("camera", "stream", "gstreamer")
END = object()  # what FrameSource.read returns once a source has ended


def source_kind(spec: str) -> str:
    """Which kind of source `spec` names: camera, stream, gstreamer, video, folder or image."""
    if is_camera(spec):
        return "camera"
    if spec.lower().startswith(STREAM_SCHEMES):
        return "stream"
    if "!" in spec:  # 'nvarguscamerasrc ! ... ! appsink': GStreamer's link operator
        return "gstreamer"
    path = Path(spec)
    if path.is_dir():
        return "folder"
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return "image"
    return "video"


def opencv_has_gstreamer() -> bool:
    info = cv2.getBuildInformation()
    return any("GStreamer:" in line and "YES" in line for line in info.splitlines())


@dataclass(frozen=True)
class CaptureOptions:
    """How a FrameSource captures: queue depth, reconnection backoff, network timeouts."""

    file_queue: int = 8                # frames buffered ahead for files (blocking: nothing is dropped)
    backoff_start_s: float = 0.1       # first reconnection delay, doubled after each failure …
    backoff_max_s: float = 2.0         # … up to this
    reconnect_timeout_s: float = 30.0  # a live source down for longer than this gives up; 0: retry until stopped
    timeout_ms: int = 5000             # FFmpeg open/read timeout for streams


@dataclass
class Frame:
    """One captured frame: BGR uint8 image, its index in its source, and a timestamp in seconds."""

    image: np.ndarray
    index: int
    timestamp: float
    source: str
    file: str = ""  # the image file's name, for folder and image sources: outputs are named after it


def check_supported(spec: str, kind: str) -> None:
    """Raise EdgeAEError for a source this OpenCV can never open (unlike a camera that is down for now)."""
    if kind == "gstreamer" and not opencv_has_gstreamer():
        raise EdgeAEError(f"source {spec!r} is a GStreamer pipeline but this OpenCV has no GStreamer; "
                          "use an OpenCV built with it (e.g. JetPack's) or pass a camera index/URL")


def _open_capture(spec: str, kind: str, options: CaptureOptions) -> cv2.VideoCapture:
    """Open a camera, stream, GStreamer pipeline or video file; raise EdgeAEError if OpenCV cannot."""
    if kind == "gstreamer":
        cap = cv2.VideoCapture(spec, cv2.CAP_GSTREAMER)
    elif kind == "stream":
        cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, options.timeout_ms,
                                                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, options.timeout_ms])
    else:
        return open_video(spec)
    if not cap.isOpened():
        raise EdgeAEError(f"{kind} {spec} cannot be opened: check the address/pipeline and that it is running")
    return cap


class FrameSource:
    """Frames from one source, captured in a daemon thread into a bounded queue.

    Live sources (camera, stream, GStreamer) keep only the newest frame, because latency matters more
    than completeness; a live source that is down, at the start or later, is reopened with capped
    exponential backoff until it answers, it is stopped, or `reconnect_timeout_s` passes (then it ends
    with a `gave_up` event and `self.gave_up` says why). Files and folders drop nothing (the thread blocks
    on a full queue) and end cleanly. Events (outages, skipped frames, `source_end`) are dicts on `self.events`,
    read by the pipeline.
    """

    def __init__(self, spec: str, name: str | None = None, options: CaptureOptions = CaptureOptions()):
        self.spec, self.name, self.options = str(spec), name or str(spec), options
        self.kind = source_kind(self.spec)
        self.live = self.kind in LIVE_KINDS
        self.frames: queue.Queue = queue.Queue(maxsize=1 if self.live else options.file_queue)
        self.events: queue.Queue = queue.Queue()
        self.dropped = 0            # live frames replaced by a newer one before the pipeline took them
        self.read_seconds = 0.0     # time the capture thread spent reading + decoding
        self.fps = 0.0
        self.gave_up = ""           # why a live source stopped retrying ("" while it has not)
        self._stop = threading.Event()
        self._cap = None
        self._down = ""             # why a live source could not be opened at the start (its thread retries)
        check_supported(self.spec, self.kind)
        if self.kind == "folder":
            self._files = list_images(self.spec)
        elif self.kind == "image":
            self._files = [Path(self.spec)]
        elif self.live:
            try:
                self._cap = _open_capture(self.spec, self.kind, options)
            except EdgeAEError as e:
                self._down = str(e)
        else:
            self._cap = open_video(self.spec)
        if self._cap is not None:
            self.fps = _sane_fps(self._cap.get(cv2.CAP_PROP_FPS))
        self.length = 0 if self.live else len(self._files) if self._cap is None else video_frame_count(self._cap)
        self._thread = threading.Thread(target=self._run, name=f"capture:{self.name}", daemon=True)

    def start(self) -> "FrameSource":
        self._thread.start()
        return self

    def read(self, timeout: float | None = None) -> Frame | object | None:
        """The next frame, END once the source has ended, or None if nothing came within `timeout`."""
        try:
            return self.frames.get(timeout=timeout) if timeout != 0 else self.frames.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a file thread waiting on a full queue
            self._drain()
            self._thread.join(timeout=0.05)
        if self._cap is not None:
            self._cap.release()

    def __enter__(self) -> "FrameSource":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _drain(self) -> None:
        try:
            while True:
                self.frames.get_nowait()
        except queue.Empty:
            pass

    def _event(self, kind: str, **fields) -> None:
        self.events.put({"event": kind, "source": self.name, **fields})

    def _put(self, frame: Frame) -> None:
        if not self.live:
            while not self._stop.is_set():
                try:
                    self.frames.put(frame, timeout=0.1)
                    return
                except queue.Full:
                    continue
            return
        try:  # newest frame wins: replace the one the pipeline has not taken yet
            self.frames.put_nowait(frame)
        except queue.Full:
            self._drain()
            self.dropped += 1
            self.frames.put_nowait(frame)

    def _finish(self) -> None:
        if self.live:  # END replaces a stale frame rather than waiting behind it
            self._drain()
        self._put(END)

    def _run(self) -> None:
        try:
            if not self.live and self._cap is None:
                self._read_files()
            else:
                self._read_capture()
        except Exception as e:  # a bug or an OpenCV failure: end the source, say why, keep the others going
            self._event("error", message=f"{type(e).__name__}: {e}")
        finally:
            self._event("source_end")
            self._finish()

    def _read_files(self) -> None:
        for index, path in enumerate(self._files):
            if self._stop.is_set():
                return
            start = time.perf_counter()
            try:
                image = read_image(path)
            except EdgeAEError as e:
                self._event("skip", frame=index, reason=str(e))
                continue
            self.read_seconds += time.perf_counter() - start
            self._put(Frame(image, index, float(index), self.name, path.name))

    def _read_capture(self) -> None:
        index = 0
        if self._cap is None and not self._reconnect(self._down):
            return
        while not self._stop.is_set():
            start = time.perf_counter()
            ok = self._cap.grab()
            if not ok:
                if not self.live:
                    self._check_complete(index)
                    return
                if not self._reconnect(f"{self.kind} {self.spec} stopped sending frames"):
                    return
                continue
            ok, image = self._cap.retrieve()
            self.read_seconds += time.perf_counter() - start
            if not ok or image is None or image.size == 0:
                self._event("skip", frame=index, reason="frame could not be decoded")
            else:
                self._put(Frame(to_bgr(image), index, self._timestamp(index), self.name))
            index += 1

    def _check_complete(self, read: int) -> None:
        """A damaged file ends early: say how much of what its header claims was readable."""
        claimed = video_frame_count(self._cap)
        if claimed and read < claimed:
            self._event("truncated", frames_read=read, frames_claimed=claimed)

    def _timestamp(self, index: int) -> float:
        """Video time for files (position in the file), wall-clock time for live sources."""
        if self.live:
            return time.time()
        msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        return msec / 1000 if msec > 0 or index == 0 else index / (self.fps or 1)

    def _reconnect(self, reason: str) -> bool:
        """Reopen a live source with capped exponential backoff; report the outage. False: stopped or gave up."""
        lost_at = time.monotonic()
        self._event("lost", reason=reason)
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        delay, timeout = self.options.backoff_start_s, self.options.reconnect_timeout_s
        while not self._stop.wait(delay):
            try:
                self._cap = _open_capture(self.spec, self.kind, self.options)
            except EdgeAEError as e:
                down = time.monotonic() - lost_at
                if timeout and down > timeout:
                    self.gave_up = str(e)
                    self._event("gave_up", seconds=round(down, 3), reason=str(e))
                    return False
                delay = min(2 * delay, self.options.backoff_max_s)
                continue
            self.fps = self.fps or _sane_fps(self._cap.get(cv2.CAP_PROP_FPS))
            gap = time.monotonic() - lost_at
            missed = round(gap * self.fps) if self.fps else None
            self._event("gap", seconds=round(gap, 3), frames_missed=missed)
            return True
        return False


def _sane_fps(fps: float) -> float:
    """Streams often report 0 or a 90 kHz clock as their rate: keep only plausible values."""
    return float(fps) if 0 < fps <= 240 else 0.0
