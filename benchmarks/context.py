"""What every section gets: the config, the trained runs, held-out footage frames, pinned threads."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from benchmarks.models import BenchConfig, first_unseen_frame, train_configs
from edgeae.runtime import sources
from edgeae.training.train import TrainConfig


@dataclass
class Context:
    cfg: BenchConfig
    runs: dict[str, Path]
    threads: int

    @property
    def train_cfg(self) -> TrainConfig:
        return train_configs(self.cfg)["seed"]

    @cached_property
    def heldout_frames(self) -> list[np.ndarray]:
        """BGR frames after the last one training read (the last frames, if training read them all)."""
        start = first_unseen_frame(self.train_cfg)
        frames = list(sources.iter_video(self.cfg.footage))
        held = frames[start:] if len(frames) - start >= 8 else frames[-8:]
        return held

    @cached_property
    def calibration_frames(self) -> list[np.ndarray]:
        """Frames from the training period (what a camera saw before it was deployed)."""
        stop = first_unseen_frame(self.train_cfg)
        frames = list(sources.iter_video(self.cfg.footage, limit=max(stop, 8)))
        return self.pick(frames, 24 if self.cfg.quick else 150)

    def pick(self, frames: list[np.ndarray], n: int) -> list[np.ndarray]:
        """n frames spread evenly over `frames`."""
        idx = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
        return [frames[i] for i in idx]

    def torch_threads(self) -> None:
        import torch

        torch.set_num_threads(self.threads)
