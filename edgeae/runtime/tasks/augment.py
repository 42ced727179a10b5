"""`edgeae augment`: new images from the latents of real samples, perturbed and interpolated, then decoded.

Perturbation adds Gaussian noise scaled to each latent channel's spread over the samples (so σ means the
same for every model); interpolation mixes two samples' latents. Negative values are clipped because the
encoder's latents are ReLU outputs. Everything is drawn from one seeded generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from tqdm import tqdm

from edgeae.config import atomic_write_json, to_dict
from edgeae.errors import EdgeAEError
from edgeae.outputs import OutputLock, refuse_overwriting_inputs
from edgeae.runtime.autoencoder import Autoencoder
from edgeae.runtime.sources import iter_frames
from edgeae.runtime.tasks.compress import model_files, probe_source
from edgeae.runtime.visualise import draw_label, write_image

DECODE_BATCH = 8


@dataclass(frozen=True)
class AugmentConfig:
    run: str
    data: str
    out: str
    n: int = 16
    samples: int = 16
    noise: float = 0.5  # σ in units of each channel's latent standard deviation
    mode: Literal["both", "perturb", "interpolate"] = "both"
    seed: int = 0
    backend: str = "onnxruntime"
    precision: str = "fp32"

    def validate(self) -> None:
        if self.n < 1 or self.samples < 1:
            raise EdgeAEError(f"--n {self.n} and --samples {self.samples} must both be at least 1")


@dataclass(frozen=True)
class Recipe:
    """How one new latent is made: from sample `a` alone (perturb) or mixed with `b` at weight `t`."""

    kind: str
    a: int
    b: int = -1
    t: float = 0.0

    def label(self) -> str:
        return f"perturb {self.a}" if self.kind == "perturb" else f"mix {self.a}-{self.b} t={self.t:.2f}"


def load_samples(data: str, count: int) -> list[np.ndarray]:
    """Up to `count` frames spread evenly over the source, resized to the first one's size."""
    _, total = probe_source(data)
    stride = max(1, (total or count) // count)
    frames = list(iter_frames(data, limit=count, stride=stride))
    h, w = frames[0].shape[:2]
    return [f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]


def plan(n: int, samples: int, mode: str, rng: np.random.Generator) -> list[Recipe]:
    """n recipes; 'both' alternates perturbation and interpolation."""
    kinds = {"perturb": ["perturb"], "interpolate": ["interpolate"], "both": ["perturb", "interpolate"]}[mode]
    recipes = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        if kind == "perturb" or samples < 2:
            recipes.append(Recipe("perturb", int(rng.integers(samples))))
        else:
            a, b = rng.choice(samples, 2, replace=False)
            recipes.append(Recipe("interpolate", int(a), int(b), float(rng.uniform(0.25, 0.75))))
    return recipes


def make_latents(latent: np.ndarray, recipes: list[Recipe], noise: float, rng: np.random.Generator) -> np.ndarray:
    """N×C×h×w sample latents → one new latent per recipe (float32, ≥ 0)."""
    spread = latent.std(axis=(0, 2, 3))[:, None, None]
    out = np.empty((len(recipes),) + latent.shape[1:], np.float32)
    for i, r in enumerate(recipes):
        if r.kind == "perturb":
            out[i] = latent[r.a] + noise * spread * rng.standard_normal(latent.shape[1:], dtype=np.float32)
        else:
            out[i] = (1 - r.t) * latent[r.a] + r.t * latent[r.b]
    return np.maximum(out, 0, out=out)


def contact_sheet(images: list[np.ndarray], labels: list[str], width: int = 192) -> np.ndarray:
    """A labelled grid of thumbnails, about square, for a person to look at."""
    h, w = images[0].shape[:2]
    th = max(1, round(h * width / w))
    cols = math.ceil(math.sqrt(len(images)))
    sheet = np.full((math.ceil(len(images) / cols) * th, cols * width, 3), 255, np.uint8)
    for i, (image, text) in enumerate(zip(images, labels)):
        thumb = cv2.resize(image, (width, th), interpolation=cv2.INTER_AREA)
        draw_label(thumb, text)
        r, c = divmod(i, cols)
        sheet[r * th:(r + 1) * th, c * width:(c + 1) * width] = thumb
    return sheet


def augment(cfg: AugmentConfig) -> dict:
    """Write cfg.n PNGs, contact_sheet.png (real samples first, then the new images) and augment.json."""
    cfg.validate()
    refuse_overwriting_inputs({"output folder": cfg.out}, {"data": cfg.data, **model_files(cfg.run)})
    rng = np.random.default_rng(cfg.seed)
    real = load_samples(cfg.data, cfg.samples)
    recipes = plan(cfg.n, len(real), cfg.mode, rng)
    out = Path(cfg.out)
    with Autoencoder.load(cfg.run, backend=cfg.backend, precision=cfg.precision) as ae:
        latent, size = ae.encode(real)
        new = make_latents(latent, recipes, cfg.noise, rng)
        images = [img for s in tqdm(range(0, len(new), DECODE_BATCH), unit="batch", desc="augment")
                  for img in ae.decode(new[s:s + DECODE_BATCH], size)]
    names = [f"augment_{i:04d}.png" for i in range(len(images))]
    labels = [f"real {i}" for i in range(len(real))] + [r.label() for r in recipes]
    items = [{"file": name, **to_dict(r)} for name, r in zip(names, recipes)]
    with OutputLock(out, "output folder", folder=True):
        for name, image in zip(names, images):
            write_image(out / name, image)
        write_image(out / "contact_sheet.png", contact_sheet(real + images, labels))
        atomic_write_json(out / "augment.json", {"config": to_dict(cfg), "images": items})
    return {"images": len(images), "contact_sheet": str(out / "contact_sheet.png"), "items": items}
