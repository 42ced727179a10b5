"""Anomaly detection by reconstruction error: per-pixel error map, frame score, calibrated threshold.

Per frame: squared error summed over RGB at full resolution → area-averaged to 1/`scale` of each side
→ box-blurred (`smoothing`) → minus the reference map → score = mean of the `top_k` largest values.
A frame is anomalous when its score exceeds the threshold; an alarm starts after `consecutive`
anomalous frames in a row.

Reference map: the mean reduced error map of the calibration footage, saved beside the threshold
(anomaly_reference.npy). A fixed camera sees the same hard-to-reconstruct places (textured grass,
signs) in every frame; subtracting their usual error leaves what is new. On vtest.avi with a briefly
trained seed model it turned a 40×40 flat colour patch from never flagged into flagged in most frames
(see the README). Calibrate with --no-reference for a moving camera.

Threshold (`edgeae calibrate`): the `quantile` of the scores of normal footage times `margin`. A high
quantile rather than mean + k·std, because the scores of normal street footage are skewed (people
walking by raise the error) and a quantile needs no assumption about their shape; the margin keeps
the false-alarm rate on unseen normal frames below 1 − quantile.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeae.config import atomic_write_bytes, load_config, save_config
from edgeae.errors import EdgeAEError
from edgeae.runtime.tasks.base import FrameResult
from edgeae.runtime.preprocess import frames_to_batch
from edgeae.runtime.visualise import WHITE, draw_label

CALIBRATION_FILE = "anomaly.json"
REFERENCE_FILE = "anomaly_reference.npy"
QUANTILE_RANGE = (0.5, 1.0)  # below the median, half of the normal frames would be flagged
MARGIN_RANGE = (1.0, 100.0)  # below 1 defeats the margin's purpose; above 100 nothing is ever flagged


@dataclass(frozen=True)
class AnomalyConfig:
    """How frames are scored and the calibrated threshold; saved as RUN/anomaly.json."""

    threshold: float = 0.0
    quantile: float = 0.995
    margin: float = 1.25
    scale: int = 4         # error map is area-averaged to 1/scale of each side before smoothing
    smoothing: int = 5     # box blur side, in pixels of the reduced map
    top_k: int = 64        # frame score = mean of the top_k reduced-map pixels (64 ≈ 32×32 frame pixels at scale 4)
    consecutive: int = 3   # anomalous frames in a row before an alarm
    reference: str = REFERENCE_FILE  # per-location mean error of normal footage; "" = none
    source: str = ""
    frames: int = 0
    score_mean: float = 0.0
    score_std: float = 0.0
    score_max: float = 0.0
    checkpoint_sha256: str = ""

    def validate(self, calibrated: bool = True) -> None:
        """Refuse settings that would crash or silently flag nothing (a NaN threshold is never exceeded).
        calibrated: also check the threshold (False for the settings `calibrate` starts from)."""
        ranges = {"quantile": QUANTILE_RANGE, "margin": MARGIN_RANGE}
        for name, (low, high) in ranges.items():
            if not low <= getattr(self, name) <= high:  # `not <=` refuses nan too
                raise EdgeAEError(f"anomaly {name} {getattr(self, name)} must be from {low} to {high}")
        for name in ("scale", "smoothing", "top_k", "consecutive"):
            if getattr(self, name) < 1:
                raise EdgeAEError(f"anomaly {name} must be at least 1, got {getattr(self, name)}")
        if self.reference and (Path(self.reference).name != self.reference or self.reference in (".", "..")):
            raise EdgeAEError(f"anomaly reference {self.reference!r} must be a file name in the run folder")
        if calibrated and not (math.isfinite(self.threshold) and self.threshold > 0):
            raise EdgeAEError(f"anomaly threshold {self.threshold} must be a finite number above 0")


def error_maps(batch: np.ndarray, recon: np.ndarray, diff: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Squared error summed over channels, N×3×H×W → N×H×W, written into the caller's buffers."""
    np.subtract(batch, recon, out=diff)
    np.square(diff, out=diff)
    np.add(diff[:, 0], diff[:, 1], out=out)  # two adds beat .sum(axis=1), which strides over channels
    np.add(out, diff[:, 2], out=out)
    return out


