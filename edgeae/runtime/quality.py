"""Image and codec quality scores: PSNR, SSIM and MS-SSIM on uint8 frames (OpenCV), and the Bjøntegaard delta rate."""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
PSNR_CAP = 100.0  # identical frames: a finite number keeps averages meaningful
# MS-SSIM (Wang, Simoncelli & Bovik 2003): the exponents of its five scales, finest first
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIDE = SSIM_WINDOW * 2 ** (len(MS_SSIM_WEIGHTS) - 1)  # 176: one whole window at the coarsest scale


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images over all pixels and channels, at most PSNR_CAP."""
    return min(cv2.PSNR(a, b, 255.0), PSNR_CAP)


def psnr_float(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two float model outputs in [0, 1] (inf when equal): how int8/fp16 files are judged."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


class SSIM:
    """Mean SSIM of two uint8 images (Wang et al. 2004: 11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03).

    Colour images are scored on their luma (OpenCV's BGR→gray, BT.601), as the authors' reference code
    does; this also makes it 3× cheaper than per-channel SSIM, which is memory-bound on a 576×768 frame.
    As in the reference, only windows wholly inside the image count (a 5-pixel border is left out).
    Computed in place in six float32 buffers kept between calls: with a fresh array per step it is 3×
    slower (measured at 576×768, the work is memory-bound). Not thread-safe; use one per thread.
    """

    def __init__(self):
        self._buffers = np.empty((0,), np.float32)

    def _workspace(self, shape: tuple[int, ...]) -> np.ndarray:
        if self._buffers.shape[1:] != shape:
            self._buffers = np.empty((6,) + shape, np.float32)
        return self._buffers

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        a, b = _luma(a), _luma(b)
        x, y, mu_x, mu_y, t1, t2 = self._workspace(a.shape)
        np.copyto(x, a, casting="unsafe")
        np.copyto(y, b, casting="unsafe")
        _blur(x, mu_x)
        _blur(y, mu_y)
        np.multiply(x, x, out=t1)
        _blur(t1, t2)                                  # E[x²]
        np.multiply(y, y, out=t1)
        t2 += _blur(t1, t1)                            # E[x²] + E[y²]
        np.multiply(x, y, out=t1)
        _blur(t1, t1)                                  # E[xy]
        np.multiply(mu_x, mu_y, out=x)                 # μxμy (x, y are free now)
        t1 -= x                                        # cov
        np.multiply(mu_x, mu_x, out=y)
        y += np.multiply(mu_y, mu_y, out=mu_x)         # μx² + μy²
        t2 -= y                                        # σx² + σy²
        x *= 2
        x += _C1
        t1 *= 2
        t1 += _C2
        x *= t1                                        # numerator
        y += _C1
        t2 += _C2
        y *= t2                                        # denominator
        x /= y
        r = SSIM_WINDOW // 2
        score = x[r:-r, r:-r] if min(x.shape[:2]) > 2 * r else x
        return float(score.mean())


def _luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 and image.shape[2] == 3 else image


def _blur(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(src, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, dst=dst, borderType=cv2.BORDER_REFLECT_101)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 images (see SSIM); for many frames keep one SSIM() and call it."""
    return SSIM()(a, b)


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale SSIM of two uint8 images (Wang et al. 2003, as their reference msssim.m), on the luma.

    Five scales, each half the size of the last (2×2 mean, edge repeated); at each scale but the last,
    the mean contrast–structure term over whole 11×11 windows; at the last, the mean SSIM. A negative
    term is taken as 0 (as TensorFlow and pytorch-msssim do), so the product stays defined. Images need
    MS_SSIM_MIN_SIDE (176) pixels a side, so that the coarsest scale holds one window.
    """
    x, y = (_luma(i).astype(np.float64) for i in (a, b))
    if min(x.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} pixels a side, got {x.shape[1]}x{x.shape[0]}")
    score = 1.0
    for level, weight in enumerate(MS_SSIM_WEIGHTS):
        luminance, contrast_structure = _ssim_terms(x, y)
        last = level == len(MS_SSIM_WEIGHTS) - 1
        term = float((luminance * contrast_structure).mean()) if last else float(contrast_structure.mean())
        score *= max(term, 0.0) ** weight
        if not last:
            x, y = _half(x), _half(y)
    return score


def _ssim_terms(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SSIM's luminance and contrast–structure maps over whole windows (float64; MS-SSIM only)."""
    blur = lambda image: cv2.GaussianBlur(image, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT_101)
    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y, cov = blur(x * x) - mu_x ** 2, blur(y * y) - mu_y ** 2, blur(x * y) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + _C1) / (mu_x ** 2 + mu_y ** 2 + _C1)
    contrast_structure = (2 * cov + _C2) / (var_x + var_y + _C2)
    r = SSIM_WINDOW // 2
    return luminance[r:-r, r:-r], contrast_structure[r:-r, r:-r]


def _half(x: np.ndarray) -> np.ndarray:
    """Mean of each 2×2 block (an odd last row/column repeats itself), as msssim.m's filter and decimation."""
    if x.shape[0] % 2:
        x = np.concatenate([x, x[-1:]], axis=0)
    if x.shape[1] % 2:
        x = np.concatenate([x, x[:, -1:]], axis=1)
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4


def bd_rate(reference: list[tuple[float, float]], test: list[tuple[float, float]],
            names: tuple[str, str] = ("reference", "test")) -> float:
    """Bjøntegaard delta rate (VCEG-M33) of `test` against `reference`, in percent: the mean bit-rate
    difference at equal quality (negative: `test` needs fewer bits). Each curve is (rate, quality dB)
    points, e.g. (bpp, PSNR). As VCEG-M33: log-rate is fitted as a cubic polynomial of quality (a lower
    degree for fewer than 4 points) and both fits are integrated over the quality range the curves share.

    Raises ValueError when a curve has fewer than 2 distinct qualities, its qualities lie too close together
    for the fit (NumPy's RankWarning: the answer would be noise), a rate is not positive, or the quality
    ranges do not overlap (then no rate comparison at equal quality exists); `names` name the curves.
    """
    fits, ranges = [], []
    for name, points in zip(names, (reference, test)):
        rate, quality = np.array(points, dtype=np.float64).reshape(-1, 2).T
        if len(np.unique(quality)) < 2:
            raise ValueError(f"the {name} curve needs at least 2 points of different quality")
        if not (rate > 0).all() or not np.isfinite(quality).all():
            raise ValueError(f"the {name} curve has a rate that is not positive or a quality that is not finite")
        with warnings.catch_warnings():
            warnings.simplefilter("error", getattr(np, "exceptions", np).RankWarning)  # np.exceptions: NumPy ≥ 1.25
            try:
                fits.append(np.polyfit(quality, np.log(rate), min(3, len(np.unique(quality)) - 1)))
            except getattr(np, "exceptions", np).RankWarning:
                raise ValueError(f"the {name} curve's qualities ({quality.min():.4f}-{quality.max():.4f}) lie too "
                                 "close together for a fit") from None
        ranges.append((quality.min(), quality.max()))
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if not low < high:
        raise ValueError(f"the quality ranges do not overlap ({names[0]} {ranges[0][0]:.2f}-{ranges[0][1]:.2f}, "
                         f"{names[1]} {ranges[1][0]:.2f}-{ranges[1][1]:.2f})")
    areas = []
    for fit in fits:
        integral = np.polyint(fit)
        areas.append((np.polyval(integral, high) - np.polyval(integral, low)) / (high - low))
    return (math.exp(areas[1] - areas[0]) - 1) * 100
