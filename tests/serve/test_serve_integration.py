"""A real Triton server on loopback (`edgeae serve`'s process, PyTriton's tritonserver) and real clients.

Needs an interpreter that can host Triton's Python backend with nvidia-pytriton installed: `make serve-env`
builds .venv-serve (CI's .ci/run does); SERVE_PYTHON names another. Elsewhere these tests are skipped with
the reason `edgeae doctor` gives; under CI they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import urllib.request

import cv2
import numpy as np
import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime.autoencoder import Autoencoder
from edgeae.serve import launch
from edgeae.serve.config import ServeConfig

pytest.importorskip("tritonclient.http", reason="the client needs tritonclient: pip install 'edgeae[serve]'")


@pytest.fixture(scope="module")
def serve_report():
    try:
        return launch.serve_python(os.environ.get("SERVE_PYTHON", ""))
    except EdgeAEError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to start the Triton server ('make serve-env' in .ci/run): {e}")
        pytest.skip(str(e))


class Served:
    """The module's server: its config (fixed ports, so a restart is the same server to clients) and process."""

    def __init__(self, run, cfg: ServeConfig, report, log):
        self.run, self.cfg, self.report, self.log = run, cfg, report, log
        self.process = None

    @property
    def url(self) -> str:
        return self.cfg.url()

    def start(self) -> None:
        self.process = launch.start(self.cfg, self.report, echo=self.log)
        self.process.wait_ready()

    def metric(self, name: str) -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.cfg.metrics_port}/metrics", timeout=5).read().decode()
        return sum(float(v) for v in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.MULTILINE))


@pytest.fixture(scope="module")
def served(serve_report, trained_run, tmp_path_factory):
    """trained_run, calibrated (so the anomaly model is served too), on a server with dynamic batching up to 4."""
    from edgeae.runtime.tasks.anomaly import AnomalyConfig, calibrate_run
    from edgeae.training.data import synthetic_images

    root = tmp_path_factory.mktemp("serve")
    run = root / "tiny"
    shutil.copytree(trained_run, run)
    (root / "normal").mkdir()
    for i, image in enumerate(synthetic_images(6, size=(64, 96), seed=3)):
        cv2.imwrite(str(root / "normal" / f"{i}.png"), image)
    calibrate_run(run, str(root / "normal"), AnomalyConfig(), progress=False)
    http, grpc, metrics = launch.free_ports(3)
    cfg = ServeConfig(runs=(str(run),), http_port=http, grpc_port=grpc, metrics_port=metrics, max_batch=4,
                      queue_delay_us=2000, exit_timeout_s=20)
    with open(root / "server.log", "w") as log:
        server = Served(run, cfg, serve_report, log)
        server.start()
        yield server
        server.process.stop()


