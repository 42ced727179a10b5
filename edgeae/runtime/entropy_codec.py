"""A learned codec's latent ⇄ bytes: rounding, then range coding under the model's per-channel probability tables.

The tables (RUN/entropy_tables.npz, written by 'edgeae export' from the trained entropy model) are integer counts,
so the probabilities every device codes with are the same IEEE doubles (count / total), and `constriction`'s
range coder quantises them the same way everywhere: a file decodes to the same integer latents on a PC and on a
Jetson. Rounding happens once, here, with numpy's rint; the decoder then sees exactly the latents the encoder's
quality measurement saw.

Payload layout (one record per frame): the range coder's compressed words, uint32 little-endian. Symbols are
coded channel after channel, each channel's h×w values in C order under that channel's table. Values outside a
channel's table range are clipped to its ends (the tables leave ≤ 1e-7 of the mass outside; `clipped` counts them).
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from edgeae.config import atomic_write_bytes
from edgeae.errors import EdgeAEError

ENTROPY_TABLES = "entropy_tables.npz"
MAX_TABLE_BINS = 4096
MAX_TABLE_FILE_BYTES = 16 << 20
WORST_BITS_PER_SYMBOL = 32  # the coder's precision is 24 bits; a symbol can never cost more than this


def tables_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / ENTROPY_TABLES


def has_entropy_model(run_dir: str | os.PathLike) -> bool:
    """Whether the run is a learned codec (its latent is range-coded) rather than an autoencoder."""
    return tables_path(run_dir).is_file()


@dataclass(frozen=True)
class EntropyTables:
    """Per channel c: the lowest coded value lo[c] and the counts of the values lo[c], lo[c] + 1, …"""

    lo: np.ndarray  # int32 C
    counts: list[np.ndarray]  # C rows of positive int64 counts

    @property
    def channels(self) -> int:
        return len(self.lo)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EntropyTables":
        path = Path(path)
        fix = "re-export the run with 'edgeae export RUN'"
        if not path.is_file():
            raise EdgeAEError(f"{path} not found; {fix}")
        if path.stat().st_size > MAX_TABLE_FILE_BYTES:
            raise EdgeAEError(f"{path} is {path.stat().st_size} bytes, too large for probability tables; {fix}")
        try:
            with np.load(path, allow_pickle=False) as data:
                lo, counts = np.asarray(data["lo"]), np.asarray(data["counts"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise EdgeAEError(f"{path} is not an edgeae probability table file ({type(e).__name__}); {fix}") from None
        return cls.from_arrays(lo, counts, str(path))

    @classmethod
    def from_arrays(cls, lo: np.ndarray, counts: np.ndarray, source: str = "tables") -> "EntropyTables":
        """Check the arrays (`counts` C × K, each row positive counts then zero padding) and keep each row's counts."""
        fix = "re-export the run with 'edgeae export RUN'"
        if lo.ndim != 1 or counts.ndim != 2 or counts.shape[0] != lo.shape[0] or not 1 <= counts.shape[1] <= MAX_TABLE_BINS \
                or lo.dtype.kind not in "iu" or counts.dtype.kind not in "iu":
            raise EdgeAEError(f"{source}: tables of shape {lo.shape}, {counts.shape} (need integer C and C × K, K ≤ "
                              f"{MAX_TABLE_BINS}); {fix}")
        rows = []
        for c, row in enumerate(counts.astype(np.int64)):
            used = int(np.count_nonzero(row))
            if used == 0 or (row[:used] <= 0).any() or (row[used:] != 0).any() or row.sum() >= 1 << 40:
                raise EdgeAEError(f"{source}: channel {c}'s table is not positive counts followed by zeros; {fix}")
            if abs(int(lo[c])) > MAX_TABLE_BINS:
                raise EdgeAEError(f"{source}: channel {c} starts at {int(lo[c])}, beyond ±{MAX_TABLE_BINS}; {fix}")
            rows.append(row[:used])
        return cls(lo.astype(np.int32), rows)

    def save(self, path: str | os.PathLike) -> None:
        width = max(len(r) for r in self.counts)
        padded = np.zeros((self.channels, width), np.uint32)
        for c, row in enumerate(self.counts):
            padded[c, :len(row)] = row
        buf = io.BytesIO()
        np.savez(buf, lo=self.lo.astype(np.int32), counts=padded)
        atomic_write_bytes(path, buf.getvalue())


