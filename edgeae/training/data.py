"""The one data layer for training, calibration and benchmarks.

Sources (the `--data` value):
  synthetic            generated scenes, the offline default
  PATH/TO/FOLDER       a folder of images
  PATH/TO/VIDEO.avi    a video file (frames sampled evenly)
  camera:N             N-th camera, collects --max-images frames
  cifar:PATH           CIFAR-10 python batches (`cifar-10-batches-py`), read without torchvision and
                       without running code: only containers and numpy arrays are unpickled
Images come back as RGB uint8 HxWx3; training samples are random crops, float in [0, 1].
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import cv2
import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime import sources

log = logging.getLogger("edgeae.train")


def load_images(source: str, max_images: int = 200, seed: int = 0) -> list[np.ndarray]:
    """Load up to `max_images` RGB uint8 images from a data source (see module docstring)."""
    if source == "synthetic":
        return synthetic_images(max_images, size=(192, 256), seed=seed)
    if source.startswith("cifar:"):
        return list(load_cifar10(source[len("cifar:"):], max_images=max_images))
    if source.startswith("camera:"):
        frames = list(sources.iter_video(source[len("camera:"):], limit=max_images))
    else:
        path = Path(source)
        if not path.exists():
            raise EdgeAEError(f"data source {source} not found; give a folder, a video, 'synthetic', 'cifar:PATH' or 'camera:N'")
        if path.is_dir() and (path / "data_batch_1").is_file():
            return list(load_cifar10(path, max_images=max_images))
        frames = list(sources.iter_frames(path, limit=max_images, stride=_stride_for(path, max_images)))
    return [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]


def _stride_for(path: Path, max_images: int) -> int:
    """Sample a video evenly rather than taking its first seconds only."""
    if path.is_dir() or path.suffix.lower() in sources.IMAGE_EXTENSIONS:
        return 1
    cap = sources.open_video(str(path))
    count = sources.video_frame_count(cap)
    cap.release()
    return max(1, count // max_images) if count else 1


def load_cifar10(folder: str | Path, max_images: int | None = None, split: str = "train") -> np.ndarray:
    """CIFAR-10 python-pickle batches → N×32×32×3 RGB uint8."""
    folder = Path(folder)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    files = [folder / n for n in names if (folder / n).is_file()]
    if not files:
        raise EdgeAEError(f"{folder} has no CIFAR-10 batches ({names[0]}…); unpack cifar-10-python.tar.gz there")
    chunks = []
    for f in files:
        chunks.append(read_cifar_batch(f).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        if max_images is not None and sum(len(c) for c in chunks) >= max_images:
            break
    return np.concatenate(chunks)[:max_images]


# What a CIFAR batch pickle may name besides dicts, lists, ints and strings: numpy's array and dtype
# rebuilders. Anything else (os.system, builtins.eval, …) is code a data file has no business running.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's array rebuilder, wherever this numpy keeps it
_NUMPY_REBUILDERS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # the name in CIFAR-10's own files
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # what numpy ≥ 2 writes
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a pickle that names any other callable is refused
    before it can run."""

    def __init__(self, file, source: Path):
        super().__init__(file, encoding="bytes")  # CIFAR-10's Python 2 strings stay bytes
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_REBUILDERS:
            return _NUMPY_REBUILDERS[module, name]
        callable_name = ascii(f"{module}.{name}")[:80]  # the file's own text: escaped, so one line
        raise EdgeAEError(f"{self.source} is not a CIFAR-10 batch: it asks to run {callable_name}, which such files "
                          "never hold; refused (delete the file, or re-download cifar-10-python.tar.gz)")


def read_cifar_batch(path: Path) -> np.ndarray:
    """The N×3072 uint8 "data" array of one CIFAR-10 python batch, unpickled without running its code."""
    with open(path, "rb") as fh:
        try:
            batch = _CifarUnpickler(fh, path).load()
        except EdgeAEError:
            raise
        except Exception as e:  # truncated or corrupt: pickle and numpy raise many kinds
            reason = (str(e).splitlines() or [""])[0]
            raise EdgeAEError(f"{path} is not a readable CIFAR-10 batch ({type(e).__name__}: {reason}); "
                              "re-download cifar-10-python.tar.gz") from None
    data = batch.get(b"data", batch.get("data")) if isinstance(batch, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise EdgeAEError(f"{path} is not a CIFAR-10 batch: it needs a 'data' array of N×3072 uint8 "
                          "(32×32 RGB planes); re-download cifar-10-python.tar.gz")
    return data


def synthetic_images(n: int, size: tuple[int, int] = (96, 128), seed: int = 0) -> list[np.ndarray]:
    """Deterministic scenes: gradients, filled shapes, lines and fine texture (RGB uint8)."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    images = []
    for _ in range(n):
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = (np.cos(rng.uniform(0, np.pi)) * xx / w + np.sin(rng.uniform(0, np.pi)) * yy / h)[..., None]
        img = np.clip(c0 + (c1 - c0) * (t - t.min()) / (np.ptp(t) + 1e-6), 0, 255).astype(np.uint8)
        for _ in range(rng.integers(2, 7)):
            color = tuple(int(v) for v in rng.integers(0, 256, 3))
            center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            if rng.random() < 0.5:
                cv2.circle(img, center, int(rng.integers(4, h // 3)), color, -1, cv2.LINE_AA)
            else:
                p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                cv2.rectangle(img, center, p2, color, -1 if rng.random() < 0.7 else 2)
        img = cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))
        images.append(img)
    return images


def split_train_val(images: list[np.ndarray], val_fraction: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hold out the last images (for video: the last frames, so validation is later in time)."""
    if len(images) < 2:
        raise EdgeAEError(f"need at least 2 images to split train/validation, got {len(images)}; add data")
    n_val = min(len(images) - 1, max(1, round(len(images) * val_fraction)))
    return images[:-n_val], images[-n_val:]


def drop_smaller_than(images: list[np.ndarray], size: int) -> list[np.ndarray]:
    """The images at least size×size, so one small photo in a folder does not stop training; logs how many
    were left out. Fewer than 2 left (train and validation each need one) is an error naming the fix."""
    kept = [im for im in images if min(im.shape[:2]) >= size]
    dropped = len(images) - len(kept)
    if dropped:
        h, w = min((im.shape[:2] for im in images if min(im.shape[:2]) < size), key=min)
        log.warning("skipped %d of %d images smaller than the %dx%d training crop (the smallest is %dx%d)",
                    dropped, len(images), size, size, w, h)
    if len(kept) < 2:
        sides = sorted((min(im.shape[:2]) for im in images), reverse=True) + [0, 0]
        raise EdgeAEError(f"{len(kept)} of {len(images)} images are at least {size}x{size}, the training crop; give "
                          f"larger images or a smaller --crop-size (at most {sides[1]} for these, e.g. 32 for CIFAR-10)")
    return kept


def random_crops(images: list[np.ndarray], n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`n` random size×size crops (with random horizontal flips) → N×size×size×3 uint8."""
    small = [i for i, im in enumerate(images) if im.shape[0] < size or im.shape[1] < size]
    if small:
        shape = images[small[0]].shape
        raise EdgeAEError(f"image {small[0]} is {shape[1]}x{shape[0]}, smaller than the {size}x{size} crop; use larger images")
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    which = rng.integers(0, len(images), n)
    for k, i in enumerate(which):
        im = images[i]
        y = rng.integers(0, im.shape[0] - size + 1)
        x = rng.integers(0, im.shape[1] - size + 1)
        crop = im[y:y + size, x:x + size]
        out[k] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return out
