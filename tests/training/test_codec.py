"""The learned codec: entropy model, probability tables, rate–distortion training, export, and .eae streams."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from edgeae.runtime.entropy_codec import EntropyCodec, EntropyTables
from edgeae.training.codec import GDN, TABLE_TOTAL, EntropyBottleneck
from edgeae.training.model import Autoencoder, ModelConfig
from edgeae.training.train import TrainConfig, train

TINY = ModelConfig("codec", widths=(8, 8, 8, 12))


def test_entropy_model_likelihoods_over_the_integers_sum_to_one():
    torch.manual_seed(0)
    bottleneck = EntropyBottleneck(4)
    values = torch.arange(-300, 301, dtype=torch.float32).reshape(1, 1, -1, 1).expand(1, 4, -1, 1)
    total = bottleneck.likelihood(values).sum(dim=2).flatten()
    assert torch.allclose(total, torch.ones(4), atol=1e-4)


def test_tables_are_positive_counts_summing_to_the_total_and_match_the_likelihoods():
    torch.manual_seed(0)
    bottleneck = EntropyBottleneck(3)
    tables = EntropyTables.from_arrays(**bottleneck.tables())
    for c, row in enumerate(tables.counts):
        assert row.sum() == TABLE_TOTAL and row.min() >= 1
        values = torch.arange(tables.lo[c], tables.lo[c] + len(row), dtype=torch.float32)
        lik = bottleneck.likelihood(values.reshape(1, 1, -1, 1).expand(1, 3, -1, 1))[0, c, :, 0].detach().numpy()
        inner = slice(1, -1)  # the end bins also hold the tails
        # Scaled to (total − bins) and floored; the largest bin takes the rest: off by at most bins / total.
        assert np.allclose(row[inner] / TABLE_TOTAL, lik[inner], rtol=1e-3, atol=2 * len(row) / TABLE_TOTAL)


def test_gdn_stays_positive_definite_after_its_parameters_go_negative():
    gdn = GDN(4)
    with torch.no_grad():
        gdn.beta.fill_(-1.0)
        gdn.gamma.fill_(-1.0)
    out = gdn(torch.randn(2, 4, 8, 8))
    assert torch.isfinite(out).all()


def test_range_coding_round_trips_exactly_and_costs_what_the_model_says():
    torch.manual_seed(0)
    bottleneck = EntropyBottleneck(6)
    codec = EntropyCodec((6, 20, 30), EntropyTables.from_arrays(**bottleneck.tables()))
    latent = np.random.default_rng(0).normal(0, 4, (6, 20, 30)).astype(np.float32)
    payload, rounded = codec.encode(latent)
    assert np.array_equal(rounded.values, np.rint(latent).astype(np.int32))  # nothing clipped at σ 4
    assert np.array_equal(codec.decode(payload).values, rounded.values)
    with torch.no_grad():
        model_bytes = -torch.log2(bottleneck.likelihood(torch.from_numpy(rounded.dequantise())[None])).sum().item() / 8
    assert model_bytes <= len(payload) <= 1.01 * model_bytes + 16
    again, _ = EntropyCodec((6, 20, 30), EntropyTables.from_arrays(**bottleneck.tables())).encode(latent)
    assert again == payload  # same tables, same bytes


def test_values_beyond_a_table_are_clipped_and_counted():
    tables = EntropyTables.from_arrays(np.array([-2], np.int32), np.array([[1, 2, 4, 2, 1]], np.uint32))
    codec = EntropyCodec((1, 1, 4), tables)
    payload, rounded = codec.encode(np.array([[[-9.0, 0.4, 1.6, 50.0]]], np.float32))
    assert rounded.values.tolist() == [[[-2, 0, 2, 2]]] and codec.clipped == 2
    assert codec.decode(payload).values.tolist() == [[[-2, 0, 2, 2]]]


@pytest.mark.parametrize("lo, counts, problem", [
    ([0], [[1, 0, 2]], "positive counts"), ([0, 1], [[1, 2]], "shape"), ([0], [[0, 0]], "positive counts"),
    ([99999], [[1]], "beyond"),
])
def test_malformed_tables_are_refused_with_the_fix(lo, counts, problem):
    from edgeae.errors import EdgeAEError

    with pytest.raises(EdgeAEError, match=problem) as e:
        EntropyTables.from_arrays(np.array(lo, np.int32), np.array(counts, np.uint32))
    assert "edgeae export" in str(e.value)


def test_a_payload_the_encoder_cannot_have_written_is_refused():
    from edgeae.errors import EdgeAEError

    codec = EntropyCodec((2, 4, 4), EntropyTables.from_arrays(np.array([0, 0], np.int32), np.array([[1, 1], [3, 1]], np.uint32)))
    for bad in (b"", b"\x01\x02\x03", bytes(4 * 10_000)):
        with pytest.raises(EdgeAEError, match="does not decode"):
            codec.decode(bad)


@pytest.fixture(scope="module")
def codec_run(tmp_path_factory):
    """A tiny codec trained a few steps on synthetic scenes, exported (tables beside the ONNX files)."""
    from edgeae.export.onnx_export import ExportConfig, export_onnx

    run = tmp_path_factory.mktemp("codec") / "run"
    cfg = TrainConfig(data="synthetic", model=TINY, epochs=2, batch_size=4, samples_per_epoch=32, val_samples=8,
                      max_images=6, crop_size=64, lr=1e-3, grad_clip=1.0, rd_lambda=0.01, device="cpu")
    train(cfg, run, progress=False)
    export_onnx(run, ExportConfig(parity_shapes=((1, 32, 32), (1, 64, 96))), progress=False)
    return run


def test_rate_distortion_training_logs_bits_per_pixel_and_exports_tables(codec_run):
    metrics = json.loads((codec_run / "metrics.json").read_text())["epochs"]
    assert all(m["val_bpp"] > 0 for m in metrics)
    tables = EntropyTables.load(codec_run / "entropy_tables.npz")
    assert tables.channels == 12
    assert not (codec_run / "autoencoder.conv_transpose.onnx").exists()  # no fused form: it would skip rounding


def test_fine_tuning_starts_from_another_runs_weights(codec_run, tmp_path):
    from edgeae.errors import EdgeAEError
    from edgeae.training.train import load_model

    cfg = TrainConfig(data="synthetic", model=TINY, epochs=1, batch_size=4, samples_per_epoch=4, val_samples=4,
                      max_images=4, crop_size=64, lr=1e-12, rd_lambda=0.05, init=str(codec_run), device="cpu")
    train(cfg, tmp_path / "tuned", progress=False)
    base, tuned = load_model(codec_run)[0], load_model(tmp_path / "tuned")[0]
    for (name, a), b in zip(base.state_dict().items(), tuned.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name  # lr ~0: the weights are the init's
    other = TrainConfig(data="synthetic", epochs=1, samples_per_epoch=4, val_samples=4, max_images=4,
                        init=str(codec_run), device="cpu")
    with pytest.raises(EdgeAEError, match="architecture codec, not seed"):
        train(other, tmp_path / "mismatch", progress=False)


def test_codec_streams_decode_bit_exactly_and_lose_only_a_damaged_frame(codec_run, tmp_path, footage):
    import cv2

    from edgeae.runtime.bitstream import CODEC_ENTROPY, BitstreamReader
    from edgeae.runtime.tasks.compress import CompressConfig, DecompressConfig, compress, decompress

    out = tmp_path / "v.eae"
    stats = compress(CompressConfig(source=str(footage / "vtest.avi"), out=str(out), model=str(codec_run), limit=3))
    reader = BitstreamReader(out)
    assert reader.header.codec == CODEC_ENTROPY and stats["frames"] == 3
    decompress(DecompressConfig(source=str(out), out=str(tmp_path / "a"), model=str(codec_run)))
    decompress(DecompressConfig(source=str(out), out=str(tmp_path / "b"), model=str(codec_run)))
    first = sorted((tmp_path / "a").glob("*.png"))
    assert len(first) == 3
    assert all(np.array_equal(cv2.imread(str(p)), cv2.imread(str(tmp_path / "b" / p.name))) for p in first)
    # Damage one byte inside the second record's payload: its CRC fails, the others still decode.
    data = bytearray(out.read_bytes())
    second = data.index(b"\x89EAF", data.index(b"\x89EAF") + 1)
    data[second + 40] ^= 0xFF
    damaged = tmp_path / "damaged.eae"
    damaged.write_bytes(bytes(data))
    result = decompress(DecompressConfig(source=str(damaged), out=str(tmp_path / "c"), model=str(codec_run)))
    assert result["frames"] == 2 and result["lost"] == [1] and not result["complete"]


def test_changed_tables_change_the_model_id(codec_run, tmp_path):
    import shutil

    from edgeae.runtime.tasks.compress import model_id

    copy = tmp_path / "copy"
    shutil.copytree(codec_run, copy)
    tables = EntropyTables.load(copy / "entropy_tables.npz")
    counts = [row.copy() for row in tables.counts]
    counts[0][0] += 1
    EntropyTables(tables.lo, counts).save(copy / "entropy_tables.npz")
    assert model_id(copy) != model_id(codec_run)


def test_the_codec_runs_torch_free(codec_run, run_without_torch, footage):
    code = f"""
