import shutil

import numpy as np
import onnx
import pytest
import torch

from edgeae.errors import EdgeAEError
from edgeae.runtime import Autoencoder
from edgeae.runtime.autoencoder import ModelInfo
from edgeae.runtime.backends.onnxruntime import OnnxRuntimeBackend
from edgeae.runtime.preprocess import batch_to_frames, frames_to_batch, pad_to_multiple
from edgeae.training.train import load_model


def test_pad_to_multiple_reflects_and_never_resizes():
    img = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    padded = pad_to_multiple(img, 16)
    assert padded.shape == (32, 32, 3)
    assert np.array_equal(padded[:20, :30], img)
    assert np.array_equal(padded[20, :30], img[18])  # reflect: row 20 mirrors row 18


def test_frames_round_trip_through_batch_layout():
    frames = [np.random.default_rng(i).integers(0, 256, (37, 53, 3), dtype=np.uint8) for i in range(2)]
    batch, size = frames_to_batch(frames, 16)
    assert batch.shape == (2, 3, 48, 64) and batch.dtype == np.float32 and size == (37, 53)
    assert np.isclose(batch[0, 0, 0, 0], frames[0][0, 0, 2] / 255)  # channel 0 is R = BGR index 2
    back = batch_to_frames(batch, size)
    assert all(np.array_equal(a, b) for a, b in zip(frames, back))
    # exactly the values of a single transposing cast (what it replaced), plane by plane
    assert np.array_equal(batch[1, :, :37, :53], frames[1][..., ::-1].transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255))


def test_model_outputs_become_frames_rounded_and_saturated():
    # outside [0, 1] (an int8 or fp16 backend can overshoot) saturates; inside rounds to the nearest level
    rgb = np.array([[-0.2, 0.0, 1.0 / 255 * 0.49], [1.3, 1.0, 200.7 / 255]], np.float32)  # one row of 3 pixels per channel
    batch = np.stack([rgb, rgb * 0.5, rgb[::-1]])[None].astype(np.float32)  # 1×3×2×3
    (frame,) = batch_to_frames(batch, (2, 3))
    assert frame.dtype == np.uint8 and frame.shape == (2, 3, 3)
    assert frame[..., 2].tolist() == [[0, 0, 0], [255, 255, 201]]  # R plane: saturated, then rounded to nearest
    assert (frame[..., 2][1, 2], frame[..., 0][0, 2]) == (201, 201)  # B is the R plane of row order reversed
    (half,) = batch_to_frames(batch.astype(np.float16), (2, 3))  # fp16 outputs too
    assert np.abs(half.astype(int) - frame).max() <= 1


def test_runtime_reconstruction_matches_pytorch(trained_run):
    model, _, _ = load_model(trained_run)
    frame = np.random.default_rng(0).integers(0, 256, (40, 72, 3), dtype=np.uint8)
    with Autoencoder.load(trained_run) as ae:
        got = ae.reconstruct([frame])[0]
    batch, size = frames_to_batch([frame], 16)
    with torch.no_grad():
        ref = batch_to_frames(model(torch.from_numpy(batch)).numpy(), size)[0]
    assert got.shape == frame.shape
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1


def test_latent_shape_follows_the_frame(trained_run):
    with Autoencoder.load(trained_run) as ae:
        latent, size = ae.encode([np.zeros((576, 768, 3), np.uint8)])
    assert latent.shape == (1, 96, 36, 48) and size == (576, 768)


def test_a_file_that_is_not_onnx_is_a_clear_error(tmp_path):
    bogus = tmp_path / "encoder.onnx"
    bogus.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(EdgeAEError, match="not a loadable ONNX model"):
        OnnxRuntimeBackend.load(bogus)


def test_wrong_input_names_are_refused(trained_run):
    with OnnxRuntimeBackend.load(trained_run / "encoder.onnx") as backend:
        with pytest.raises(EdgeAEError, match="model expects"):
            backend.infer({"x": np.zeros((1, 3, 32, 32), np.float32)})


GOOD_METADATA = {"edgeae.architecture": '{"name": "seed"}', "edgeae.downsample": "16", "edgeae.latent_channels": "96",
                 "edgeae.task": "reconstruct", "edgeae.checkpoint_sha256": "ab" * 32}


def test_sound_model_metadata_is_accepted():
    info = ModelInfo.from_metadata(GOOD_METADATA, "encoder.onnx")
    assert (info.downsample, info.latent_channels, info.task) == (16, 96, "reconstruct")


@pytest.mark.parametrize("key, value", [
    ("edgeae.downsample", "0"), ("edgeae.downsample", "12"), ("edgeae.downsample", "-16"),
    ("edgeae.downsample", str(2 ** 40)), ("edgeae.latent_channels", "0"), ("edgeae.task", "segment"),
    ("edgeae.architecture", "[16]"), ("edgeae.checkpoint_sha256", ""),
])
def test_impossible_model_metadata_is_one_line_error(key, value):
    with pytest.raises(EdgeAEError, match=f"encoder.onnx: {key} .*re-export") as info:
        ModelInfo.from_metadata({**GOOD_METADATA, key: value}, "encoder.onnx")
    assert "\n" not in str(info.value)


def _model_folder(trained_run, tmp_path, names=("encoder.onnx", "decoder.onnx")):
    """A model folder holding trained_run's encoder and decoder under `names`."""
    folder = tmp_path / "model"
    folder.mkdir()
    for source, name in zip(("encoder.onnx", "decoder.onnx"), names):
        shutil.copy(trained_run / source, folder / name)
    return folder


def test_model_with_downsample_0_is_refused_on_load(trained_run, tmp_path):
    folder = _model_folder(trained_run, tmp_path)
    for role in ("encoder", "decoder"):
        model = onnx.load(folder / f"{role}.onnx")
        next(p for p in model.metadata_props if p.key == "edgeae.downsample").value = "0"
        onnx.save(model, folder / f"{role}.onnx")
    with pytest.raises(EdgeAEError, match="edgeae.downsample 0 is not a power of two"):
        Autoencoder.load(folder)


def test_swapped_encoder_and_decoder_files_are_refused_on_load(trained_run, tmp_path):
    folder = _model_folder(trained_run, tmp_path, names=("decoder.onnx", "encoder.onnx"))
    with pytest.raises(EdgeAEError, match="is the decoder, not the encoder.*swapped"):
        Autoencoder.load(folder)

