"""The autoencoder runtime: an encoder backend and a decoder backend, plus pre/post-processing."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.backends import Backend, backend_class
from edgeae.runtime.preprocess import batch_to_frames, frames_to_batch
from edgeae.runtime.run_files import ROLES, check_role, engine_path

MAX_DOWNSAMPLE = 1024  # 10 stride-2 levels; the architectures here have 2 to 4
MODEL_TASKS = ("reconstruct", "denoise")  # TrainConfig.task


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime knows about a model, read from its ONNX metadata."""

    architecture: dict
    downsample: int
    latent_channels: int
    task: str
    checkpoint_sha256: str
    rounded_latent: bool = False  # a learned codec: its decoder was trained on (and is fed) the rounded latent

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> "ModelInfo":
        try:
            info = cls(architecture=json.loads(meta["edgeae.architecture"]), downsample=int(meta["edgeae.downsample"]),
                       latent_channels=int(meta["edgeae.latent_channels"]), task=meta["edgeae.task"],
                       checkpoint_sha256=meta["edgeae.checkpoint_sha256"],
                       rounded_latent=meta.get("edgeae.latent") == "rounded")
        except (KeyError, ValueError) as e:
            raise EdgeAEError(f"{source} lacks edgeae metadata ({e}); export it with 'edgeae export RUN'") from None
        info.validate(source)
        return info

    def validate(self, source: str) -> None:
        """Refuse metadata the runtime would divide by or pad to (downsample 0 divided by zero)."""
        s = self.downsample
        checks = [
            (1 <= s <= MAX_DOWNSAMPLE and s & (s - 1) == 0,
             f"edgeae.downsample {s} is not a power of two from 1 to {MAX_DOWNSAMPLE}"),
            (self.latent_channels >= 1, f"edgeae.latent_channels {self.latent_channels} is below 1"),
            (self.task in MODEL_TASKS, f"edgeae.task {self.task!r} is not one of {', '.join(MODEL_TASKS)}"),
            (isinstance(self.architecture, dict), "edgeae.architecture is not a JSON object"),
            (re.fullmatch(r"[0-9a-f]{64}", self.checkpoint_sha256), "edgeae.checkpoint_sha256 is not a sha256"),
        ]
        for ok, problem in checks:
            if not ok:
                raise EdgeAEError(f"{source}: {problem}; re-export it with 'edgeae export RUN'")


def auto_backend(model_dir: Path, precision: str) -> str:
    """"tensorrt" when a TensorRT flavour, a CUDA device and both engines are there; else "onnxruntime"."""
    from edgeae.runtime import tensorrt_flavour

    engines = [engine_path(model_dir, role, precision) for role in ROLES]
    if all(e.is_file() for e in engines) and tensorrt_flavour.available() and tensorrt_flavour.cuda_device():
        return "tensorrt"
    return "onnxruntime"


