"""Image-quality and detection metrics, vectorised with NumPy/OpenCV (no scikit-* dependency)."""

from __future__ import annotations

import cv2
import numpy as np


def psnr(ref: np.ndarray, img: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((ref.astype(np.float64) - img.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def ssim(ref: np.ndarray, img: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, σ 1.5), averaged over channels."""
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    x, y = ref.astype(np.float64), img.astype(np.float64)
    blur = lambda a: cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve; tied scores count half (trapezoids between distinct thresholds)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # one ROC point per distinct score
    tp = np.r_[0, np.cumsum(y)[last_of_run]] / positives
    fp = np.r_[0, np.cumsum(~y)[last_of_run]] / negatives
    return float(np.trapezoid(tp, fp))
