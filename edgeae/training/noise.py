"""Corruptions for denoising training and benchmarks; arrays are float in [0, 1]."""

from __future__ import annotations

import numpy as np

# "gaussian-blind" and "poisson-gaussian" draw their strength per image (per item of the first axis of an
# N×H×W×C batch) up to `level`, so one model learns every strength: a blind denoiser.
NOISE_KINDS = ("gaussian", "salt_pepper", "poisson", "gaussian-blind", "poisson-gaussian")


def add_noise(images: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Return a noisy copy of `images` (any shape, float in [0,1]), clipped to [0,1].

    level: gaussian σ (in [0,1] units, e.g. 25/255); salt-and-pepper fraction of pixels;
    poisson: photons at full scale (smaller is noisier); gaussian-blind: the largest σ, each image's σ drawn
    uniformly from [0, level]; poisson-gaussian: signal-dependent camera noise of variance a·x + b², each
    image's b uniform in [0, level] and a in [0, level²] (shot noise up to σ = level at full scale).
    The blind kinds round to 8 bits, as a camera's frames (and the runtime's inputs) are.
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
    elif kind in ("gaussian-blind", "poisson-gaussian"):
        noisy = x + _blind_sigma(x, kind, level, rng) * rng.standard_normal(x.shape, dtype=np.float32)
        noisy = np.round(noisy * 255, out=noisy) / np.float32(255)
    else:
        raise ValueError(f"unknown noise {kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    return np.clip(noisy, 0.0, 1.0, out=noisy)


def _blind_sigma(x: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel noise σ, broadcastable to x: per image a uniform strength up to `level`."""
    per_image = (x.shape[0],) + (1,) * (x.ndim - 1) if x.ndim == 4 else (1,) * x.ndim
    b = rng.uniform(0.0, level, per_image).astype(np.float32)
    if kind == "gaussian-blind":
        return b
    a = rng.uniform(0.0, level * level, per_image).astype(np.float32)
    return np.sqrt(a * x + b * b)


def write_noisy_copies(source: str, out_dir: str, kind: str, level: float, count: int = 16, seed: int = 0) -> list[str]:
    """Noisy PNG copies of `count` images of a data source, each with its own blind strength up to `level`: the
    calibration frames for a denoiser's int8 ranges, which must cover the residuals of strong noise."""
    from pathlib import Path

    import cv2

    from edgeae.training.data import load_images

    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for i, image in enumerate(load_images(source, max_images=count, seed=seed)):
        noisy = add_noise(image[None].astype(np.float32) / 255, kind, level, rng)[0]
        names.append(str(out / f"{i:03d}.png"))
        cv2.imwrite(names[-1], cv2.cvtColor(np.round(noisy * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    return names
