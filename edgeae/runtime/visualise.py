"""Images a person looks at: side-by-side comparisons with labels."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edgeae.config import atomic_write_bytes
from edgeae.errors import EdgeAEError
from edgeae.runtime.quality import psnr

LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_BANNER = (40, 40, 40)  # BGR; dark grey, so a label reads on any frame
WHITE = (255, 255, 255)


def label_scale(width: int) -> float:
    """Font scale for an image `width` pixels wide: legible on a 192-pixel thumbnail and on a 1920-pixel frame."""
    return float(np.clip(width / 1100, 0.4, 1.2))


def draw_label(image: np.ndarray, text: str, origin: tuple[int, int] = (0, 0), colour: tuple[int, int, int] = WHITE,
               scale: float | None = None) -> np.ndarray:
    """Write `text` once, in `colour`, on a solid banner whose top-left corner is `origin`; in place, returns image.

    One stroke on a banner rather than a thick dark stroke under a thin light one: the two strokes of the
    outline style differ in width and show as doubled letters on small frames ("reconstructionn").
    """
    scale = label_scale(image.shape[1]) if scale is None else scale
    thickness = 1 if scale < 1 else 2
    (tw, th), baseline = cv2.getTextSize(text, LABEL_FONT, scale, thickness)
    pad = max(2, round(4 * scale))
    x, y = origin
    image[y:y + th + baseline + 2 * pad, x:x + tw + 2 * pad] = LABEL_BANNER  # clipped at the image's edges
    cv2.putText(image, text, (x + pad, y + pad + th), LABEL_FONT, scale, colour, thickness, cv2.LINE_AA)
    return image


def side_by_side(left: np.ndarray, right: np.ndarray, labels: tuple[str, str] = ("input", "reconstruction")) -> tuple[np.ndarray, float]:
    """Two BGR frames next to each other, labelled, the right one with its PSNR; returns (image, psnr)."""
    score = psnr(left, right)
    scale = label_scale(left.shape[1])
    panels = [draw_label(frame.copy(), text, scale=scale)
              for frame, text in ((left, labels[0]), (right, f"{labels[1]}  {score:.2f} dB"))]
    return np.hstack(panels), score


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Encode with OpenCV by the file's extension and write atomically."""
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise EdgeAEError(f"cannot encode {path}: use .png or .jpg")
    atomic_write_bytes(path, buf.tobytes())
