"""Metrics: edgeae's own PSNR/SSIM (runtime/quality.py), and AUROC vectorised with NumPy (no scikit-learn)."""

from __future__ import annotations

import numpy as np

from edgeae.runtime.quality import psnr, ssim

__all__ = ["auroc", "psnr", "ssim"]


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
