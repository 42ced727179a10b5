"""The shipped models/denoiser: it loads as a run folder and cleans a real noisy frame it never saw."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeae.cli import main

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "denoiser"


def test_shipped_denoiser_cleans_a_real_noisy_frame(footage, tmp_path):
    if not (SHIPPED / "encoder.onnx").is_file():
        pytest.fail(f"{SHIPPED} lacks encoder.onnx: rebuild it with 'make models'")
    clean = cv2.imread(str(footage / "fruits.jpg"))
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
    src, out = tmp_path / "noisy", tmp_path / "out"
    src.mkdir()
    cv2.imwrite(str(src / "fruits.png"), noisy)
    assert main(["run", str(SHIPPED), "--task", "denoise", "--source", str(src), "--out-frames", str(out),
                 "--backend", "onnxruntime", "--precision", "fp32"]) == 0
    denoised = cv2.imread(str(out / "fruits.png"))
    # σ 25 leaves ~20 dB; a denoiser worth shipping gains several dB (the margin is far from any rounding).
    assert cv2.PSNR(clean, denoised) > cv2.PSNR(clean, noisy) + 5
