"""`edgeae deploy`: the bundle's contents, its manifest, safe extraction, and a real install without torch."""

import ast
import importlib.metadata
import importlib.util
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from edgeae.cli import _parser, main
from edgeae.errors import EdgeAEError
from edgeae.export import bundle, bundle_verify
from edgeae.export.bundle import DeployConfig, deploy, ssh_commands


def run_from_bundle(edgeae: Path, model: Path, video: Path, events: Path) -> list[str]:
    """The task the installed bundle runs on footage: anomaly detection, events to a JSON-lines file."""
    return [str(edgeae), "run", str(model), "--task", "anomaly", "--source", str(video), "--max-frames", "30",
            "--events", str(events)]


@pytest.fixture(scope="module")
def archive(trained_run, tmp_path_factory) -> Path:
    """A calibrated tiny model (calibrated on synthetic frames, so it runs without the footage too)."""
    import shutil

    import cv2

    from edgeae.runtime.tasks.anomaly import AnomalyConfig, calibrate_run
    from edgeae.training.data import synthetic_images

    run = tmp_path_factory.mktemp("calibrated") / "run"
    shutil.copytree(trained_run, run)
    frames = run.parent / "normal"
    frames.mkdir()
    for i, image in enumerate(synthetic_images(8, size=(64, 96), seed=3)):
        cv2.imwrite(str(frames / f"{i}.png"), image)
    calibrate_run(run, str(frames), AnomalyConfig(), progress=False)
    return deploy(run, DeployConfig(target="cpu", name="tiny-cpu"), tmp_path_factory.mktemp("dist"))


@pytest.fixture
def unpacked(archive, tmp_path) -> Path:
    return bundle_verify.extract(archive, tmp_path)


def test_bundle_holds_models_wheel_installer_unit_and_manifest(archive):
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"tiny-cpu/install.sh", "tiny-cpu/verify.py", "tiny-cpu/edgeae.service.in", "tiny-cpu/MANIFEST.json",
            "tiny-cpu/model/encoder.onnx", "tiny-cpu/model/decoder.onnx", "tiny-cpu/model/model.json",
            "tiny-cpu/model/config.json", "tiny-cpu/model/export_report.json"} <= names
    assert any(n.startswith("tiny-cpu/wheels/edgeae-") and n.endswith(".whl") for n in names)
    digest = Path(f"{archive}.sha256").read_text().split()[0]
    assert digest == bundle_verify.sha256_file(archive)


