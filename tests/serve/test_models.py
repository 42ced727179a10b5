"""What a run serves: names, versions, and functions that give exactly what local inference gives."""

import shutil

import cv2
import numpy as np
import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime.autoencoder import Autoencoder
from edgeae.serve.config import ServeConfig
from edgeae.serve.models import RunModels, model_version, served_name
from edgeae.serve.server import batched


@pytest.fixture(scope="module")
def calibrated_run(trained_run, tmp_path_factory):
    """trained_run calibrated on synthetic frames, so it also serves the anomaly model."""
    from edgeae.runtime.tasks.anomaly import AnomalyConfig, calibrate_run
    from edgeae.training.data import synthetic_images

    run = tmp_path_factory.mktemp("served") / "tiny"
    shutil.copytree(trained_run, run)
    frames = run.parent / "normal"
    frames.mkdir()
    for i, image in enumerate(synthetic_images(8, size=(64, 96), seed=3)):
        cv2.imwrite(str(frames / f"{i}.png"), image)
    calibrate_run(run, str(frames), AnomalyConfig(), progress=False)
    return run


def test_the_version_is_the_checkpoints_sha256_prefix_and_names_carry_the_run():
    assert model_version("00000000000a" + "f" * 52) == 10
    assert model_version("f" * 64) == 2 ** 48 - 1  # a positive int64 for Triton
    assert served_name("demo", "encoder") == "demo-encoder"


def test_an_uncalibrated_run_serves_encoder_decoder_and_reconstruct(trained_run):
    models = RunModels(trained_run)
    assert list(models.specs) == ["encoder", "decoder", "reconstruct"]
    assert models.version == model_version(models.ae.info.checkpoint_sha256)


def test_served_functions_give_local_inference_bit_for_bit(calibrated_run):
    models = RunModels(calibrated_run, backend="onnxruntime")
    x = np.random.default_rng(0).random((2, 3, 48, 80), dtype=np.float32)
    with Autoencoder.load(calibrated_run, backend="onnxruntime") as local:
        latent = models.function("encoder")({"image": x})["latent"]
        assert np.array_equal(latent, local.encode_batch(x))
        assert np.array_equal(models.function("decoder")({"latent": latent})["image"], local.decode_batch(latent))
        assert np.array_equal(models.function("reconstruct")({"image": x})["reconstruction"], local.reconstruct_batch(x))


def test_the_anomaly_model_scores_frames_like_the_local_task(calibrated_run):
    from edgeae.runtime.pipeline import BatchBuffers
    from edgeae.runtime.tasks.anomaly import load_task
    from edgeae.runtime.sources import Frame

    models = RunModels(calibrated_run, backend="onnxruntime")
    frames = np.random.default_rng(1).integers(0, 256, (2, 40, 72, 3), dtype=np.uint8)
    served = models.function("anomaly")({"frame": frames})
    task = load_task(calibrated_run, models.ae.info.checkpoint_sha256)
    batch = BatchBuffers(models.ae.info.downsample).fill(list(frames))
    results = task.process([Frame(f, i, 0.0, "cam") for i, f in enumerate(frames)], batch,
                           models.ae.reconstruct_batch(batch), draw=False)
    local = [r.events[0]["score"] for r in results]
    assert served["score"][:, 0] == pytest.approx(local, rel=1e-5)
    assert served["map"].shape == (2, 40 // 4, 72 // 4) and served["anomalous"].dtype == bool


def test_requests_of_different_sizes_are_batched_separately_and_answered_in_order():
    calls = []

    def double(feeds):
        calls.append(feeds["x"].shape)
        return {"y": feeds["x"] * 2}

    requests = [{"x": np.full((1, 2, 2), 1.0)}, {"x": np.full((2, 3, 3), 2.0)}, {"x": np.full((1, 2, 2), 3.0)}]
    answers = batched(double)(requests)
    assert sorted(calls) == [(2, 2, 2), (2, 3, 3)]
    assert [a["y"][0, 0, 0] for a in answers] == [2.0, 4.0, 6.0] and answers[1]["y"].shape == (2, 3, 3)


@pytest.mark.parametrize("change, message", [
    ({"runs": ()}, "no run to serve"),
    ({"http_port": 8001}, "three different ports"),
    ({"max_batch": 0}, "--max-batch"),
    ({"names": ("bad name",)}, "may use only letters"),
])
def test_serve_config_refuses_what_cannot_work(trained_run, change, message):
    cfg = ServeConfig(**{"runs": (str(trained_run),), **change})
    with pytest.raises(EdgeAEError, match=message):
        cfg.validate()


def test_two_runs_of_the_same_folder_name_need_names(trained_run, tmp_path):
    other = tmp_path / trained_run.name
    shutil.copytree(trained_run, other)
    with pytest.raises(EdgeAEError, match="pass --name"):
        ServeConfig(runs=(str(trained_run), str(other))).validate()
    ServeConfig(runs=(str(trained_run), str(other)), names=("", "other")).validate()