@dataclass(frozen=True)
class RoundedLatent:
    """One frame's latent as the integers the file holds (int32 C×h×w)."""

    values: np.ndarray

    def dequantise(self) -> np.ndarray:
        return self.values.astype(np.float32)


class EntropyCodec:
    """Turns one frame's latent into a record payload and back (the learned codec's counterpart of LatentCodec)."""

    def __init__(self, latent_shape: tuple[int, int, int], tables: EntropyTables):
        import constriction

        if tables.channels != latent_shape[0]:
            raise EdgeAEError(f"the probability tables have {tables.channels} channels, the latent {latent_shape[0]}; "
                              "re-export the run with 'edgeae export RUN'")
        self.shape, self.tables = tuple(latent_shape), tables
        self._constriction = constriction
        # float64 count / total: exact-ish and, above all, the same IEEE result on every device.
        self._models = [constriction.stream.model.Categorical(row / row.sum(), perfect=False) for row in tables.counts]
        self._lo = tables.lo.astype(np.int64)
        self._hi = np.array([lo + len(row) - 1 for lo, row in zip(self._lo, tables.counts)], np.int64)
        self.clipped = 0

    @property
    def symbols(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def max_payload(self) -> int:
        return self.symbols * WORST_BITS_PER_SYMBOL // 8 + 64

    def check(self, payload: bytes) -> None:
        """Refuse a payload no encoder of this stream can have written (size), before decoding it."""
        if len(payload) % 4 or not 0 < len(payload) <= self.max_payload:
            self._refuse(f"{len(payload)} bytes: not a whole number of 32-bit words up to {self.max_payload}")

    def _refuse(self, detail: str) -> NoReturn:
        raise EdgeAEError(f"a frame record does not decode to a {self.shape} latent ({detail}); the file is damaged "
                          "or not from this model")

    def encode(self, latent: np.ndarray) -> tuple[bytes, RoundedLatent]:
        """C×h×w float latent → (payload, the rounded latent the decoder will see)."""
        if latent.shape != self.shape:
            raise EdgeAEError(f"latent shape {latent.shape} differs from the stream's {self.shape}")
        rounded = np.rint(np.nan_to_num(latent, nan=0.0, posinf=1e6, neginf=-1e6)).astype(np.int64)
        lo, hi = self._lo[:, None, None], self._hi[:, None, None]
        clipped = np.clip(rounded, lo, hi)
        self.clipped += int(np.count_nonzero(clipped != rounded))
        encoder = self._constriction.stream.queue.RangeEncoder()
        symbols = (clipped - lo).astype(np.int32).reshape(self.shape[0], -1)
        for c, model in enumerate(self._models):
            encoder.encode(symbols[c], model)
        words = encoder.get_compressed()
        return words.astype("<u4").tobytes(), RoundedLatent(clipped.astype(np.int32))

    def decode(self, payload: bytes) -> RoundedLatent:
        self.check(payload)
        decoder = self._constriction.stream.queue.RangeDecoder(np.frombuffer(payload, "<u4").astype(np.uint32))
        count = self.shape[1] * self.shape[2]
        values = np.empty((self.shape[0], count), np.int32)
        try:
            for c, model in enumerate(self._models):
                values[c] = decoder.decode(model, count)
        except Exception as e:  # constriction raises on words that no encoder can have produced
            self._refuse(f"the range decoder stopped: {e}")
        return RoundedLatent((values + self.tables.lo[:, None]).reshape(self.shape))
