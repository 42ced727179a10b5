import numpy as np
import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime.latent_codec import LatentCodec, delta_decode, delta_encode, quantise


def relu_latent(shape=(6, 5, 7), seed=0) -> np.ndarray:
    z = np.random.default_rng(seed).normal(1.0, 2.0, shape).astype(np.float32)
    return np.maximum(z, 0)


@pytest.mark.parametrize("bits", [1, 4, 8, 12, 16])
def test_symbols_decode_bit_exact_at_every_bit_depth(bits):
    latent = relu_latent()
    codec = LatentCodec(latent.shape, bits)
    payload, sent = codec.encode(latent)
    got = codec.decode(payload)
    assert got.symbols.dtype == sent.symbols.dtype and np.array_equal(got.symbols, sent.symbols)
    assert np.array_equal(got.steps, sent.steps)
    assert np.array_equal(got.dequantise(), sent.dequantise())


def test_quantisation_error_is_at_most_half_a_step():
    latent = relu_latent()
    q = quantise(latent, 6)
    error = np.abs(q.dequantise() - latent)
    assert np.all(error <= q.steps[:, None, None] / 2 + 1e-6)
    assert q.symbols.max() == 63


def test_a_channel_of_zeros_quantises_to_zeros_without_nan():
    latent = relu_latent()
    latent[2] = 0
    q = quantise(latent, 8)
    assert q.steps[2] == 0 and not q.symbols[2].any() and np.isfinite(q.dequantise()).all()


def test_delta_coding_is_undone_exactly_with_wrap_around():
    symbols = np.array([[[0, 255, 1, 254, 0]]], np.uint8)
    assert np.array_equal(delta_decode(delta_encode(symbols, 8), 8), symbols)
    small = np.array([[[0, 15, 3, 9]]], np.uint8)
    residual = delta_encode(small, 4)
    assert residual.max() <= 15 and np.array_equal(delta_decode(residual, 4), small)


def test_a_payload_of_another_latent_shape_is_a_clear_error():
    payload, _ = LatentCodec((6, 5, 7), 8).encode(relu_latent())
    with pytest.raises(EdgeAEError, match="does not decode to a"):
        LatentCodec((6, 5, 8), 8).decode(payload)


def test_garbage_payload_is_a_clear_error():
    with pytest.raises(EdgeAEError, match="does not decode to a"):
        LatentCodec((6, 5, 7), 8).decode(b"\x00" * 40)


@pytest.mark.parametrize("bits", [0, 17])
def test_bit_depth_out_of_range_is_refused(bits):
    with pytest.raises(EdgeAEError, match="bit depth"):
        LatentCodec((6, 5, 7), bits)


def test_a_payload_declaring_more_symbols_than_its_latent_is_refused_unread():
    import zstandard

    frame = bytearray(zstandard.ZstdCompressor().compress(bytes(1 << 20)))
    frame[5:9] = (0xFFFFFFFF).to_bytes(4, "little")  # the content size field: 4 GiB, never allocated
    with pytest.raises(EdgeAEError, match="declares 4294967295 bytes of symbols, expected 210"):
        LatentCodec((6, 5, 7), 8).decode(np.ones(6, "<f4").tobytes() + bytes(frame))


@pytest.mark.parametrize("step", [np.nan, np.inf, -1.0, 3e38])
def test_a_step_quantise_cannot_make_is_refused(step):
    codec = LatentCodec((6, 5, 7), 8)
    payload = bytearray(codec.encode(relu_latent())[0])
    payload[8:12] = np.float32(step).tobytes()  # channel 2's step
    with pytest.raises(EdgeAEError, match="channel 2 has quantisation step"):
        codec.decode(bytes(payload))


def test_a_payload_longer_than_max_payload_cannot_come_from_the_encoder():
    codec = LatentCodec((6, 5, 7), 16)
    noise = np.random.default_rng(0).uniform(0, 1, (6, 5, 7)).astype(np.float32)  # incompressible symbols
    assert len(codec.encode(noise)[0]) <= codec.max_payload