def test_manifest_lists_the_sha256_of_every_file(unpacked):
    manifest = json.loads((unpacked / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == set(bundle_verify.list_files(unpacked))
    assert manifest["files"]["model/encoder.onnx"]["sha256"] == bundle_verify.sha256_file(unpacked / "model/encoder.onnx")


def test_model_json_carries_normalisation_and_precisions(unpacked):
    description = json.loads((unpacked / "model" / "model.json").read_text())
    assert "uint8/255" in description["normalisation"]
    assert list(description["precisions"]) == ["fp32"] and description["anomaly"]["threshold"] > 0
    assert (unpacked / "model" / "anomaly_reference.npy").is_file()


def test_wheel_does_not_require_torch(unpacked):
    wheel = next((unpacked / "wheels").glob("edgeae-*.whl"))
    requirements = bundle.wheel_requirements(wheel)
    assert requirements and not any(r.lower().startswith("torch") for r in requirements)
    with zipfile.ZipFile(wheel) as z:
        assert "edgeae/runtime/autoencoder.py" in z.namelist()


def test_fp16_int8_models_and_threshold_are_bundled_when_present(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    for precision in ("fp16", "int8"):  # stand-ins with the same checkpoint metadata as the fp32 export
        for role in ("encoder", "decoder"):
            shutil.copy(run / f"{role}.onnx", run / f"{role}.{precision}.onnx")
    (run / "anomaly.json").write_text(json.dumps({"threshold": 0.0123}))
    (run / "encoder.fp16.engine").write_bytes(b"device-specific")
    out = deploy(run, DeployConfig(target="jetson"), tmp_path / "dist")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        description = json.load(tar.extractfile(f"{out.name[:-7]}/model/model.json"))
    assert {f"edgeae-run-jetson/model/{n}" for n in ("encoder.int8.onnx", "decoder.fp16.onnx", "anomaly.json")} <= names
    assert not any(n.endswith(".engine") for n in names)  # engines are built on the device
    assert list(description["precisions"]) == ["fp32", "fp16", "int8"]
    assert description["anomaly"] == {"threshold": 0.0123}


def test_run_without_onnx_models_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(EdgeAEError, match="edgeae export"):
        deploy(tmp_path / "run", DeployConfig(), tmp_path / "dist")


def test_one_changed_byte_is_refused(unpacked):
    path = unpacked / "model" / "decoder.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(bundle_verify.BundleError, match="model/decoder.onnx does not match its sha256"):
        bundle_verify.verify(unpacked)


def test_an_unlisted_file_is_refused(unpacked):
    (unpacked / "model" / "extra.onnx").write_bytes(b"planted")
    with pytest.raises(bundle_verify.BundleError, match="model/extra.onnx is not in the manifest"):
        bundle_verify.verify(unpacked)


def tar_with(tmp_path, name: str, kind=tarfile.REGTYPE) -> Path:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
        data = b"x" if kind == tarfile.REGTYPE else b""
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name, kind, why", [
    ("/etc/cron.d/evil", tarfile.REGTYPE, "absolute"),
    ("bundle/../../evil", tarfile.REGTYPE, r"'\.\.'"),
    ("bundle/link", tarfile.SYMTYPE, "links"),
])
def test_extraction_refuses_paths_outside_the_folder(tmp_path, name, kind, why):
    with pytest.raises(bundle_verify.BundleError, match=why):
        bundle_verify.extract(tar_with(tmp_path, name, kind), tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_install_script_refuses_a_changed_bundle_before_installing(unpacked, tmp_path):
    path = unpacked / "model" / "encoder.onnx"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    prefix = tmp_path / "prefix"
    result = subprocess.run([str(unpacked / "install.sh"), "--prefix", str(prefix), "--python", sys.executable],
                            capture_output=True, text=True)
    assert result.returncode == 3
    assert "model/encoder.onnx does not match" in result.stderr and "refusing" in result.stderr
    assert not prefix.exists()


def test_host_install_checks_the_archive_then_unpacks_with_the_verifier(archive):
    steps = ssh_commands(archive, "pi@jetson.local", install_args=("--source", "nvarguscamerasrc ! appsink"))
    (mkdir, _), (scp, _), (install, stdin) = steps
    assert mkdir[:2] == ["ssh", "pi@jetson.local"]
    assert scp[0] == "scp" and scp[-1] == "pi@jetson.local:edgeae-bundles/"
    assert str(archive) in scp and f"{archive}.sha256" in scp
    script = install[2]
    assert script.index("sha256sum -c") < script.index("python3 - extract") < script.index("install.sh")
    assert "'nvarguscamerasrc ! appsink'" in script
    assert stdin == Path(bundle_verify.__file__).read_bytes()


def test_host_must_look_like_user_at_device(archive):
    with pytest.raises(EdgeAEError, match="user@device"):
        ssh_commands(archive, "-oProxyCommand=evil")


def test_a_control_character_in_any_deploy_value_is_refused(trained_run, tmp_path):
    for field in ("name", "source", "task", "wheels"):
        with pytest.raises(EdgeAEError, match=f"--{field} .* has a control character"):
            deploy(trained_run, DeployConfig(**{field: "x\ntouch pwned"}), tmp_path / "dist")
    assert not (tmp_path / "dist").exists()


def test_deploy_with_a_newline_payload_exits_2_before_writing_anything(trained_run, tmp_path, capsys):
    marker, out = tmp_path / "pwned", tmp_path / "dist"
    assert main(["deploy", str(trained_run), "--out", str(out), "--source", f"0\ntouch {marker}"]) == 2
    err = capsys.readouterr().err
    assert "control character" in err and err.count("\n") == 1
    assert not out.exists() and not marker.exists()


def test_install_script_refuses_a_source_with_a_newline_before_installing(unpacked, tmp_path):
    marker, prefix = tmp_path / "pwned", tmp_path / "prefix"
    result = subprocess.run([str(unpacked / "install.sh"), "--prefix", str(prefix), "--python", sys.executable,
                             "--source", f"0\ntouch {marker}"], capture_output=True, text=True)
    assert result.returncode == 2 and "control character" in result.stderr
    assert not prefix.exists() and not marker.exists()


def test_swapped_encoder_and_decoder_are_refused_at_deploy(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "encoder.onnx").rename(run / "swap.onnx")
    (run / "decoder.onnx").rename(run / "encoder.onnx")
    (run / "swap.onnx").rename(run / "decoder.onnx")
    with pytest.raises(EdgeAEError, match="encoder.onnx is the decoder, not the encoder .*swapped"):
        deploy(run, DeployConfig(), tmp_path / "dist")
    assert not list((tmp_path / "dist").glob("*.tar.gz"))


def test_service_restarts_always_and_runs_edgeae_with_arguments_it_accepts(unpacked):
    unit = (unpacked / "edgeae.service.in").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Restart"] == "always" and int(settings["RestartSec"]) > 0
    command = settings["ExecStart"].replace("@PREFIX@", "/opt/edgeae")
    argv = shlex.split(command.replace("${EDGEAE_TASK}", "anomaly").replace("${EDGEAE_SOURCE}", "0"))
    assert argv[0] == "/opt/edgeae/venv/bin/edgeae"
    args = _parser().parse_args(argv[1:])
    assert args.verb == "run" and args.reconnect_timeout == 0  # a lost camera is retried forever
    # before each start: engines (re)built where TensorRT is, then the CPU forms re-tuned if tuning.json is stale
    pre = [shlex.split(line.split("=", 1)[1]) for line in unit.splitlines() if line.startswith("ExecStartPre=")]
    assert [argv[1:3] for argv in pre] == [["-m", "edgeae.runtime.engine_build"], ["-m", "edgeae.runtime.tuning"]]
    assert all(importlib.util.find_spec(argv[2]) for argv in pre)
    assert pre[1][-1] == "--if-stale"


def test_bundle_does_not_import_the_cli():
    tree = ast.parse(Path(bundle.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("edgeae.cli")}


TENSORRT_RTX_WHEELS = ("tensorrt-rtx-cu13-libs", "tensorrt-rtx-cu13-bindings")


def test_installed_bundle_builds_engines_and_runs_on_footage_without_torch(archive, footage, tensorrt_rtx, tmp_path):
    """CI's deployment check: a fresh venv from the bundle alone (plus PyPI) and TensorRT-RTX, no torch, no onnx:
    install.sh builds the TensorRT engines, writes the service's files, and a real frame goes through the model."""
    root = bundle_verify.extract(archive, tmp_path / "device")
    prefix, source = tmp_path / "opt", "rtsp://cam.local/live?a=1&b=2 ! it's $HOME \\ x"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    python = prefix / "venv" / "bin" / "python"
    # TensorRT-RTX first, at the versions installed here (pip takes them from its cache); install.sh keeps the venv.
    subprocess.run([sys.executable, "-m", "venv", str(prefix / "venv")], check=True, env=env)
    pins = [f"{d}=={importlib.metadata.version(d)}" for d in TENSORRT_RTX_WHEELS]
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins],
                         capture_output=True, text=True, env=env)
    assert pip.returncode == 0, pip.stderr
    install = subprocess.run([str(root / "install.sh"), "--prefix", str(prefix), "--python", sys.executable,
                              "--source", source], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    for module in ("torch", "onnx"):
        missing = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True, env=env)
        assert missing.returncode != 0 and f"No module named '{module}'" in missing.stderr
    assert "tensorrt-rtx" in install.stdout and "(2 built, 0 unchanged)" in install.stdout
    for role in ("encoder", "decoder"):
        engine = prefix / "model" / f"{role}.fp32.engine"
        sidecar = json.loads(Path(f"{engine}.json").read_text())
        assert sidecar["flavour"] == "tensorrt-rtx" and sidecar["engine_sha256"] == bundle_verify.sha256_file(engine)
    read_back = subprocess.run(["bash", "-c", 'set -a; . "$1"; printf %s "$EDGEAE_SOURCE"', "-", str(prefix / "edgeae.env")],
                               capture_output=True, text=True)
    assert read_back.stdout == source  # one word, as the service's EnvironmentFile gives it to `edgeae run`
    assert (prefix / "tiny-cpu.service").is_file()
    events = tmp_path / "events.jsonl"
    result = subprocess.run(run_from_bundle(prefix / "venv" / "bin" / "edgeae", prefix / "model",
                                            footage / "vtest.avi", events), capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    scored = [e for e in map(json.loads, events.read_text().splitlines()) if e["event"] == "frame"]
    assert len(scored) == 30 and all(e["frame"] >= 0 for e in scored)


@pytest.mark.parametrize("target, tries_openvino", [("cpu", True), ("server", True), ("jetson", False), ("gpu", False)])
def test_cpu_and_server_installers_try_openvino_for_the_tuner_without_requiring_it(target, tries_openvino):
    script = bundle.render_install_script("x", DeployConfig(target=target), ["numpy>=1.24"])
    optional = script.split("<<'OPTIONAL_REQUIREMENTS'\n", 1)[1].split("\nOPTIONAL_REQUIREMENTS", 1)[0]
    assert optional.split() == ([bundle.OPENVINO_REQUIREMENT] if tries_openvino else [])
    assert '|| echo "install.sh: optional $spec not installed here' in script  # a failed optional install goes on
    assert "@OPTIONAL_REQUIREMENTS@" not in script
