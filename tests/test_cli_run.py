"""`edgeae calibrate` and `edgeae run` in-process: outputs, --profile, one-line errors."""

import shutil

import pytest

from edgeae.cli import main


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A private copy of the session's model: calibrating must not change what other tests see."""
    return shutil.copytree(trained_run, tmp_path / "run", ignore=shutil.ignore_patterns("anomaly*"))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in err[-1], err
    return err[-1]


def test_calibrate_then_run_anomaly_with_profile(run_copy, synthetic_video, tmp_path, capsys):
    assert main(["calibrate", str(run_copy), "--data", str(synthetic_video), "--frames", "12", "--threads", "1"]) == 0
    assert main(["run", str(run_copy), "--source", str(synthetic_video), "--events", str(tmp_path / "e.jsonl"),
                 "--out-video", str(tmp_path / "a.avi"), "--profile", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert all(stage in out for stage in ("decode", "preprocess", "infer", "postprocess", "write"))
    assert (tmp_path / "a.avi.run.json").is_file()


def test_anomaly_without_calibration_names_calibrate(run_copy, synthetic_video, capsys):
    assert main(["run", str(run_copy), "--source", str(synthetic_video)]) == 2
    assert f"edgeae calibrate {run_copy}" in one_error_line(capsys)


@pytest.mark.parametrize("source, message", [("57", "camera 57 cannot be opened"),
                                             ("/nonexistent/clip.avi", "not found")])
def test_bad_sources_give_one_line_and_exit_2(trained_run, source, message, capsys):
    # a short reconnect timeout: a missing camera is retried like an outage before the run gives up
    assert main(["run", str(trained_run), "--task", "reconstruct", "--source", source, "--reconnect-timeout", "0.5"]) == 2
    assert message in one_error_line(capsys)


def test_run_without_source_is_a_one_line_error(trained_run, capsys):
    assert main(["run", str(trained_run), "--task", "reconstruct"]) == 2
    assert "--source" in one_error_line(capsys)