def test_two_clients_get_exactly_what_local_onnxruntime_gives(served):
    rng = np.random.default_rng(0)
    inputs = [rng.random(shape, dtype=np.float32) for shape in ((1, 3, 64, 96), (6, 3, 32, 48), (2, 3, 48, 80))]
    with Autoencoder.load(served.run, backend="onnxruntime") as local:
        expected = [(local.encode_batch(x), local.reconstruct_batch(x)) for x in inputs]
    problems = []

    def client(seed: int) -> None:
        with Autoencoder.load(served.run, backend="triton", server=served.url) as remote:
            for _ in range(3):
                for x, (latent, recon) in zip(inputs[seed:] + inputs[:seed], expected[seed:] + expected[:seed]):
                    got_latent, got_recon = remote.encode_batch(x), remote.reconstruct_batch(x)
                    if not (np.array_equal(got_latent, latent) and np.array_equal(got_recon, recon)
                            and np.array_equal(remote.decode_batch(latent), recon)):
                        problems.append(f"client {seed}: {x.shape} differs from local ONNX Runtime")

    threads = [threading.Thread(target=client, args=(seed,)) for seed in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not problems and not any(t.is_alive() for t in threads)
    assert served.metric("nv_inference_request_success") >= 2 * 3 * 3 * 3


def test_the_anomaly_model_answers_camera_frames(served):
    from edgeae.runtime.backends.triton import TritonBackend
    from edgeae.serve.models import RunModels

    frames = np.random.default_rng(2).integers(0, 256, (3, 64, 96, 3), dtype=np.uint8)
    remote = TritonBackend.load(served.run / "encoder.onnx", server=served.url, kind="anomaly")
    got = remote.request({"frame": frames})
    remote.close()
    local = RunModels(served.run, backend="onnxruntime").score_frames(frames)
    assert got["score"] == pytest.approx(local["score"], rel=1e-5) and got["map"].shape == local["map"].shape


def test_the_load_tests_scoring_camera_sends_frames_as_captured_and_gets_the_servers_scores(served):
    from benchmarks.serve import CameraLog, open_client, run_camera
    from edgeae.serve.models import RunModels

    frames = list(np.random.default_rng(4).integers(0, 256, (4, 64, 96, 3), dtype=np.uint8))
    client, log = open_client("anomaly", str(served.run), served.url), CameraLog("thin")
    run_camera("thin", client, frames, 20, threading.Event(), log, keep=4, max_frames=4)
    client.close()
    seen = sorted(log.answered + log.skipped)  # a loaded machine may skip a frame, as a live camera does
    assert not log.error and not log.dropped and log.answered and seen == list(range(len(seen))) and len(seen) >= 4
    local = RunModels(served.run, backend="onnxruntime")
    for i in log.answered:
        expected = local.score_frames(frames[i][None])
        assert log.outputs[i]["score"] == pytest.approx(expected["score"], rel=1e-5)
        assert log.outputs[i]["map"].shape == expected["map"].shape


def test_scoring_on_the_server_gives_the_same_events_as_scoring_here(served, tmp_path):
    from edgeae.cli import main

    source = str(video(tmp_path / "file.avi", 12))
    events = {}
    for mode, extra in (("here", []), ("server", ["--score-on-server", "--out-maps", str(tmp_path / "maps")])):
        events[mode] = tmp_path / f"{mode}.jsonl"
        assert main(["run", str(served.run), "--backend", "triton", "--server", served.url, "--task", "anomaly",
                     "--source", source, "--events", str(events[mode]), "--threshold", "1e-6"] + extra) == 0
    scored = {mode: [(e["frame"], e["score"], e["anomalous"], e["alarm"], e["box"])
                     for e in map(json.loads, path.read_text().splitlines()) if e["event"] == "frame"]
              for mode, path in events.items()}
    assert len(scored["here"]) == 12 and scored["server"] == scored["here"]
    assert any(s[2] for s in scored["here"])  # the threshold given here decides, not the server's calibrated one
    assert len(list((tmp_path / "maps").rglob("*.npy"))) == 12


def test_score_on_server_is_refused_where_it_cannot_apply(served, capsys):
    from edgeae.cli import main

    assert main(["run", str(served.run), "--task", "anomaly", "--source", "x.avi", "--score-on-server"]) == 2
    assert main(["run", str(served.run), "--backend", "triton", "--server", served.url, "--task", "denoise",
                 "--source", "x.avi", "--score-on-server"]) == 2
    err = capsys.readouterr().err
    assert "add --backend triton" in err and "the task is denoise" in err


def test_a_client_of_another_checkpoint_is_told_which_version_the_server_runs(served):
    from edgeae.runtime.backends.triton import TritonBackend

    backend = TritonBackend(served.url, "tiny-encoder", 1, [], [], {}, 1, 5.0)
    with pytest.raises(EdgeAEError, match=r"serves tiny-encoder versions \[\d+\], but this run's checkpoint is version 1"):
        backend._describe_model("0" * 64)


def test_edgeae_bench_times_the_served_model(served, capsys):
    from edgeae.cli import main

    assert main(["bench", str(served.run), "--backend", "triton", "--server", served.url, "--quick"]) == 0
    out = capsys.readouterr().out
    assert f"triton {served.url}" in out and "inf  yes" in out  # bit-identical: infinite PSNR


def video(path, frames: int):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (96, 64))
    for i in range(frames):
        frame = np.full((64, 96, 3), 40, np.uint8)
        cv2.rectangle(frame, (i % 80, 20), (i % 80 + 16, 36), (30, 200, 240), -1)
        writer.write(frame)
    writer.release()
    return path


