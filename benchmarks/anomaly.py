"""Anomaly detection on real frames with synthetic defects: edgeae's anomaly task against OpenCV's MOG2.

Defects (each with its ground-truth mask): a pasted patch of another scene, a scratch (a thin
line), a colour blob. Half the test frames get one, the other half stay clean.

edgeae's task is calibrated on normal frames and scored as `edgeae eval --task anomaly` scores it
(edgeae/runtime/evaluate.py: the deployed frame score, the per-pixel map, the calibrated threshold). The
section saves that calibration into the seed run and the test set as an eval DATA folder
(RUNS/bench-data/anomaly), so `edgeae eval runs/bench-seed --task anomaly --data runs/bench-data/anomaly`
prints the same numbers. MOG2, the classical baseline, gets the same metrics (image score: its smoothed
map's maximum).

Only the scorer edgeae ships is measured. A latent nearest-neighbour scorer and a per-pixel z-score of
the reconstruction error were measured here too (image AUROC 0.534 and 0.664 against the task's 0.787,
both slower: 58.5 and 44.4 ms against 31.8 ms per frame; `make bench` on vtest.avi, 2026-11-25) and were
removed rather than made selectable in `edgeae calibrate`.

`python -m benchmarks.anomaly OUT --footage VIDEO` writes such a labelled set from any footage.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime import Autoencoder
from edgeae.runtime.evaluate import PIXEL_STRIDE, anomaly_metrics, score_image
from edgeae.runtime.sources import iter_video
from edgeae.runtime.tasks.anomaly import AnomalyConfig, AnomalyTask, calibrate, save_calibration
from edgeae.runtime.visualise import write_image
from edgeae.training.data import synthetic_images

if TYPE_CHECKING:
    from benchmarks.context import Context

DEFECTS = ("patch", "scratch", "blob")
SMOOTH_SIGMA = 4.0  # MOG2's foreground mask is binary: smoothed into a score map
TASK_SCORER = "autoencoder seed: edgeae anomaly task (reference map, top-k)"


def add_defect(frame: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(frame with one defect, its mask as bool HxW)."""
    h, w = frame.shape[:2]
    out, mask = frame.copy(), np.zeros((h, w), np.uint8)
    side = max(6, int(min(h, w) * rng.uniform(0.06, 0.12)))
    y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    if kind == "patch":
        scene = synthetic_images(1, size=(64, 64), seed=int(rng.integers(1 << 30)))[0]
        out[y:y + side, x:x + side] = cv2.resize(scene[..., ::-1], (side, side), interpolation=cv2.INTER_AREA)
        mask[y:y + side, x:x + side] = 1
    elif kind == "scratch":
        end = (int(np.clip(x + rng.integers(-3, 4) * side, 0, w - 1)), int(np.clip(y + rng.integers(-2, 3) * side, 0, h - 1)))
        thickness = max(1, min(h, w) // 200)
        cv2.line(mask, (x, y), end, 1, thickness + 1)
        cv2.line(out, (x, y), end, colour, thickness + 1)
    else:
        axes = (side // 2, max(2, int(side * rng.uniform(0.25, 0.5))))
        cv2.ellipse(mask, (x + side // 2, y + side // 2), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        out[mask > 0] = colour
    return out, mask.astype(bool)


def make_test_set(frames: list[np.ndarray], seed: int) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Every other frame gets a defect (kinds in turn); returns (frames, masks, kind or "" per frame)."""
    rng = np.random.default_rng(seed)
    images, masks, kinds = [], [], []
    for i, frame in enumerate(frames):
        kind = DEFECTS[(i // 2) % len(DEFECTS)] if i % 2 else ""
        image, mask = add_defect(frame, kind, rng) if kind else (frame, np.zeros(frame.shape[:2], bool))
        images.append(image)
        masks.append(mask)
        kinds.append(kind)
    return images, masks, kinds


def write_eval_set(folder: Path, images: list[np.ndarray], masks: list[np.ndarray], kinds: list[str]) -> None:
    """The test set as `edgeae eval --task anomaly` reads it: good/NNN.png, defect/<kind>/NNN.png and
    mask/<kind>/NNN_mask.png (PNG: lossless, so eval scores the very same pixels). `folder` must be new or empty."""
    if folder.exists() and any(folder.iterdir()):
        raise EdgeAEError(f"{folder} is not empty; choose a new folder for the labelled set")
    for i, (image, mask, kind) in enumerate(zip(images, masks, kinds)):
        write_image(folder / (f"defect/{kind}" if kind else "good") / f"{i:03d}.png", image)
        if kind:
            write_image(folder / "mask" / kind / f"{i:03d}_mask.png", mask.astype(np.uint8) * 255)


def smooth(error: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(error.astype(np.float32), (0, 0), SMOOTH_SIGMA)


class TaskScorer:
    """edgeae's anomaly task, calibrated on the normal frames: (frame score, per-pixel map) as `edgeae eval` has them."""

    def __init__(self, ae: Autoencoder, task: AnomalyTask):
        self.ae, self.task = ae, task

    def __call__(self, frame: np.ndarray) -> tuple[float, np.ndarray]:
        return score_image(self.ae, self.task, frame)


class Mog2Scorer:
    """OpenCV's MOG2 background model learned on normal frames, frozen (learning rate 0) for testing."""

    def __init__(self, normal_frames: list[np.ndarray]):
        self.mog = cv2.createBackgroundSubtractorMOG2(history=len(normal_frames), detectShadows=False)
        for frame in normal_frames:
            self.mog.apply(frame)

    def __call__(self, frame: np.ndarray) -> tuple[float, np.ndarray]:
        score_map = smooth(self.mog.apply(frame, learningRate=0) / 255.0)
        return float(score_map.max()), score_map


def _evaluate(scorer, images: list[np.ndarray], masks: list[np.ndarray], kinds: list[str],
              threshold: float | None = None) -> dict:
    scores, maps, times = [], [], []
    for image in images:
        t0 = time.perf_counter()
        score, score_map = scorer(image)
        times.append((time.perf_counter() - t0) * 1000)
        scores.append(score)
        maps.append(score_map)
    s = PIXEL_STRIDE
    metrics = anomaly_metrics(scores, kinds, threshold, [(m[::s, ::s], k[::s, ::s]) for m, k in zip(maps, masks)])
    result = {"image_auroc": metrics["image_auroc"], "pixel_auroc": metrics["pixel_auroc"],
              "image_auroc_per_defect": {k: d["image_auroc"] for k, d in metrics["per_defect"].items()},
              "ms_per_frame": float(np.median(times)), "_maps": maps}
    if threshold is not None:
        result |= {k: metrics[k] for k in ("threshold", "precision", "recall", "f1", "false_positive_rate")}
    return result


def anomaly(ctx: Context) -> dict:
    normal = ctx.calibration_frames
    test = ctx.pick(ctx.heldout_frames, 8 if ctx.cfg.quick else 60)
    images, masks, kinds = make_test_set(test, ctx.cfg.seed)
    data = Path(ctx.cfg.runs_dir) / "bench-data" / "anomaly"
    shutil.rmtree(data, ignore_errors=True)  # the bench's own folder: last run's set
    write_eval_set(data, images, masks, kinds)
    with Autoencoder.load(ctx.runs["seed"], threads=ctx.threads) as ae:
        source = f"{ctx.cfg.footage}: {len(normal)} frames spread over the training period (benchmarks/anomaly.py)"
        cfg, reference = calibrate(ae, normal, AnomalyConfig(source=source), progress=False)
        save_calibration(ctx.runs["seed"], cfg, reference)
        task = _evaluate(TaskScorer(ae, AnomalyTask(cfg, reference)), images, masks, kinds, cfg.threshold)
    results = {TASK_SCORER: task, "OpenCV MOG2 (frozen background)": _evaluate(Mog2Scorer(normal), images, masks, kinds)}
    shown = [kinds.index(k) for k in DEFECTS if k in kinds]
    examples = [{"image": images[i], "mask": masks[i], **{k: r["_maps"][i] for k, r in results.items()}} for i in shown]
    for r in results.values():
        r.pop("_maps")
    return {"test_frames": len(images), "defect_frames": sum(map(bool, kinds)), "normal_frames": len(normal),
            "defects": list(DEFECTS), "scorers": results, "eval_data": str(data),
            "eval_command": f"edgeae eval {ctx.runs['seed']} --task anomaly --data {data}", "_examples": examples}


def main(argv: list[str] | None = None) -> int:
    """Write a labelled anomaly set (good/, defect/<kind>/, mask/<kind>/) from footage, for `edgeae eval`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.anomaly", description=main.__doc__)
    parser.add_argument("out", help="new folder for the labelled set")
    parser.add_argument("--footage", default="data/opencv/vtest.avi", help="video to take frames from")
    parser.add_argument("--stride", type=int, default=8, help="every N-th frame (default 8)")
    parser.add_argument("--skip", type=int, default=25, help="leave out the first N of those (default 25: frames "
                        "0-199 of vtest.avi, which 'edgeae calibrate --frames 200' uses, stay unseen)")
    parser.add_argument("--frames", type=int, default=40, help="frames in the set, half with a defect (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        frames = list(iter_video(args.footage, stride=max(1, args.stride)))[args.skip:args.skip + args.frames]
        if not frames:
            raise EdgeAEError(f"{args.footage} has no frames after --skip {args.skip} (stride {args.stride})")
        images, masks, kinds = make_test_set(frames, args.seed)
        write_eval_set(Path(args.out), images, masks, kinds)
    except EdgeAEError as e:
        print(f"benchmarks.anomaly: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(images)} frames ({sum(map(bool, kinds))} with a defect) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
