"""The residual denoiser: blind noise, a few training steps on real-looking data, ONNX export parity."""

import json

import numpy as np
import pytest

from edgeae.training.model import ModelConfig
from edgeae.training.noise import add_noise
from edgeae.training.train import TrainConfig, train


def test_blind_gaussian_noise_draws_one_sigma_per_image_up_to_the_level():
    rng = np.random.default_rng(0)
    clean = np.full((64, 32, 32, 3), 0.5, dtype=np.float32)
    noisy = add_noise(clean, "gaussian-blind", 55 / 255, rng)
    sigmas = (noisy - clean).reshape(64, -1).std(axis=1) * 255
    assert sigmas.max() <= 60 and sigmas.min() < 10 and np.ptp(sigmas) > 30
    assert np.allclose(noisy * 255, np.round(noisy * 255), atol=1e-4)  # 8-bit, as a camera delivers


def test_poisson_gaussian_noise_grows_with_the_signal():
    rng = np.random.default_rng(0)
    clean = np.concatenate([np.full((256, 16, 8, 3), 0.1), np.full((256, 16, 8, 3), 0.9)], axis=2).astype(np.float32)
    noise = add_noise(clean, "poisson-gaussian", 40 / 255, rng) - clean
    assert noise[:, :, 8:].std() > 1.3 * noise[:, :, :8].std()


@pytest.fixture(scope="module")
def denoiser_run(tmp_path_factory):
    cfg = TrainConfig(data="synthetic", task="denoise", noise="gaussian-blind", noise_level=55 / 255,
                      model=ModelConfig("denoiser-s", widths=(8, 8, 8), unshuffle=4), epochs=2, batch_size=8,
                      samples_per_epoch=32, val_samples=16, max_images=6, crop_size=32, lr_schedule="cosine",
                      device="cpu")
    run = tmp_path_factory.mktemp("denoiser")
    train(cfg, run, progress=False)
    return run


def test_training_steps_write_a_denoiser_run(denoiser_run):
    metrics = json.loads((denoiser_run / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 2 and all(np.isfinite(m["val_loss"]) for m in metrics["epochs"])
    saved = json.loads((denoiser_run / "config.json").read_text())
    assert saved["noise"] == "gaussian-blind" and saved["model"]["unshuffle"] == 4 and saved["lr_schedule"] == "cosine"


def test_denoiser_exports_with_parity(denoiser_run):
    from edgeae.export.onnx_export import ExportConfig, export_onnx

    report = export_onnx(denoiser_run, ExportConfig(parity_shapes=((1, 32, 32), (2, 36, 52)), tuning_forms=False),
                         progress=False)
    assert report["passed"]
    assert {r["model"] for r in report["rows"]} >= {"encoder", "decoder", "full"}


def test_noisy_calibration_copies_are_written_noisy(tmp_path):
    from edgeae.training.noise import write_noisy_copies

    names = write_noisy_copies("synthetic", str(tmp_path), "gaussian-blind", 55 / 255, count=3)
    assert len(names) == 3 and all((tmp_path / f"{i:03d}.png").is_file() for i in range(3))
