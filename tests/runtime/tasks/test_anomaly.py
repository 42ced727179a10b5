"""Anomaly detection: scoring pieces without a model, then calibration and detection on vtest.avi."""

import json

import cv2
import numpy as np
import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime.pipeline import RunConfig, run
from edgeae.runtime.sources import iter_frames
from edgeae.runtime.tasks.anomaly import (AnomalyConfig, ConsecutiveAlarm, anomaly_box, calibrate_run,
                                          calibrate_threshold, error_maps, frame_score, load_task)


def test_error_maps_sum_squared_error_over_channels():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 3, 8, 12), np.float32), rng.random((2, 3, 8, 12), np.float32)
    out = error_maps(a, b, np.empty_like(a), np.empty((2, 8, 12), np.float32))
    np.testing.assert_allclose(out, ((a - b) ** 2).sum(axis=1), rtol=1e-6)


def test_frame_score_is_mean_of_top_k():
    small = np.zeros((10, 10), np.float32)
    small[0, :4] = [4, 3, 2, 1]
    assert frame_score(small, 2) == pytest.approx(3.5)
    assert frame_score(small, 1000) == pytest.approx(10 / 100)


def test_threshold_is_quantile_times_margin():
    scores = np.arange(1, 101, dtype=float)
    assert calibrate_threshold(scores, 0.5, 2.0) == pytest.approx(2 * np.quantile(scores, 0.5))


def test_alarm_needs_n_consecutive_anomalous_frames():
    alarm = ConsecutiveAlarm(3)
    changes = [alarm.update(a) for a in [True, True, False, True, True, True, True, False]]
    assert changes == [None, None, None, None, None, "alarm", None, "alarm_end"]


def test_box_surrounds_largest_region_above_threshold():
    small = np.zeros((20, 30), np.float32)
    small[5:8, 10:14] = 1.0
    small[15, 2] = 1.0
    assert anomaly_box(small, 0.5, scale=4) == (40, 20, 16, 12)
    assert anomaly_box(np.zeros_like(small), 0.5, scale=4) is None


def test_anomaly_run_without_calibration_names_the_command(trained_run):
    with pytest.raises(EdgeAEError, match="edgeae calibrate"):
        load_task(trained_run)


def paste_defect(frame: np.ndarray, i: int) -> np.ndarray:
    """A bright 40×40 patch (flat colour or checkerboard), somewhere different in every frame."""
    out = frame.copy()
    x, y = 100 + (i * 97) % 500, 100 + (i * 53) % 350
    if i % 2:
        out[y:y + 40, x:x + 40] = (255, 0, 255)
    else:
        checker = (np.indices((40, 40)).sum(0) // 5 % 2).astype(bool)
        patch = out[y:y + 40, x:x + 40]
        patch[checker], patch[~checker] = (0, 255, 255), (255, 0, 0)
    return out


@pytest.fixture(scope="module")
def calibrated(vtest_run, footage):
    """vtest_run calibrated on the first 40 frames of vtest.avi (4 s of the street)."""
    cfg = calibrate_run(vtest_run, str(footage / "vtest.avi"), AnomalyConfig(), limit=40, progress=False, threads=1)
    return vtest_run, cfg


def test_calibration_stores_threshold_and_reference_with_the_model(calibrated):
    run_dir, cfg = calibrated
    saved = json.loads((run_dir / "anomaly.json").read_text())
    assert saved["threshold"] == pytest.approx(cfg.threshold) and cfg.threshold > cfg.score_max
    assert saved["frames"] == 40 and saved["source"].endswith("vtest.avi")
    assert np.load(run_dir / "anomaly_reference.npy").shape == (576 // 4, 768 // 4)


def test_events_flag_defects_pasted_into_held_out_frames(calibrated, footage, tmp_path):
    run_dir, _ = calibrated
    held_out = list(iter_frames(footage / "vtest.avi", limit=16, stride=30))[4:]  # frames 120, 150, …
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(held_out):
        cv2.imwrite(str(folder / f"{i:03d}.png"), paste_defect(frame, i) if i >= 6 else frame)
    events = tmp_path / "events.jsonl"
    run(RunConfig(run=str(run_dir), task="anomaly", sources=(str(folder),), events=str(events),
                  out_video=str(tmp_path / "anomaly.avi"), threads=1), progress=False)
    frames = [e for e in map(json.loads, events.read_text().splitlines()) if e["event"] == "frame"]
    decisions = [e["anomalous"] for e in frames]
    assert decisions[6:] == [True] * 6, decisions
    assert sum(decisions[:6]) <= 1, decisions
    assert any(e["event"] == "alarm" for e in map(json.loads, events.read_text().splitlines()))
