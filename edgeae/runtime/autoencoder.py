"""The autoencoder runtime: an encoder backend and a decoder backend, plus pre/post-processing."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.backends import Backend, backend_class
from edgeae.runtime.preprocess import batch_to_frames, frames_to_batch


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime knows about a model, read from its ONNX metadata."""

    architecture: dict
    downsample: int
    latent_channels: int
    task: str
    checkpoint_sha256: str

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> "ModelInfo":
        try:
            return cls(architecture=json.loads(meta["edgeae.architecture"]), downsample=int(meta["edgeae.downsample"]),
                       latent_channels=int(meta["edgeae.latent_channels"]), task=meta["edgeae.task"],
                       checkpoint_sha256=meta["edgeae.checkpoint_sha256"])
        except (KeyError, ValueError) as e:
            raise EdgeAEError(f"{source} lacks edgeae metadata ({e}); export it with 'edgeae export RUN'") from None


def auto_backend(model_dir: Path, precision: str) -> str:
    """"tensorrt" when a TensorRT flavour, a CUDA device and both engines are there; else "onnxruntime"."""
    from edgeae.runtime import tensorrt_flavour

    engines = [model_dir / f"{role}.{precision}.engine" for role in ("encoder", "decoder")]
    if all(e.is_file() for e in engines) and tensorrt_flavour.available() and tensorrt_flavour.cuda_device():
        return "tensorrt"
    return "onnxruntime"


class Autoencoder:
    """Encode/decode/reconstruct BGR uint8 frames with any pair of backends."""

    def __init__(self, encoder: Backend, decoder: Backend, info: ModelInfo):
        self.encoder, self.decoder, self.info = encoder, decoder, info

    @classmethod
    def load(cls, model_dir: str | os.PathLike, backend: str = "onnxruntime", precision: str = "fp32",
             **options) -> "Autoencoder":
        """Load the encoder and decoder of a run/model folder.

        backend: a name in BACKENDS, or "auto" (TensorRT where a flavour, a CUDA device and the engines
        are there, else ONNX Runtime). Each backend picks its files for `precision` (`model_file`).
        """
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise EdgeAEError(f"model folder {model_dir} not found; pass a run folder after 'edgeae export'")
        if backend == "auto":
            backend = auto_backend(model_dir, precision)
        backend_cls = backend_class(backend)
        paths = [backend_cls.model_file(model_dir, role, precision) for role in ("encoder", "decoder")]
        encoder = backend_cls.load(paths[0], **options)
        decoder = backend_cls.load(paths[1], **options)
        info = ModelInfo.from_metadata(encoder.metadata, str(paths[0]))
        if decoder.metadata.get("edgeae.checkpoint_sha256") != info.checkpoint_sha256:
            raise EdgeAEError(f"{model_dir}: encoder and decoder come from different checkpoints; re-export both")
        return cls(encoder, decoder, info)

    def encode_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.encoder.infer({self.encoder.input_names[0]: batch})[self.encoder.output_names[0]]

    def decode_batch(self, latent: np.ndarray) -> np.ndarray:
        return self.decoder.infer({self.decoder.input_names[0]: latent})[self.decoder.output_names[0]]

    def encode(self, frames: list[np.ndarray]) -> tuple[np.ndarray, tuple[int, int]]:
        """BGR frames → (latent N×C×h×w, original frame size)."""
        batch, size = frames_to_batch(frames, self.info.downsample)
        return self.encode_batch(batch), size

    def decode(self, latent: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
        """Latent → BGR frames cropped to `size`."""
        return batch_to_frames(self.decode_batch(latent), size)

    def reconstruct(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        latent, size = self.encode(frames)
        return self.decode(latent, size)

    def close(self) -> None:
        self.encoder.close()
        self.decoder.close()

    def __enter__(self) -> "Autoencoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
