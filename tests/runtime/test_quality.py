import cv2
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from edgeae.runtime.quality import MS_SSIM_WEIGHTS, SSIM, bd_rate, ms_ssim, psnr, ssim


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


def _windowed_terms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean SSIM, mean contrast-structure) over every 11×11 window that fits (slow, obvious)."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    wx, wy = sliding_window_view(x, (11, 11)), sliding_window_view(y, (11, 11))
    mx, my = (wx * w).sum((-1, -2)), (wy * w).sum((-1, -2))
    vx, vy = (wx * wx * w).sum((-1, -2)) - mx ** 2, (wy * wy * w).sum((-1, -2)) - my ** 2
    cs = (2 * ((wx * wy * w).sum((-1, -2)) - mx * my) + c2) / (vx + vy + c2)
    return float(np.mean((2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1) * cs)), float(cs.mean())


def ms_ssim_by_definition(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2003 over five scales, 2×2 means between them (msssim.m), with the windowed formula."""
    x = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float64)
    half = lambda im: (im[0::2, 0::2] + im[1::2, 0::2] + im[0::2, 1::2] + im[1::2, 1::2]) / 4
    terms = [_windowed_terms(x, y)]
    for _ in MS_SSIM_WEIGHTS[1:]:  # 176×192 halves evenly down to 11×12
        x, y = half(x), half(y)
        terms.append(_windowed_terms(x, y))
    return float(np.prod([cs ** w for (_, cs), w in zip(terms[:-1], MS_SSIM_WEIGHTS)]) * terms[-1][0] ** MS_SSIM_WEIGHTS[-1])


def _noisy_pair(seed: int, shape=(176, 192, 3), sigma=20.0):
    rng = np.random.default_rng(seed)
    a = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (0, 0), 3)
    return a, np.clip(a + rng.normal(0, sigma, shape), 0, 255).astype(np.uint8)


def test_ms_ssim_matches_the_five_scale_windowed_definition():
    a, b = _noisy_pair(4)
    assert abs(ms_ssim(a, b) - ms_ssim_by_definition(a, b)) < 1e-6


def test_ms_ssim_of_identical_images_is_one_and_falls_as_noise_grows():
    a, _ = _noisy_pair(5)
    scores = [ms_ssim(a, _noisy_pair(5, sigma=s)[1]) for s in (5, 20, 60)]
    assert abs(ms_ssim(a, a) - 1) < 1e-9
    assert 1 > scores[0] > scores[1] > scores[2] > 0


def test_ms_ssim_refuses_images_too_small_for_five_scales():
    a = np.zeros((175, 300, 3), np.uint8)
    with pytest.raises(ValueError, match="at least 176 pixels"):
        ms_ssim(a, a)


def _curve(qualities, shift=0.0):
    """(rate, quality) on log-rate = a smooth function of quality, `shift` added to the log-rate."""
    q = np.asarray(qualities, dtype=float)
    return list(zip(np.exp(0.5 + 0.11 * q + 0.002 * q ** 2 + shift), q))


def test_bd_rate_of_a_curve_needing_half_the_bits_is_minus_50_percent():
    reference = _curve([28, 31, 34, 37, 40])
    test = _curve([29.5, 32, 35.5, 38, 41], shift=np.log(0.5))  # other quality points, same shape
    assert bd_rate(reference, test) == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(test, reference) == pytest.approx(100.0, abs=1e-6)


def test_bd_rate_of_a_curve_against_itself_is_zero():
    curve = _curve([30, 33, 36, 39])
    assert bd_rate(curve, curve) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("test, message", [(_curve([45, 48, 50]), "do not overlap"),
                                           (_curve([33, 33, 33]), "at least 2 points"),
                                           (_curve([33, 33 + 1e-9, 33 + 2e-9, 33 + 3e-9]), "too close together"),
                                           ([(0.0, 30.0), (1.0, 35.0)], "not positive")],
                         ids=["disjoint qualities", "one quality", "a flat curve", "zero rate"])
def test_bd_rate_without_a_defined_answer_says_why(test, message):
    with pytest.raises(ValueError, match=message):
        bd_rate(_curve([28, 31, 34, 37]), test)
