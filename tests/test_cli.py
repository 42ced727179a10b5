"""The CLI: each verb in-process, bad input as one line on stderr with exit code 2."""

import json

import pytest

from edgeae.cli import main


def test_no_arguments_prints_help_with_examples(capsys):
    assert main([]) == 0
    assert "examples:" in capsys.readouterr().out


def test_train_export_reconstruct_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", "synthetic", "--epochs", "1", "--samples-per-epoch", "256", "--crop-size", "32",
                 "--batch-size", "64", "--max-images", "8", "--out", str(run)]) == 0
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


def test_version_prints_edgeae_and_its_runtimes(capsys):
    from edgeae import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith(f"edgeae {__version__} (Python ") and "onnxruntime " in out


def test_every_option_with_a_default_shows_it_in_help():
    import argparse

    from edgeae.cli import _parser, _verb_parsers

    missing = []
    for verb, p in _verb_parsers(_parser()).items():
        formatter = p._get_formatter()
        for action in p._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                if "default" not in formatter._expand_help(action):
                    missing.append(f"{verb} {action.option_strings[-1]}")
    assert not missing, missing


def test_train_help_lists_every_architecture_and_refuses_others(capsys, monkeypatch):
    from edgeae.training.model import ARCHITECTURES

    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    arch_help = next(line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("--arch"))
    assert all(name in arch_help for name in ARCHITECTURES), arch_help
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--arch", "resnet"])
    assert exit_.value.code == 2 and "invalid choice: 'resnet'" in capsys.readouterr().err


@pytest.mark.footage
def test_train_defaults_work_on_the_shipped_opencv_folder(footage, tmp_path, capsys, caplog):
    # Default crop size (128): the folder's one small photo is skipped, with a count in the log. Few samples,
    # to keep the test short: the defaults under test are the crop size and what it does to small images.
    with caplog.at_level("WARNING", logger="edgeae.train"):
        assert main(["train", "--data", str(footage), "--epochs", "1", "--samples-per-epoch", "16",
                     "--val-samples", "16", "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["crop_size"] == 128
    assert "skipped 1 of" in caplog.text and "smaller than the 128x128 training crop (the smallest is 100x130)" in caplog.text


def test_bench_times_only_the_asked_backends_shapes_and_iterations(trained_run, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", str(trained_run), "--backends", "onnxruntime", "--shapes", "1x3x32x32,2x3x64x96",
                 "--warmup", "1", "--iterations", "3", "--threads", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    measured = {label: v for label, v in report["variants"].items() if "rows" in v}
    assert measured and all(label.startswith("onnxruntime-cpu") for label in report["variants"])
    for variant in measured.values():
        assert [row["shape"] for row in variant["rows"]] == [[1, 3, 32, 32], [2, 3, 64, 96]]
        assert [row["reps"] for row in variant["rows"]] == [3, 3]
    err = capsys.readouterr().err
    assert "bench: 100%" in err and f"{2 * len(measured)}/{2 * len(measured)}" in err  # a progress bar with a total


@pytest.mark.parametrize("option, message", [
    (["--shapes", "1x3x32"], "is not NxCxHxW"),
    (["--shapes", "1x3x30x32"], "multiples of"),
    (["--shapes", "1x1x32x32"], "3 channels"),
    (["--backends", "onnxruntime,cuda"], "unknown backend(s) cuda"),
])
def test_bench_bad_shapes_or_backends_are_one_line(trained_run, option, message, capsys):
    assert main(["bench", str(trained_run), "--threads", "1", *option]) == 2
    assert message in one_error_line(capsys)


@pytest.mark.parametrize("make_path, message", [
    (lambda tmp: tmp / "a-file" / "bench.json", "cannot write JSON report"),
    (lambda tmp: tmp, "is a folder"),
])
def test_bench_json_path_is_checked_before_the_run(trained_run, tmp_path, monkeypatch, capsys, make_path, message):
    import edgeae.runtime.benchmark

    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(edgeae.runtime.benchmark, "device_bench", lambda *a, **k: pytest.fail("the bench ran"))
    assert main(["bench", str(trained_run), "--json", str(make_path(tmp_path))]) == 2
    assert message in one_error_line(capsys)


def test_calibrate_progress_bar_has_a_total(trained_run, synthetic_video, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert main(["calibrate", str(run), "--data", str(synthetic_video), "--frames", "10", "--threads", "1"]) == 0
    assert "10/10" in capsys.readouterr().err
