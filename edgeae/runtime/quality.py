"""Image quality scores for reconstructions: PSNR and SSIM on uint8 frames, vectorised with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
PSNR_CAP = 100.0  # identical frames: a finite number keeps averages meaningful


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images over all pixels and channels, at most PSNR_CAP."""
    return min(cv2.PSNR(a, b, 255.0), PSNR_CAP)


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
