"""Reading frames with OpenCV: image files, image folders, video files and cameras.

Frames are BGR uint8 HxWx3 (OpenCV's convention); grayscale and BGRA inputs are converted.
"""

from __future__ import annotations

import os
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
