"""The CLI: each verb in-process, bad input as one line on stderr with exit code 2."""

import json

import pytest

from edgeae.cli import main


def test_no_arguments_prints_help_with_examples(capsys):
    assert main([]) == 0
    assert "examples:" in capsys.readouterr().out


def test_train_export_reconstruct_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", "synthetic", "--epochs", "1", "--samples-per-epoch", "256",
                 "--max-images", "8", "--out", str(run)]) == 0
    assert main(["export", str(run)]) == 0
    assert json.loads((run / "export_report.json").read_text())["passed"]
    assert main(["reconstruct", str(run), "synthetic", "--out", str(tmp_path / "sbs.png")]) == 0
    assert (tmp_path / "sbs.png").stat().st_size > 0


def test_build_writes_fp16_engines_and_a_second_build_hits_the_cache(trained_run, tensorrt_rtx, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    argv = ["build", str(run), "--precision", "fp16", "--flavour", "tensorrt-rtx", "--opt", "1x64x96", "--max", "2x128x128"]
    assert main(argv) == 0
    assert (run / "encoder.fp16.engine").is_file() and (run / "decoder.fp16.engine.json").is_file()
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("cache hit") == 2


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "/nonexistent/folder"], "not found"),
    (["export", "/nonexistent/run"], "not found"),
    (["reconstruct", "/nonexistent/run", "synthetic"], "not found"),
    (["build", "/nonexistent/run"], "not found"),
])
def test_bad_paths_give_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in one_error_line(capsys)


def test_empty_data_folder(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "has no images" in one_error_line(capsys)


def test_unopenable_video(tmp_path, capsys):
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 4096)
    assert main(["train", "--data", str(tmp_path / "broken.mp4"), "--out", str(tmp_path / "run")]) == 2
    assert "video" in one_error_line(capsys)


def test_not_an_onnx_file(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "decoder.onnx").write_text("this is not a model")
    assert main(["reconstruct", str(run), "synthetic", "--out", str(tmp_path / "x.png")]) == 2
    assert "not a loadable ONNX model" in one_error_line(capsys)


def test_checkpoint_from_another_architecture(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"] = {"name": "wide", "in_channels": 3, "widths": [32, 64, 128, 128]}
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["export", str(run)]) == 2
    assert "does not fit architecture wide" in one_error_line(capsys)


def test_config_with_unknown_key_is_refused(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["learning_rate_typo"] = 1
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["export", str(run)]) == 2
    assert "unknown key(s) learning_rate_typo" in one_error_line(capsys)


def test_build_with_a_bad_profile_gives_one_line(trained_run, capsys):
    assert main(["build", str(trained_run), "--max", "32x1080x1920"]) == 2
    assert "multiples of 16" in one_error_line(capsys)


def test_doctor_reports_providers_and_tensorrt(capsys):
    assert main(["doctor", "--no-cameras"]) == 0
    out = capsys.readouterr().out
    assert "CPUExecutionProvider" in out and "tensorrt" in out
