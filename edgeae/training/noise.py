"""Corruptions for denoising training and benchmarks; arrays are float in [0, 1]."""

from __future__ import annotations

import numpy as np

NOISE_KINDS = ("gaussian", "salt_pepper", "poisson")


def add_noise(images: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Return a noisy copy of `images` (any shape, float in [0,1]), clipped to [0,1].

    level: gaussian σ (in [0,1] units, e.g. 25/255); salt-and-pepper fraction of pixels;
    poisson: photons at full scale (smaller is noisier).
    """
    x = np.asarray(images, dtype=np.float32)
    if kind == "gaussian":
        noisy = x + rng.normal(0.0, level, size=x.shape).astype(np.float32)
    elif kind == "salt_pepper":
        noisy = x.copy()
        hit = rng.random(x.shape, dtype=np.float32) < level
        noisy[hit] = (rng.random(int(hit.sum()), dtype=np.float32) < 0.5).astype(np.float32)
    elif kind == "poisson":
        noisy = rng.poisson(x * level).astype(np.float32) / np.float32(level)
    else:
        raise ValueError(f"unknown noise {kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    return np.clip(noisy, 0.0, 1.0, out=noisy)
