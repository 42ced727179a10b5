"""Image quality scores for reconstructions: PSNR and SSIM on uint8 frames, vectorised with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np

from edgeae.runtime.visualise import psnr

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

__all__ = ["psnr", "ssim"]


def _blur(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT_101)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 images (Wang et al. 2004: 11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03).

    Computed per channel and averaged; as in the reference code, only windows that lie wholly inside
    the image count (a 5-pixel border is left out), which also makes the border mode irrelevant.
    """
    x, y = a.astype(np.float32), b.astype(np.float32)
    mu_x, mu_y = _blur(x), _blur(y)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x, var_y, cov = _blur(x * x) - mu_xx, _blur(y * y) - mu_yy, _blur(x * y) - mu_xy
    score = ((2 * mu_xy + _C1) * (2 * cov + _C2)) / ((mu_xx + mu_yy + _C1) * (var_x + var_y + _C2))
    r = SSIM_WINDOW // 2
    if min(score.shape[:2]) > 2 * r:
        score = score[r:-r, r:-r]
    return float(score.mean())
