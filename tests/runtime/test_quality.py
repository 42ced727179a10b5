import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgeae.runtime.quality import SSIM, psnr, ssim


def ssim_by_definition(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s formula over every 11×11 window that fits, on the luma (slow, obvious)."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x = sliding_window_view(cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float64), (11, 11))
    y = sliding_window_view(cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float64), (11, 11))
    mx, my = (x * w).sum((-1, -2)), (y * w).sum((-1, -2))
    vx, vy = (x * x * w).sum((-1, -2)) - mx ** 2, (y * y * w).sum((-1, -2)) - my ** 2
    cov = (x * y * w).sum((-1, -2)) - mx * my
    return float(np.mean(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))))


def test_ssim_of_identical_images_is_one():
    a = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert abs(ssim(a, a) - 1) < 1e-6


def test_ssim_matches_the_windowed_definition():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (24, 31, 3), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    assert abs(ssim(a, b) - ssim_by_definition(a, b)) < 1e-4


def test_ssim_falls_as_noise_grows():
    rng = np.random.default_rng(2)
    a = np.tile(np.linspace(0, 255, 64, dtype=np.float32), (48, 1))[..., None].repeat(3, 2).astype(np.uint8)
    noisy = [np.clip(a + rng.normal(0, s, a.shape), 0, 255).astype(np.uint8) for s in (5, 20, 60)]
    scores = [ssim(a, n) for n in noisy]
    assert scores[0] > scores[1] > scores[2]


def test_one_ssim_instance_scores_frames_of_changing_size():
    rng = np.random.default_rng(3)
    score = SSIM()
    for shape in [(40, 50, 3), (24, 31, 3), (40, 50, 3)]:
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = np.clip(a + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)
        assert score(a, b) == ssim(a, b)


def test_psnr_is_capped_for_identical_frames_and_exact_otherwise():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255
    assert psnr(a, a) == 100.0
    assert abs(psnr(a, b) - 10 * np.log10(255 ** 2 / (255 ** 2 / 192))) < 1e-6
