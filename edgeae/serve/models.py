"""What one run serves on Triton: a model per task, named `<name>-<kind>`, versioned by its checkpoint.

Kinds, each a batched function of numpy arrays (the first axis is the batch Triton's dynamic batcher forms):
  encoder      image  float32 N×3×H×W in [0, 1] RGB → latent float32 N×C×h×w   (compression: encode here …)
  decoder      latent float32 N×C×h×w → image float32 N×3×H×W                    (… decode elsewhere)
  reconstruct  image → reconstruction (a `denoise` model serves `denoise` instead): one request per frame
               for `edgeae run --backend triton`, which keeps pre/post-processing and the task on the client
  anomaly      frame uint8 N×H×W×3 BGR (camera frames as they come) → score float32 N×1, anomalous bool N×1,
               map float32 N×(H/scale)×(W/scale), the reduced error map the score is taken from; only for a
               calibrated reconstruct model. Alarms (frames in a row) stay with each client: the server is stateless.
H and W are free (multiples of the model's downsampling for image inputs); requests of different sizes are
run separately. The model version is the first 48 bits of the run's checkpoint sha256, so a client finds
out from the version whether the server runs the checkpoint it has (`model_version`).

Torch-free and PyTriton-free: `edgeae.serve.server` binds these functions; tests call them directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.autoencoder import Autoencoder
# The naming rule's owner is the client backend: both sides must agree on it.
from edgeae.runtime.backends.triton import fused_kind, model_version, served_name
from edgeae.runtime.tasks.anomaly import CALIBRATION_FILE, load_task

ANOMALY = "anomaly"
__all__ = ["ANOMALY", "ModelSpec", "RunModels", "TensorSpec", "fused_kind", "model_specs", "model_version", "served_name"]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, numpy dtype, shape without the batch axis (-1: any size)."""

    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelSpec:
    """One served model of a run."""

    kind: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def model_specs(ae: Autoencoder, calibrated: bool) -> list[ModelSpec]:
    """The models a run serves; tensor names are the ONNX files' own (encoder: image → latent, …)."""
    enc_in, enc_out = ae.encoder.input_names[0], ae.encoder.output_names[0]
    dec_in, dec_out = ae.decoder.input_names[0], ae.decoder.output_names[0]
    c = ae.info.latent_channels
    image, latent = (3, -1, -1), (c, -1, -1)
    specs = [ModelSpec("encoder", (TensorSpec(enc_in, "float32", image),), (TensorSpec(enc_out, "float32", latent),)),
             ModelSpec("decoder", (TensorSpec(dec_in, "float32", latent),), (TensorSpec(dec_out, "float32", image),)),
             ModelSpec(fused_kind(ae.info.task), (TensorSpec("image", "float32", image),),
                       (TensorSpec("reconstruction", "float32", image),))]
    if calibrated:
        specs.append(ModelSpec(ANOMALY, (TensorSpec("frame", "uint8", (-1, -1, 3)),),
                               (TensorSpec("score", "float32", (1,)), TensorSpec("anomalous", "bool", (1,)),
                                TensorSpec("map", "float32", (-1, -1)))))
    return specs


class RunModels:
    """One instance of a run's served models: its own Autoencoder and buffers (each Triton instance gets one,
    so instances never share per-shape buffers; ONNX Runtime sessions are thread-safe across kinds)."""

    def __init__(self, run_dir: str | os.PathLike, backend: str = "auto", precision: str = "", threads: int = 0):
        from edgeae.runtime.pipeline import BatchBuffers

        self.run_dir = Path(run_dir)
        options = {"threads": threads} if threads else {}
        self.ae = Autoencoder.load(self.run_dir, backend=None if backend == "auto" else backend,
                                   precision=precision or None, **options)
        # anomaly.json belongs to this checkpoint (load_task checks): only then is the anomaly model served
        self.anomaly = None
        if self.ae.info.task == "reconstruct" and (self.run_dir / CALIBRATION_FILE).is_file():
            self.anomaly = load_task(self.run_dir, self.ae.info.checkpoint_sha256)
        self.buffers = BatchBuffers(self.ae.info.downsample)
        self.specs = {spec.kind: spec for spec in model_specs(self.ae, self.anomaly is not None)}

    @property
    def version(self) -> int:
        return model_version(self.ae.info.checkpoint_sha256)

    def function(self, kind: str) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
        """The batched function serving `kind`: {input name: N×… array} → {output name: N×… array}."""
        spec = self.specs[kind]
        out = [t.name for t in spec.outputs]
        if kind == "encoder":
            return lambda feeds: {out[0]: self.ae.encode_batch(feeds[spec.inputs[0].name])}
        if kind == "decoder":
            return lambda feeds: {out[0]: self.ae.decode_batch(feeds[spec.inputs[0].name])}
        if kind == ANOMALY:
            return lambda feeds: self.score_frames(feeds["frame"])
        return lambda feeds: {"reconstruction": self.ae.reconstruct_batch(feeds["image"])}

    def score_frames(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 N×H×W×3 BGR frames → the anomaly task's score, decision and reduced map of each."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise EdgeAEError(f"anomaly: frames must be uint8 N×H×W×3 BGR, got {frames.dtype} {frames.shape}")
        h, w = frames.shape[1:3]
        batch = self.buffers.fill(list(frames))
        errors = self.anomaly.errors(batch, self.ae.reconstruct_batch(batch))
        scores, maps = zip(*(self.anomaly.score(error[:h, :w]) for error in errors))
        score = np.array(scores, np.float32)[:, None]
        return {"score": score, "anomalous": score > self.anomaly.cfg.threshold, "map": np.stack(maps)}

    def close(self) -> None:
        self.ae.close()