def smoothed_map(error: np.ndarray, scale: int, smoothing: int) -> np.ndarray:
    """Full-resolution H×W error → area-averaged to 1/scale, box-blurred: cheap and denoised."""
    h, w = error.shape
    small = cv2.resize(error, (max(1, w // scale), max(1, h // scale)), interpolation=cv2.INTER_AREA)
    return cv2.blur(small, (smoothing, smoothing)) if smoothing > 1 else small


def frame_score(small_map: np.ndarray, top_k: int) -> float:
    """Mean of the `top_k` largest values (np.partition: linear time, no full sort)."""
    flat = small_map.ravel()
    k = min(top_k, flat.size)
    return float(np.partition(flat, flat.size - k)[flat.size - k:].mean())


def calibrate_threshold(scores: np.ndarray, quantile: float, margin: float) -> float:
    """Threshold on frame scores of normal footage: their `quantile` times `margin`."""
    if len(scores) == 0:
        raise EdgeAEError("no frames to calibrate on; point --data at normal footage")
    return float(np.quantile(scores, quantile) * margin)


def anomaly_box(small_map: np.ndarray, threshold: float, scale: int) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) in frame pixels of the largest region above `threshold`, or None."""
    mask = (small_map > threshold).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) * scale for v in stats[largest, :4])
    return x, y, w, h


def pixel_map(small_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The reduced map stretched back to the frame's `size` (h, w), bilinear: one score per frame pixel,
    in the units of the frame score (above the threshold = anomalous). What --out-maps writes and eval's
    pixel AUROC ranks."""
    return cv2.resize(small_map, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def overlay(frame: np.ndarray, small_map: np.ndarray, threshold: float, score: float,
            box: tuple[int, int, int, int] | None, alarm: bool) -> np.ndarray:
    """Frame with the error heatmap blended in (JET: red = twice the threshold), box and score."""
    h, w = frame.shape[:2]
    level = cv2.convertScaleAbs(small_map, alpha=127.5 / threshold)  # threshold ↦ mid-scale
    heat = cv2.applyColorMap(cv2.resize(level, (w, h), interpolation=cv2.INTER_LINEAR), cv2.COLORMAP_JET)
    image = cv2.addWeighted(frame, 0.6, heat, 0.4, 0)
    colour = (0, 0, 255) if alarm else (0, 255, 255)
    if box is not None:
        x, y, bw, bh = box
        cv2.rectangle(image, (x, y), (x + bw, y + bh), colour, 2)
    text = f"score {score / threshold:.2f}x{'  ALARM' if alarm else ''}"
    return draw_label(image, text, colour=colour if score > threshold else WHITE)


class ConsecutiveAlarm:
    """Alarm after `n` anomalous frames in a row; it ends at the first normal frame."""

    def __init__(self, n: int):
        self.n, self.run, self.active = n, 0, False

    def update(self, anomalous: bool) -> str | None:
        """Feed one decision; returns 'alarm' when the alarm starts, 'alarm_end' when it ends."""
        self.run = self.run + 1 if anomalous else 0
        if self.run >= self.n and not self.active:
            self.active = True
            return "alarm"
        if not anomalous and self.active:
            self.active = False
            return "alarm_end"
        return None


class AnomalyTask:
    """Scores each frame, decides, keeps one alarm counter per source, draws the overlay on request."""

    name = "anomaly"

    def __init__(self, cfg: AnomalyConfig, reference: np.ndarray | None = None):
        self.cfg, self.reference = cfg, reference
        self.full_maps = False  # FrameResult.score_map: the pixel_map of each frame (for --out-maps)
        self.alarms: dict[str, ConsecutiveAlarm] = {}
        self._buffers: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._references: dict[tuple, np.ndarray] = {}

    def reduced_map(self, error: np.ndarray) -> np.ndarray:
        """H×W error → smoothed reduced map minus the reference (clipped at 0)."""
        small = smoothed_map(error, self.cfg.scale, self.cfg.smoothing)
        if self.reference is None:
            return small
        if small.shape not in self._references:  # another frame size than calibrated: stretch it
            self._references[small.shape] = cv2.resize(self.reference, small.shape[::-1], interpolation=cv2.INTER_AREA)
        np.subtract(small, self._references[small.shape], out=small)
        return np.maximum(small, 0, out=small)

    def set_threshold(self, threshold: float) -> None:
        """Decide with `threshold` instead of the calibrated one (`edgeae run --threshold`)."""
        cfg = replace(self.cfg, threshold=threshold)
        cfg.validate()
        self.cfg = cfg

    def score(self, error: np.ndarray) -> tuple[float, np.ndarray]:
        """One frame's H×W error → (frame score, reduced map)."""
        small = self.reduced_map(error)
        return frame_score(small, self.cfg.top_k), small

    def errors(self, batch: np.ndarray, recon: np.ndarray) -> np.ndarray:
        # Buffers are kept per batch shape, so a steady stream allocates nothing after its first step.
        if batch.shape not in self._buffers:
            n, _, h, w = batch.shape
            self._buffers[batch.shape] = (np.empty_like(batch), np.empty((n, h, w), np.float32))
        diff, out = self._buffers[batch.shape]
        return error_maps(batch, recon, diff, out)

    def process(self, frames: list, batch: np.ndarray, recon: np.ndarray, draw: bool) -> list[FrameResult]:
        errors = self.errors(batch, recon)
        return [self._one(frame, errors[i], draw) for i, frame in enumerate(frames)]

    def _one(self, frame, error: np.ndarray, draw: bool) -> FrameResult:
        h, w = frame.image.shape[:2]
        return self.decide(frame, *self.score(error[:h, :w]), draw)

    def decide(self, frame, score: float, small: np.ndarray, draw: bool) -> FrameResult:
        """A scored frame (its score and reduced map, here or on a server) → decision, alarm, events, overlay."""
        cfg = self.cfg
        h, w = frame.image.shape[:2]
        anomalous = score > cfg.threshold
        alarm = self.alarms.setdefault(frame.source, ConsecutiveAlarm(cfg.consecutive))
        change = alarm.update(anomalous)
        box = anomaly_box(small, cfg.threshold, cfg.scale) if anomalous else None
        event = {"event": "frame", "source": frame.source, "frame": frame.index, "time": round(frame.timestamp, 3),
                 "score": round(score, 6), "threshold": round(cfg.threshold, 6), "anomalous": anomalous,
                 "alarm": alarm.active, "box": box}
        events = [event] + ([{**event, "event": change}] if change else [])
        image = overlay(frame.image, small, cfg.threshold, score, box, alarm.active) if draw else None
        return FrameResult(image=image, events=events, score_map=pixel_map(small, (h, w)) if self.full_maps else None)


def load_task(run_dir: str | os.PathLike, checkpoint_sha256: str | None = None) -> AnomalyTask:
    """The task from RUN/anomaly.json (+ reference map), checked to belong to the loaded model."""
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.is_file():
        raise EdgeAEError(f"{run_dir} has no anomaly threshold ({CALIBRATION_FILE}); "
                          f"run 'edgeae calibrate {run_dir} --data NORMAL_FOOTAGE' first")
    cfg = load_config(AnomalyConfig, path)
    try:
        cfg.validate()
    except EdgeAEError as e:
        raise EdgeAEError(f"{path}: {e}; rerun 'edgeae calibrate {run_dir} --data NORMAL_FOOTAGE'") from None
    if checkpoint_sha256 and cfg.checkpoint_sha256 != checkpoint_sha256:
        raise EdgeAEError(f"{path} was calibrated for another model; rerun 'edgeae calibrate {run_dir} --data …'")
    reference = load_reference(Path(run_dir) / cfg.reference) if cfg.reference else None
    return AnomalyTask(cfg, reference)


def load_reference(path: Path) -> np.ndarray:
    """The reference map: a 2-D array of finite errors (a NaN would zero every score it touches)."""
    fix = f"rerun 'edgeae calibrate {path.parent} --data NORMAL_FOOTAGE'"
    try:
        reference = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise EdgeAEError(f"{path} unreadable ({(str(e).splitlines() or [''])[0]}); {fix}") from None
    if reference.dtype.kind not in "fiu" or reference.ndim != 2 or reference.size == 0:
        raise EdgeAEError(f"{path} holds a {reference.dtype} array of shape {reference.shape}, "
                          f"not a 2-D error map; {fix}")
    reference = reference.astype(np.float32)
    if not np.isfinite(reference).all():
        raise EdgeAEError(f"{path} holds NaN or infinite errors; {fix}")
    return reference


def calibrate(ae, frames, cfg: AnomalyConfig, progress: bool = True,
              total: int | None = None) -> tuple[AnomalyConfig, np.ndarray | None]:
    """Score normal frames with `ae`: returns `cfg` with threshold and statistics, and the reference map.
    total: how many frames there are, for the progress bar."""
    cfg.validate(calibrated=False)
    task = AnomalyTask(cfg)
    maps = []
    for image in tqdm(frames, desc="calibrate", unit="frame", total=total, disable=not progress):
        batch, size = frames_to_batch([image], ae.info.downsample)
        error = task.errors(batch, ae.reconstruct_batch(batch))[0, :size[0], :size[1]]
        maps.append(task.reduced_map(error).copy())
    if not maps:
        raise EdgeAEError("no frames to calibrate on; point --data at normal footage")
    if len({m.shape for m in maps}) > 1:
        raise EdgeAEError("calibration frames differ in size; calibrate on footage from one camera")
    reference = np.mean(maps, axis=0).astype(np.float32) if cfg.reference else None
    scores = np.array([frame_score(np.maximum(m - reference, 0) if reference is not None else m, cfg.top_k) for m in maps])
    cfg = replace(cfg, threshold=calibrate_threshold(scores, cfg.quantile, cfg.margin), frames=len(scores),
                  score_mean=float(scores.mean()), score_std=float(scores.std()), score_max=float(scores.max()),
                  checkpoint_sha256=ae.info.checkpoint_sha256)
    if not (np.isfinite(scores).all() and (reference is None or np.isfinite(reference).all())):
        raise EdgeAEError("the model's reconstruction error on the calibration frames is NaN or infinite; "
                          "re-export the model ('edgeae export RUN') and check it with 'edgeae reconstruct'")
    if not cfg.threshold > 0:
        raise EdgeAEError(f"all {len(scores)} calibration frames scored 0 (identical frames?), so any change "
                          "would be an anomaly; calibrate on longer normal footage")
    cfg.validate()
    return cfg, reference


def calibrate_run(run_dir: str | os.PathLike, data: str, cfg: AnomalyConfig, limit: int = 200,
                  backend: str = "onnxruntime", progress: bool = True, **options) -> AnomalyConfig:
    """Calibrate on the first `limit` frames of `data`; save RUN/anomaly.json and the reference map."""
    from edgeae.runtime.autoencoder import Autoencoder
    from edgeae.runtime.sources import iter_frames
    from edgeae.runtime.tasks.compress import probe_source

    # A camera or a stream is not opened twice: it gives `limit` frames
    count = None if "://" in str(data) else probe_source(str(data))[1]
    total = min(count, limit) if count else limit
    with Autoencoder.load(run_dir, backend=backend, **options) as ae:
        result, reference = calibrate(ae, iter_frames(data, limit=limit), replace(cfg, source=str(data)), progress,
                                      total)
    save_calibration(run_dir, result, reference)
    return result


def save_calibration(run_dir: str | os.PathLike, cfg: AnomalyConfig, reference: np.ndarray | None) -> None:
    """Write RUN/anomaly.json and, with a reference, the reference map (each atomically)."""
    if reference is not None:
        buffer = io.BytesIO()
        np.save(buffer, reference, allow_pickle=False)
        atomic_write_bytes(Path(run_dir) / cfg.reference, buffer.getvalue())
    save_config(cfg, Path(run_dir) / CALIBRATION_FILE)