from edgeae.runtime import Autoencoder
from edgeae.runtime.evaluate import codec_curve
from edgeae.runtime.sources import iter_frames
frames = list(iter_frames({str(footage / "vtest.avi")!r}, limit=2))
point, = codec_curve([{str(codec_run)!r}], frames)
assert point["bpp"] > 0 and point["psnr_db"] > 5, point
print("ok")
"""
    result = run_without_torch(code)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_the_runtime_reconstructs_a_codec_through_the_rounded_latent(codec_run):
    from edgeae.runtime import Autoencoder

    frame = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    with Autoencoder.load(codec_run) as ae:
        assert ae.info.rounded_latent
        latent, size = ae.encode([frame])
        assert np.array_equal(ae.reconstruct([frame])[0], ae.decode(np.rint(latent), size)[0])


def test_a_codecs_full_path_is_compared_through_the_rounded_latent(codec_run):
    from edgeae.runtime import Autoencoder as Runtime
    from edgeae.runtime.benchmark import compare_parts, random_input

    x = random_input((1, 3, 64, 96))
    with Runtime.load(codec_run, backend="onnxruntime") as ae:
        latent = ae.encode_batch(x)
        rows = {r["part"]: r for r in compare_parts(ae, x, latent, ae.decode_batch(latent), "fp32")}
        assert rows["full"]["latent_flips"] == 0 and rows["full"]["max_abs"] == 0 and rows["full"]["passed"]
        shifted = latent + 1.0  # every latent one step off: every rounding differs
        full = next(r for r in compare_parts(ae, x, shifted, ae.decode_batch(shifted), "fp32") if r["part"] == "full")
        assert full["latent_flips"] == latent.size and not full["passed"]
