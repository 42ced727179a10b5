"""Latent ⇄ bytes: uniform quantisation per channel, a left-neighbour delta, then Zstandard.

Why Zstandard: its format is fixed by RFC 8878, so any conforming decoder returns exactly the bytes
that were compressed. Nothing about the probability model is computed from floats on the decoding
device (CompressAI's users saw PC and Jetson disagree for that reason): the symbols decode bit-exact
everywhere. The delta is integer arithmetic modulo 2**bits, undone with one cumulative sum.
On vtest.avi latents the delta shrinks the symbols by 23 % at 8 bits, 10 % at 6 and 1.5 % at 4
(benchmarks/latent_codec.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import zstandard

from edgeae.errors import EdgeAEError

MIN_BITS, MAX_BITS = 1, 16
ZSTD_LEVEL = 3  # levels 9 and 19 gain under 4 % on latents and cost 5× and 70× the time


def check_bits(bits: int) -> None:
    if not MIN_BITS <= bits <= MAX_BITS:
        raise EdgeAEError(f"bit depth {bits} is out of range; choose {MIN_BITS} to {MAX_BITS} (8 is a good default)")


def symbol_dtype(bits: int) -> np.dtype:
    return np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")


@dataclass(frozen=True)
class QuantisedLatent:
    """One frame's latent as integers: `symbols` C×h×w, dequantised value = symbols × steps[c]."""

    symbols: np.ndarray
    steps: np.ndarray  # float32 [C]; 0 for a channel that is zero everywhere

    def dequantise(self) -> np.ndarray:
        """float32 C×h×w; plain IEEE float32 multiplies, so every device gets the same latent."""
        return self.symbols.astype(np.float32) * self.steps[:, None, None]


def quantise(latent: np.ndarray, bits: int) -> QuantisedLatent:
    """C×h×w float latent (ReLU output, ≥ 0) → symbols in 0..2**bits-1 with a per-channel step."""
    levels = (1 << bits) - 1
    latent = np.maximum(latent.astype(np.float32, copy=False), 0)
    steps = (latent.max(axis=(1, 2)) / np.float32(levels)).astype(np.float32)
    scaled = np.divide(latent, steps[:, None, None], out=np.zeros_like(latent), where=steps[:, None, None] > 0)
    symbols = np.clip(np.rint(scaled), 0, levels).astype(symbol_dtype(bits))
    return QuantisedLatent(symbols, steps)


def delta_encode(symbols: np.ndarray, bits: int) -> np.ndarray:
    """Each symbol minus its left neighbour, modulo 2**bits (same dtype)."""
    residual = symbols.copy()
    residual[..., 1:] -= symbols[..., :-1]  # unsigned wrap-around is the modulo we want
    return residual & ((1 << bits) - 1)


def delta_decode(residual: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of delta_encode: a cumulative sum along the width, modulo 2**bits."""
    return np.cumsum(residual, axis=-1, dtype=residual.dtype) & ((1 << bits) - 1)


def steps_problem(steps: np.ndarray, bits: int) -> str | None:
    """Why these steps cannot have come from `quantise` (not finite, negative, or so large that
    step × (2**bits − 1) overflows float32), or None."""
    largest = np.finfo(np.float32).max / np.float32((1 << bits) - 1)
    bad = ~(np.isfinite(steps) & (steps >= 0) & (steps <= largest))
    if not bad.any():
        return None
    c = int(np.flatnonzero(bad)[0])
    return f"channel {c} has quantisation step {steps[c]}; steps are finite and 0 or more"


class LatentCodec:
    """Turns one frame's latent into a record payload and back; holds the (reusable) zstd contexts.

    Payload layout: C × float32 LE steps, then one Zstandard frame holding the C×h×w delta-coded
    symbols in C-order (uint8, or uint16 LE when bits > 8). `check` reads only the steps and the
    Zstandard frame header, so a payload is refused before anything is sized from it.
    """

    def __init__(self, latent_shape: tuple[int, int, int], bits: int):
        check_bits(bits)
        self.shape, self.bits = tuple(latent_shape), bits
        self.dtype = symbol_dtype(bits)
        self.symbol_bytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self._compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self._decompressor = zstandard.ZstdDecompressor()

    @property
    def max_payload(self) -> int:
        """The longest payload this stream can hold: the steps plus more than zstd's worst case for n bytes
        of symbols (ZSTD_COMPRESSBOUND: n + n/256, plus at most 64 for n under 128 KiB)."""
        n = self.symbol_bytes
        return 4 * self.shape[0] + n + n // 128 + 1024

    def check(self, payload: bytes) -> np.ndarray:
        """The payload's steps, after checking them and the size its Zstandard frame declares; EdgeAEError if unfit."""
        channels = self.shape[0]
        if len(payload) < 4 * channels:
            self._refuse(f"{len(payload)} bytes, too short for {channels} channel steps")
        steps = np.frombuffer(payload, "<f4", count=channels).astype(np.float32)
        problem = steps_problem(steps, self.bits)
        if problem:
            self._refuse(problem)
        try:
            declared = zstandard.get_frame_parameters(payload[4 * channels:]).content_size
        except zstandard.ZstdError as e:
            self._refuse(f"no Zstandard frame: {e}")
        # zstandard sizes its output from the declared size and ignores max_output_size: check it first.
        if declared != zstandard.CONTENTSIZE_UNKNOWN and declared != self.symbol_bytes:
            self._refuse(f"it declares {declared} bytes of symbols, expected {self.symbol_bytes}")
        return steps

    def _refuse(self, detail: str) -> NoReturn:
        raise EdgeAEError(f"a frame record does not decode to a {self.shape} latent ({detail}); the file is not "
                          f"from this edgeae version")

    def encode(self, latent: np.ndarray) -> tuple[bytes, QuantisedLatent]:
        """C×h×w float latent → (payload, the quantised latent the decoder will see)."""
        if latent.shape != self.shape:
            raise EdgeAEError(f"latent shape {latent.shape} differs from the stream's {self.shape}")
        q = quantise(latent, self.bits)
        body = self._compressor.compress(delta_encode(q.symbols, self.bits).tobytes())
        return q.steps.astype("<f4").tobytes() + body, q

    def decode(self, payload: bytes) -> QuantisedLatent:
        """Payload → quantised latent; EdgeAEError if the payload does not fit this stream's shape."""
        steps = self.check(payload)
        expected = self.symbol_bytes
        try:
            raw = self._decompressor.decompress(payload[4 * self.shape[0]:], max_output_size=expected)
        except zstandard.ZstdError as e:
            raw, detail = b"", str(e)
        else:
            detail = f"{len(raw)} bytes of symbols, expected {expected}"
        if len(raw) != expected:
            self._refuse(detail)
        residual = np.frombuffer(raw, self.dtype).reshape(self.shape)
        return QuantisedLatent(delta_decode(residual, self.bits), steps)
