"""The backend interface: small enough to read in one screen.

A backend loads one model file and runs batches on it. The base class checks feeds once
(names, dtype, rank) so implementations only write `_infer`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.run_files import onnx_path


class Backend(ABC):
    name: str = "backend"
    input_names: list[str]
    output_names: list[str]
    metadata: dict[str, str]  # the model's "edgeae.*" metadata
    # Whether `load(..., streams=N)` is accepted: N calls may then run at once from N threads, the cores split
    # between them (more frames per second from a video file, each frame slower). `streams`: what was loaded.
    runs_concurrently: bool = False
    streams: int = 1

    @classmethod
    def check_streams(cls, streams: int) -> None:
        """Refuse a stream count below 1 (load's `streams`, where a backend runs calls concurrently)."""
        if streams < 1:
            raise EdgeAEError(f"{cls.name} streams must be 1 or more, got {streams}")

    @classmethod
    def model_file(cls, model_dir: str | os.PathLike, role: str, precision: str) -> Path:
        """The file this backend loads for `role` ("encoder"/"decoder") at `precision` in a run folder."""
        return onnx_path(model_dir, role, precision)

    @classmethod
    @abstractmethod
    def load(cls, path: str | os.PathLike, **options) -> "Backend":
        """Load a model file; raises EdgeAEError naming the file if it cannot."""

    @abstractmethod
    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ...

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch: float32 NCHW arrays by input name → float32 arrays by output name."""
        if set(feeds) != set(self.input_names):
            raise EdgeAEError(f"{self.name}: inputs {sorted(feeds)} given, model expects {self.input_names}")
        for name, array in feeds.items():
            if array.dtype != np.float32 or array.ndim != 4:
                raise EdgeAEError(f"{self.name}: input {name} must be float32 NCHW, got {array.dtype} {array.shape}")
        return self._infer(feeds)

    def close(self) -> None:
        """Free what this backend created; calling twice is harmless."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