class Autoencoder:
    """Encode/decode/reconstruct BGR uint8 frames with any pair of backends."""

    def __init__(self, encoder: Backend, decoder: Backend, info: ModelInfo, fused: Backend | None = None,
                 form: str = "", small: "Autoencoder | None" = None):
        self.encoder, self.decoder, self.info = encoder, decoder, info
        self.fused = fused  # encoder→decoder as one graph, when the tuned form runs reconstruction that way
        self.form = form or f"{encoder.name}, encoder + decoder sessions"
        # The tuner's pick for inputs under tuning.FRAME_MIN_PIXELS, where another form wins there (per-call
        # overhead decides at 32×32, arithmetic on frames): it runs those batches.
        self.small = small

    @classmethod
    def load(cls, model_dir: str | os.PathLike, backend: str | None = None, precision: str | None = None,
             form=None, streams: int = 1, **options) -> "Autoencoder":
        """Load the encoder and decoder of a run/model folder.

        backend: a name in BACKENDS, or "auto" (TensorRT where a flavour, a CUDA device and the engines
        are there, else ONNX Runtime). Each backend picks its files for `precision` (`model_file`).
        RUN/tuning.json ('edgeae build RUN --backend onnxruntime'), while tuned on this machine, picks the form
        and settings: its overall winner when neither backend nor precision is given, else its best of those;
        options given here override its settings. Without it: ONNX Runtime fp32, encoder.onnx + decoder.onnx.
        form: a tuning.Candidate to load exactly (the tuner's own use).
        streams: calls that will run at once (a video file's frames in flight, `edgeae run`), the cores split
        between them; 1 (the default) is the latency setting, every core on each call. 0: the number the tuner
        measured as the most frames per second for the form in use (tuning.json's throughput stage), else 1.
        Backends that cannot run calls at once (TensorRT, a server) always load with 1.
        """
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise EdgeAEError(f"model folder {model_dir} not found; pass a run folder after 'edgeae export'")
        if backend == "auto":  # TensorRT where it can run, else RUN/tuning.json's pick, else ONNX Runtime
            backend = "tensorrt" if auto_backend(model_dir, precision or "fp32") == "tensorrt" else None
        from edgeae.runtime import tuning

        note, explicit, given = "", backend is not None or precision is not None or form is not None, dict(options)
        if form is None:
            form, note = tuning.tuned_candidate(model_dir, backend, precision)
        if form is not None:
            backend, precision, options = form.backend, form.precision, {**form.options, **options}
        backend, precision = backend or "onnxruntime", precision or "fp32"
        backend_cls = backend_class(backend)
        streams = tuning.tuned_streams(model_dir, form) if streams == 0 else streams
        if backend_cls.runs_concurrently and streams != 1:
            options["streams"] = streams
        paths = [backend_cls.model_file(model_dir, role, precision) for role in ROLES]
        if form is not None:
            paths = [model_dir / form.encoder, model_dir / form.decoder]
        encoder = backend_cls.load(paths[0], **options)
        decoder = backend_cls.load(paths[1], **options)
        for role, path, model in zip(ROLES, paths, (encoder, decoder)):
            check_role(model.metadata, role, path)  # swapped files would run, and return garbage
        info = ModelInfo.from_metadata(encoder.metadata, str(paths[0]))
        if decoder.metadata.get("edgeae.checkpoint_sha256") != info.checkpoint_sha256:
            raise EdgeAEError(f"{model_dir}: encoder and decoder come from different checkpoints; re-export both")
        fused = backend_cls.load(model_dir / form.fused, **options) if form is not None and form.fused else None
        if fused is None and hasattr(backend_cls, "load_fused"):  # a server: encoder → decoder in one request
            fused = backend_cls.load_fused(paths[0], **options)
        small = None
        if note.startswith("tuned here") and not explicit:  # small inputs run one call at a time: latency settings
            small_form, _ = tuning.tuned_candidate(model_dir, small_inputs=True)
            small = cls.load(model_dir, form=small_form, **given) if small_form is not None else None
        text = tuning.form_text(form, backend, precision, paths, options, note)
        if small is not None:
            text += f"; under {tuning.FRAME_MIN_PIXELS} pixels: {small.describe()}"
        return cls(encoder, decoder, info, fused, text, small)

    @property
    def streams(self) -> int:
        """How many reconstruct_batch calls this model serves at once, from as many threads (see load)."""
        return (self.fused or self.encoder).streams

    def _runs_small(self, height: int, width: int) -> bool:
        if self.small is None:  # the usual case: nothing to look up per batch
            return False
        from edgeae.runtime.tuning import is_small

        return is_small((height, width))

    def encode_batch(self, batch: np.ndarray) -> np.ndarray:
        if self._runs_small(*batch.shape[2:]):
            return self.small.encode_batch(batch)
        return self.encoder.infer({self.encoder.input_names[0]: batch})[self.encoder.output_names[0]]

    def decode_batch(self, latent: np.ndarray) -> np.ndarray:
        s = self.info.downsample
        if self._runs_small(latent.shape[2] * s, latent.shape[3] * s):
            return self.small.decode_batch(latent)
        return self.decoder.infer({self.decoder.input_names[0]: latent})[self.decoder.output_names[0]]

    def reconstruct_batch(self, batch: np.ndarray) -> np.ndarray:
        """N×3×H×W float in [0, 1] → its reconstruction: the fused graph where the tuned form has one."""
        if self._runs_small(*batch.shape[2:]):
            return self.small.reconstruct_batch(batch)
        if self.fused is not None:
            return self.fused.infer({self.fused.input_names[0]: batch})[self.fused.output_names[0]]
        latent = self.encode_batch(batch)
        return self.decode_batch(np.rint(latent) if self.info.rounded_latent else latent)

    def describe(self) -> str:
        """One line: backend, precision, form and settings in use, and whether they were tuned here."""
        return self.form

    def encode(self, frames: list[np.ndarray]) -> tuple[np.ndarray, tuple[int, int]]:
        """BGR frames → (latent N×C×h×w, original frame size)."""
        batch, size = frames_to_batch(frames, self.info.downsample)
        return self.encode_batch(batch), size

    def decode(self, latent: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
        """Latent → BGR frames cropped to `size`."""
        return batch_to_frames(self.decode_batch(latent), size)

    def reconstruct(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        batch, size = frames_to_batch(frames, self.info.downsample)
        return batch_to_frames(self.reconstruct_batch(batch), size)

    def close(self) -> None:
        self.encoder.close()
        self.decoder.close()
        if self.fused is not None:
            self.fused.close()
        if self.small is not None:
            self.small.close()

    def __enter__(self) -> "Autoencoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
