"""Images a person looks at: side-by-side comparisons with labels."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edgeae.config import atomic_write_bytes
from edgeae.errors import EdgeAEError
from edgeae.runtime.quality import psnr


def side_by_side(left: np.ndarray, right: np.ndarray, labels: tuple[str, str] = ("input", "reconstruction")) -> tuple[np.ndarray, float]:
    """Two BGR frames next to each other, labelled, the right one with its PSNR; returns (image, psnr)."""
    score = psnr(left, right)
    panels = []
    for frame, text in ((left, labels[0]), (right, f"{labels[1]}  {score:.2f} dB")):
        panel = frame.copy()
        cv2.putText(panel, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(panel, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(panel)
    return np.hstack(panels), score


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Encode with OpenCV by the file's extension and write atomically."""
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise EdgeAEError(f"cannot encode {path}: use .png or .jpg")
    atomic_write_bytes(path, buf.tobytes())
