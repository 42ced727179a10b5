"""Frames ↔ network tensors, vectorised: BGR uint8 HxWx3 ↔ RGB float32 NCHW in [0, 1].

Sides that are not multiples of the model's downsampling factor are reflect-padded and cropped
back afterwards, never resized.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgeae.errors import EdgeAEError


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad an HxWxC image at the bottom/right so both sides are multiples of `multiple`."""
    h, w = image.shape[:2]
    ph, pw = padded_size(h, w, multiple)
    if (ph, pw) == (h, w):
        return image
    # Reflection needs the pad to be shorter than the side; tiny frames repeat their edge instead.
    border = cv2.BORDER_REFLECT_101 if ph - h < h and pw - w < w else cv2.BORDER_REPLICATE
    return cv2.copyMakeBorder(image, 0, ph - h, 0, pw - w, border)


def frames_to_batch(frames: list[np.ndarray], multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Same-size BGR uint8 frames → (N×3×H'×W' float32 RGB in [0,1], original (H, W))."""
    if not frames:
        raise EdgeAEError("no frames to process")
    size = frames[0].shape[:2]
    for f in frames:
        if f.shape[:2] != size or f.ndim != 3 or f.shape[2] != 3:
            raise EdgeAEError(f"frames in one batch must share one size and be BGR: {f.shape} vs {size}")
    stack = np.stack([pad_to_multiple(f, multiple) for f in frames])  # N×H'×W'×3 uint8
    batch = stack[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)  # BGR→RGB, NHWC→NCHW in one copy
    batch *= np.float32(1 / 255)
    return batch, size


def batch_to_frames(batch: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
    """N×3×H'×W' float RGB in [0,1] → list of BGR uint8 frames cropped back to `size`."""
    h, w = size
    images = batch[:, ::-1, :h, :w].transpose(0, 2, 3, 1)  # RGB→BGR, NCHW→NHWC (views)
    out = np.clip(images * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return list(out)
