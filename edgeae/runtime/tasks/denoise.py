"""Denoising (and plain reconstruction): the autoencoder's output is the result frame.

A model trained noisy → clean (`edgeae train --task denoise`) returns a cleaned frame; a model trained
to reconstruct returns its reconstruction. Both are the same step at run time, so one class serves
`--task denoise` and `--task reconstruct`; only the labels and the warning differ.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from edgeae.runtime.preprocess import chw_to_bgr
from edgeae.runtime.tasks.base import FrameResult
from edgeae.runtime.visualise import side_by_side

log = logging.getLogger("edgeae.runtime")


class DenoiseTask:
    """Writes the model's output frame, or input | output side by side; events carry the PSNR between them."""

    def __init__(self, name: str = "denoise", side_by_side: bool = False, model_task: str | None = None):
        self.name = name
        self.side_by_side = side_by_side
        self.labels = ("input", "denoised") if name == "denoise" else ("input", "reconstruction")
        if name == "denoise" and model_task not in (None, "denoise"):
            log.warning("this model was trained for %r, not denoising: its output is a reconstruction; "
                        "train one with 'edgeae train --task denoise'", model_task)

    def process(self, frames: list, batch: np.ndarray, recon: np.ndarray, draw: bool) -> list[FrameResult]:
        results = []
        for i, frame in enumerate(frames):
            h, w = frame.image.shape[:2]
            output = chw_to_bgr(recon[i], h, w)
            psnr = float(cv2.PSNR(frame.image, output))
            event = {"event": "frame", "source": frame.source, "frame": frame.index,
                     "time": round(frame.timestamp, 3), "psnr_vs_input": round(psnr, 3)}
            image = side_by_side(frame.image, output, self.labels)[0] if self.side_by_side and draw else output
            results.append(FrameResult(image=image, events=[event]))
        return results