def wait_until(condition, timeout: float = 120.0, what: str = "") -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_server_crash_mid_stream_is_reported_and_loses_no_frame(served, tmp_path):
    """Two live cameras (drop while down) and an `edgeae run` on a file (wait while down) through one crash."""
    from benchmarks.serve import CameraLog, run_camera
    from edgeae.cli import main
    from edgeae.runtime.sinks import partial_path
    from edgeae.runtime.sources import CaptureOptions
    from edgeae.serve.client import RemoteModel

    frames = [np.full((64, 96, 3), 30 + 20 * i, np.uint8) for i in range(4)]
    stop = threading.Event()
    logs = [CameraLog(f"cam{i}") for i in range(2)]
    models = [RemoteModel.load(str(served.run), served.url, options=CaptureOptions(reconnect_timeout_s=0)) for _ in logs]
    cameras = [threading.Thread(target=run_camera, args=(log.name, m, frames, 25, stop, log)) for m, log in zip(models, logs)]
    events, code = tmp_path / "events.jsonl", []
    argv = ["run", str(served.run), "--backend", "triton", "--server", served.url, "--task", "anomaly",
            "--source", str(video(tmp_path / "file.avi", 300)), "--events", str(events), "--reconnect-timeout", "0"]
    runner = threading.Thread(target=lambda: code.append(main(argv)))
    for t in (*cameras, runner):
        t.start()
    try:
        frame_lines = lambda: partial_path(events).read_text().count('"event":"frame"') if partial_path(events).exists() else 0
        wait_until(lambda: all(len(log.answered) >= 5 for log in logs) and frame_lines() >= 10, what="first answers")
        served.process.kill()  # a crash: SIGKILL to tritonserver, its stubs and the server process
        wait_until(lambda: all(log.dropped for log in logs), what="cameras dropping frames")
        served.start()
        answered = [len(log.answered) for log in logs]
        wait_until(lambda: all(len(log.answered) >= n + 5 for log, n in zip(logs, answered)), what="answers again")
    finally:
        stop.set()
        for t in (*cameras, runner):
            t.join(timeout=120)
        for m in models:
            m.close()
    for log in logs:
        assert not log.error
        answered, dropped, skipped = set(log.answered), set(log.dropped), set(log.skipped)
        total = max(answered | dropped | skipped) + 1
        assert answered | dropped | skipped == set(range(total)) and len(answered) + len(dropped) + len(skipped) == total
        kinds = [e["event"] for e in log.events if e["event"] != "frame"]
        assert kinds[0] == "server_lost" and kinds[-1] == "server_back" and set(kinds[1:-1]) == {"dropped"}
        back = log.events[[e["event"] for e in log.events].index("server_back")]
        assert back["frames_dropped"] == len(dropped) and back["seconds"] > 0
    assert code == [0]
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert sorted(e["frame"] for e in lines if e["event"] == "frame") == list(range(300))
    kinds = [e["event"] for e in lines]
    assert "dropped" not in kinds and kinds.count("server_lost") == 1 and kinds.count("server_back") == 1
    assert kinds.index("server_lost") < kinds.index("server_back") and lines[-1]["reason"] == "complete"


def test_sigterm_answers_the_requests_in_flight(served):
    """Four requests that cannot share a batch queue up; SIGTERM while they do; every one is answered."""
    x = np.random.default_rng(3).random((4, 3, 512, 768), dtype=np.float32)
    with Autoencoder.load(served.run, backend="onnxruntime") as local:
        expected = local.reconstruct_batch(x)
    answers, errors = [], []

    def client() -> None:
        try:
            with Autoencoder.load(served.run, backend="triton", server=served.url, timeout_s=60) as remote:
                answers.append(remote.reconstruct_batch(x))
        except EdgeAEError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: served.metric("nv_inference_pending_request_count") >= 1 or answers or errors,
               what="a queued request")
    assert not answers, "the requests finished before SIGTERM: make them larger"
    code = served.process.stop()
    for t in threads:
        t.join(timeout=120)
    assert code == 0 and not errors and len(answers) == 4
    assert all(np.array_equal(a, expected) for a in answers)
