"""The benchmark's anomaly and compression numbers are what `edgeae eval` prints on the data the bench saves."""

import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from benchmarks.anomaly import TASK_SCORER, anomaly
from benchmarks.compression import compression
from edgeae.runtime.bitstream import END_SIZE, HEADER_SIZE, RECORD_OVERHEAD
from edgeae.runtime.evaluate import EvalConfig, evaluate
from edgeae.training.data import synthetic_images


def _context(run_dir, tmp_path, size):
    frames = [cv2.cvtColor(i, cv2.COLOR_RGB2BGR) for i in synthetic_images(16, size=size, seed=21)]
    return SimpleNamespace(cfg=SimpleNamespace(quick=True, seed=0, runs_dir=str(tmp_path / "runs"), footage="synthetic"),
                           runs={"seed": run_dir}, threads=1, calibration_frames=frames[:8], heldout_frames=frames[8:],
                           pick=lambda frames, n: frames[:n])


@pytest.fixture
def run_copy(trained_run, tmp_path):
    return shutil.copytree(trained_run, tmp_path / "run", ignore=shutil.ignore_patterns("anomaly*"))


def test_bench_anomaly_numbers_are_what_edgeae_eval_prints(run_copy, tmp_path):
    section = anomaly(_context(run_copy, tmp_path, (64, 96)))
    bench = section["scorers"][TASK_SCORER]
    result = evaluate(EvalConfig(run=str(run_copy), task="anomaly", data=section["eval_data"], threads=1), progress=False)
    assert (result["image_auroc"], result["pixel_auroc"]) == (bench["image_auroc"], bench["pixel_auroc"])
    assert {k: d["image_auroc"] for k, d in result["per_defect"].items()} == bench["image_auroc_per_defect"]
    assert (result["precision"], result["recall"], result["threshold"]) == (bench["precision"], bench["recall"], bench["threshold"])
    assert set(section["scorers"]) == {TASK_SCORER, "OpenCV MOG2 (frozen background)"}  # only what edgeae ships, and MOG2


def test_bench_compression_numbers_are_what_edgeae_eval_prints(run_copy, tmp_path):
    section = compression(_context(run_copy, tmp_path, (176, 192)))
    data = section["eval_command"].split("--data ")[1]
    result = evaluate(EvalConfig(run=str(run_copy), task="compress", data=data, threads=1), progress=False)
    for codec in ("JPEG", "WebP"):
        assert result["curves"][codec] == section["curves"][f"{codec} (OpenCV)"]
    for ours, bench in zip(result["curves"]["autoencoder"], section["curves"]["autoencoder seed"]):
        assert ours["bits"] == bench["bits"] and ours["psnr_db"] == pytest.approx(bench["psnr_db"], abs=0.05)
        container = (HEADER_SIZE + END_SIZE + 2 * RECORD_OVERHEAD) * 8 / (2 * 176 * 192)  # eval counts it, the bench not
        assert ours["bpp"] - bench["bpp"] == pytest.approx(container, abs=1e-3)
    assert np.isfinite([p["ms_ssim"] for p in section["curves"]["autoencoder seed"]]).all()
