"""--config FILE and --print-config: a verb's options from a file, the command line winning, names checked."""

import json
import sys

import pytest

from edgeae.cli import main


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def printed_config(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--print-config"]) == 0
    return json.loads(capsys.readouterr().out)


def write(path, values) -> str:
    path.write_text(json.dumps(values))
    return str(path)


def test_config_file_sets_options_and_the_command_line_wins(tmp_path, capsys):
    config = write(tmp_path / "train.json", {"epochs": 3, "crop-size": 64, "lr": 0.002, "resume": True})
    printed = printed_config(capsys, ["train", "--config", config, "--epochs", "5"])
    assert printed["epochs"] == 5 and printed["crop_size"] == 64 and printed["lr"] == 0.002 and printed["resume"] is True
    assert printed["batch_size"] == 16  # not in the file: the parser's default


def test_config_supplies_required_positionals_and_options(tmp_path, capsys):
    config = write(tmp_path / "c.json", {"source": "in.avi", "out": "out.eae", "model": "runs/demo", "bits": 6})
    printed = printed_config(capsys, ["compress", "--config", config])
    assert (printed["source"], printed["out"], printed["model"], printed["bits"]) == ("in.avi", "out.eae", "runs/demo", 6)
    assert printed_config(capsys, ["compress", "--config", config, "other.avi"])["source"] == "other.avi"


def test_print_config_output_is_a_config_file_that_reproduces_the_options(tmp_path, capsys):
    argv = ["run", "runs/demo", "--source", "0", "--source", "rtsp://cam/1", "--max-frames", "10", "--show"]
    first = printed_config(capsys, argv)
    config = write(tmp_path / "run.json", first)
    assert printed_config(capsys, ["run", "--config", config]) == first


def test_a_list_option_on_the_command_line_replaces_the_files_list(tmp_path, capsys):
    config = write(tmp_path / "run.json", {"run": "runs/demo", "source": ["0", "1"]})
    assert printed_config(capsys, ["run", "--config", config])["source"] == ["0", "1"]
    assert printed_config(capsys, ["run", "--config", config, "--source", "2"])["source"] == ["2"]


def test_config_with_an_unknown_option_is_refused_by_name(tmp_path, capsys):
    config = write(tmp_path / "train.json", {"epochs": 2, "learning_rate": 0.1})
    assert main(["train", "--config", config]) == 2
    assert "unknown option(s) learning_rate for 'edgeae train'" in one_error_line(capsys)


@pytest.mark.parametrize("argv, values, message", [
    (["calibrate", "runs/demo"], {"data": "x.avi", "frames": 0}, "frames: 0 is out of range: at least 1"),
    (["train"], {"task": "segment"}, "task: 'segment' is not one of reconstruct, denoise"),
    (["train"], {"epochs": "ten"}, "epochs: invalid literal for int()"),
    (["train"], {"resume": "yes"}, "resume is a switch: give true or false"),
    (["run", "runs/demo"], {"max_frames": [1, 2]}, "max_frames takes one value"),
    (["train"], {"arch": "resnet"}, "arch: 'resnet' is not one of seed"),
])
def test_config_values_are_checked_like_their_flags(tmp_path, capsys, argv, values, message):
    assert main([*argv, "--config", write(tmp_path / "c.json", values)]) == 2
    assert message in one_error_line(capsys)


@pytest.mark.parametrize("content, message", [
    (None, "cannot read config"),
    ("{'epochs': 2}", "is not valid JSON"),
    ("[1, 2]", "must map option names to values"),
])
def test_unreadable_or_malformed_config_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)
    assert main(["train", "--config", str(path)]) == 2
    assert message in one_error_line(capsys)


def test_yaml_config_without_pyyaml_names_the_package(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    (tmp_path / "c.yaml").write_text("epochs: 2\n")
    assert main(["train", "--config", str(tmp_path / "c.yaml")]) == 2
    assert "needs PyYAML: pip install pyyaml" in one_error_line(capsys)


def test_yaml_config_with_pyyaml(tmp_path, capsys):
    pytest.importorskip("yaml", reason="PyYAML (the dev extra) is not installed")
    (tmp_path / "c.yaml").write_text("epochs: 2\ncrop-size: 64\n")
    printed = printed_config(capsys, ["train", "--config", str(tmp_path / "c.yaml")])
    assert printed["epochs"] == 2 and printed["crop_size"] == 64


def test_a_verb_runs_with_its_options_from_a_config_file(trained_run, tmp_path, capsys):
    out = tmp_path / "sbs.png"
    config = write(tmp_path / "r.json", {"run": str(trained_run), "source": "synthetic", "out": str(out)})
    assert main(["reconstruct", "--config", config]) == 0
    assert out.stat().st_size > 0 and f"wrote {out}" in capsys.readouterr().out
