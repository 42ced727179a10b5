"""Metrics: edgeae's own PSNR/SSIM (runtime/quality.py) and AUROC (runtime/evaluate.py, what `edgeae eval` reports)."""

from __future__ import annotations

from edgeae.runtime.evaluate import auroc
from edgeae.runtime.quality import psnr, ssim

__all__ = ["auroc", "psnr", "ssim"]
