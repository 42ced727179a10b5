"""What every per-frame task shares: its result type and the name → task registry `edgeae run` uses.

The pipeline imports this module, never a task module, and tasks import only this: no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class FrameResult:
    """What a task made of one frame: an image for the visual sinks (None if not drawn), events, and the
    anomaly task's per-pixel score map when asked for (float32 H×W, for --out-maps)."""

    image: np.ndarray | None
    events: list[dict] = field(default_factory=list)
    score_map: np.ndarray | None = None


def _anomaly(run_dir: str, model_info, side_by_side: bool):
    from edgeae.runtime.tasks.anomaly import load_task

    return load_task(run_dir, model_info.checkpoint_sha256)


def _frame_task(name: str) -> Callable:
    def make(run_dir: str, model_info, side_by_side: bool):
        from edgeae.runtime.tasks.denoise import DenoiseTask

        return DenoiseTask(name, side_by_side=side_by_side, model_task=model_info.task)
    return make


# name → factory(run_dir, model_info, side_by_side) → a task with `.name` and `.process(frames, batch, recon, draw)`
TASKS: dict[str, Callable] = {
    "anomaly": _anomaly,
    "denoise": _frame_task("denoise"),
    "reconstruct": _frame_task("reconstruct"),
}


def make_task(name: str, run_dir: str, model_info, side_by_side: bool = False):
    """The task called `name` for the model loaded from `run_dir` (model_info: its ModelInfo)."""
    return TASKS[name](run_dir, model_info, side_by_side)
