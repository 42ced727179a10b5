"""Anomaly detection: scoring pieces without a model, then calibration and detection on vtest.avi."""

import json
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edgeae.config import to_dict
from edgeae.errors import EdgeAEError
from edgeae.runtime.pipeline import RunConfig, run
from edgeae.runtime.sources import iter_frames
from edgeae.runtime.tasks.anomaly import (AnomalyConfig, ConsecutiveAlarm, anomaly_box, calibrate, calibrate_run,
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


def _write_calibration(run_dir, reference_map=None, **edits):
    """RUN/anomaly.json as calibrate writes it, with `edits` applied to the JSON (NaN and Infinity allowed)."""
    cfg = AnomalyConfig(threshold=2.5, reference="anomaly_reference.npy" if reference_map is not None else "")
    (run_dir / "anomaly.json").write_text(json.dumps({**to_dict(cfg), **edits}))
    if reference_map is not None:
        np.save(run_dir / "anomaly_reference.npy", reference_map)


def test_sound_calibration_file_loads(tmp_path):
    _write_calibration(tmp_path, reference_map=np.ones((12, 16), np.float32))
    task = load_task(tmp_path)
    assert task.cfg.threshold == 2.5 and task.reference.shape == (12, 16)


@pytest.mark.parametrize("key, value", [
    ("threshold", float("nan")), ("threshold", float("inf")), ("threshold", 0.0), ("threshold", -1.0),
    ("scale", 0), ("top_k", 0), ("smoothing", 0), ("consecutive", 0),
    ("margin", float("nan")), ("quantile", 2.0), ("reference", "../elsewhere.npy"),
])
def test_edited_calibration_that_would_flag_nothing_or_crash_is_refused(tmp_path, key, value):
    _write_calibration(tmp_path, **{key: value})
    with pytest.raises(EdgeAEError, match=f"anomaly.json: anomaly {key} .*rerun 'edgeae calibrate") as info:
        load_task(tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("reference", [np.full((12, 16), np.nan, np.float32), np.full((12, 16), np.inf, np.float32),
                                       np.ones((2, 12, 16), np.float32), np.ones(16, np.float32),
                                       np.zeros((0, 16), np.float32), np.array([["a", "b"]])],
                         ids=["nan", "inf", "3-D", "1-D", "empty", "strings"])
def test_reference_map_that_is_not_a_finite_2d_map_is_refused(tmp_path, reference):
    _write_calibration(tmp_path, reference_map=reference)
    with pytest.raises(EdgeAEError, match="anomaly_reference.npy .*rerun 'edgeae calibrate"):
        load_task(tmp_path)


def test_anomaly_run_with_a_nan_threshold_exits_2_instead_of_flagging_nothing(trained_run, synthetic_video,
                                                                               tmp_path, capsys):
    from edgeae.cli import main

    for name in ("encoder.onnx", "decoder.onnx"):
        shutil.copy(trained_run / name, tmp_path / name)
    _write_calibration(tmp_path, threshold=float("nan"))
    assert main(["run", str(tmp_path), "--task", "anomaly", "--source", str(synthetic_video)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "anomaly threshold nan must be a finite number above 0" in err, err


class _FakeAutoencoder:
    """Reconstructs each batch as `recon(batch)`: calibration without a model."""

    def __init__(self, recon):
        self.info = SimpleNamespace(downsample=16, checkpoint_sha256="ab" * 32)
        self.reconstruct_batch = recon

    def encode_batch(self, batch):
        return batch

    def decode_batch(self, latent):
        return self.reconstruct_batch(latent)


def _frames(n=6):
    return [np.random.default_rng(i).integers(0, 256, (32, 48, 3), dtype=np.uint8) for i in range(n)]


def test_calibration_refuses_a_nan_margin_instead_of_writing_a_nan_threshold():
    with pytest.raises(EdgeAEError, match="anomaly margin nan must be from 1.0 to 100.0"):
        calibrate(_FakeAutoencoder(lambda b: b * 0.9), _frames(), AnomalyConfig(margin=float("nan")), progress=False)


@pytest.mark.parametrize("recon, message", [(lambda b: b.copy(), "scored 0"),
                                            (lambda b: np.full_like(b, np.nan), "NaN or infinite")],
                         ids=["perfect reconstruction", "nan reconstruction"])
def test_calibration_that_would_give_an_unusable_threshold_is_refused(recon, message):
    with pytest.raises(EdgeAEError, match=message):
        calibrate(_FakeAutoencoder(recon), _frames(), AnomalyConfig(), progress=False)


def test_calibration_of_ordinary_errors_gives_a_positive_finite_threshold():
    cfg, reference = calibrate(_FakeAutoencoder(lambda b: b * 0.9), _frames(), AnomalyConfig(), progress=False)
    assert np.isfinite(cfg.threshold) and cfg.threshold > 0 and np.isfinite(reference).all()


@pytest.mark.parametrize("option, value", [("--margin", "nan"), ("--margin", "-1"), ("--margin", "inf"),
                                           ("--quantile", "nan"), ("--quantile", "1.5"), ("--scale", "0"),
                                           ("--top-k", "0"), ("--smoothing", "0"), ("--consecutive", "0"),
                                           ("--frames", "0")])
def test_calibrate_options_out_of_range_are_usage_errors(option, value, capsys):
    from edgeae.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["calibrate", "no_such_run", "--data", "clip.avi", option, value])
    assert exit_.value.code == 2 and "out of range" in capsys.readouterr().err


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


# ---------------------------------------------------------------------------------------------------
# `edgeae run`: --threshold, --out-maps, what events carry


@pytest.fixture(scope="module")
def calibrated_tiny(trained_run, synthetic_video, tmp_path_factory):
    """A copy of the tiny model calibrated on the first 12 frames of the synthetic video."""
    run_dir = shutil.copytree(trained_run, tmp_path_factory.mktemp("tiny") / "run",
                              ignore=shutil.ignore_patterns("anomaly*"))
    cfg = calibrate_run(run_dir, str(synthetic_video), AnomalyConfig(), limit=12, progress=False, threads=1)
    return run_dir, cfg


def _frame_events(path):
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["event"] == "frame"]


@pytest.mark.parametrize("factor, anomalous", [(1e-6, True), (1e6, False)], ids=["tiny", "huge"])
def test_run_threshold_overrides_the_calibrated_one(calibrated_tiny, synthetic_video, tmp_path, factor, anomalous):
    from edgeae.cli import main

    run_dir, cfg = calibrated_tiny
    events = tmp_path / "events.jsonl"
    assert main(["run", str(run_dir), "--source", str(synthetic_video), "--events", str(events), "--max-frames", "6",
                 "--threshold", repr(cfg.threshold * factor), "--threads", "1"]) == 0
    frames = _frame_events(events)
    assert len(frames) == 6 and all(e["anomalous"] is anomalous for e in frames)
    assert all(e["threshold"] == round(cfg.threshold * factor, 6) for e in frames)
    assert json.loads((run_dir / "anomaly.json").read_text())["threshold"] == cfg.threshold  # the file is untouched


@pytest.mark.parametrize("args, message", [(["--threshold", "0"], "--threshold 0.0 must be a finite number above 0"),
                                           (["--threshold", "inf"], "must be a finite number above 0"),
                                           (["--task", "denoise", "--threshold", "1"], "for --task anomaly, not denoise"),
                                           (["--task", "reconstruct", "--out-maps", "maps"], "for --task anomaly")],
                         ids=["zero", "infinite", "threshold for denoise", "maps for reconstruct"])
def test_run_threshold_and_maps_options_that_cannot_apply_exit_2(calibrated_tiny, synthetic_video, args, message, capsys):
    from edgeae.cli import main

    assert main(["run", str(calibrated_tiny[0]), "--source", str(synthetic_video), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_out_maps_are_the_raw_float_maps_eval_scores(calibrated_tiny, synthetic_video, tmp_path):
    from edgeae.runtime.autoencoder import Autoencoder
    from edgeae.runtime.evaluate import score_image
    from edgeae.runtime.tasks.anomaly import load_task

    run_dir, _ = calibrated_tiny
    maps = tmp_path / "maps"
    run(RunConfig(run=str(run_dir), task="anomaly", sources=(str(synthetic_video),), out_maps=str(maps),
                  max_frames=4, threads=1), progress=False)
    files = sorted(p.name for p in maps.glob("*.npy"))
    assert files == ["000000.npy", "000001.npy", "000002.npy", "000003.npy"]
    saved = np.load(maps / "000002.npy")
    assert saved.dtype == np.float32 and saved.shape == (64, 96)
    frame = list(iter_frames(synthetic_video, limit=3))[2]
    with Autoencoder.load(run_dir, threads=1) as ae:
        _, expected = score_image(ae, load_task(run_dir, ae.info.checkpoint_sha256), frame)
    np.testing.assert_allclose(saved, expected, rtol=1e-5, atol=1e-7)
    assert (tmp_path / "maps.run.json").is_file()  # the run config beside the only output


def test_out_maps_with_two_sources_get_a_folder_each(calibrated_tiny, synthetic_video, tmp_path):
    run_dir, _ = calibrated_tiny
    run(RunConfig(run=str(run_dir), task="anomaly", sources=(str(synthetic_video), str(synthetic_video)),
                  out_maps=str(tmp_path / "maps"), max_frames=2, threads=1), progress=False)
    assert [sorted(p.name for p in (tmp_path / "maps" / i).glob("*.npy")) for i in "01"] == [["000000.npy", "000001.npy"]] * 2


def test_every_event_names_its_source_and_every_frame_event_its_index(calibrated_tiny, synthetic_video, tmp_path):
    run_dir, cfg = calibrated_tiny
    events = tmp_path / "events.jsonl"
    run(RunConfig(run=str(run_dir), task="anomaly", sources=(str(synthetic_video),), events=str(events),
                  threshold=cfg.threshold * 1e-6, threads=1), progress=False)
    lines = list(map(json.loads, events.read_text().splitlines()))
    assert {"frame", "alarm", "source_end", "end"} <= {e["event"] for e in lines}
    assert all(e["source"] == str(synthetic_video) for e in lines if e["event"] != "end")
    assert [e["frame"] for e in lines if e["event"] == "frame"] == list(range(24))
    assert all(isinstance(e["frame"], int) for e in lines if e["event"] in ("frame", "alarm", "alarm_end"))
