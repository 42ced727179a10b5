"""Crafted .eae files whose CRCs are all valid: each must end in one clean line and exit 2, within bounds.

The generator packs headers and records by hand from the byte layouts documented in bitstream.py, so a
hostile value reaches the checks behind the CRCs. Every case runs `edgeae decompress` to a .avi in a
subprocess under RLIMIT_AS and a timeout: the memory limit is what a healthy decompress of the same
model needs (measured here, VmPeak) plus 256 MiB, so a check that comes after a large allocation fails
the test instead of exhausting the machine, and a loop that never ends fails it on time.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, replace

import numpy as np
import pytest
import zstandard

from edgeae.errors import EdgeAEError
from edgeae.runtime import Autoencoder
from edgeae.runtime.bitstream import END_SYNC, FRAME_SYNC, MAGIC, STOP_SYNC, BitstreamReader
from edgeae.runtime.latent_codec import LatentCodec
from edgeae.runtime.tasks.compress import CompressConfig, checked_records, compress

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc/self/status are Linux's")

HEADROOM = 256 << 20  # bytes of address space a case may use beyond a healthy decompress
TIMEOUT_S = 60  # a healthy decompress of two small frames takes a few seconds on a shared 2-core VM

RUN = """
import resource, sys
limit = int(sys.argv[1])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from edgeae.cli import main
code = main(sys.argv[2:])
peak = next(line for line in open("/proc/self/status") if line.startswith("VmPeak:"))
print("vmpeak", int(peak.split()[1]) * 1024)
sys.exit(code)
"""


@dataclass(frozen=True)
class Crafted:
    """Every field of an .eae file, written as given: nothing is checked, every CRC is recomputed."""

    model_id: bytes
    frame_size: tuple[int, int]
    latent_shape: tuple[int, int, int]
    bits: int
    fps: float
    records: tuple[tuple[int, bytes], ...]
    tail: bytes  # what follows the records: an end or stop record, or anything else

    def pack(self) -> bytes:
        body = struct.pack("<4sH32sIIHHHBBf", MAGIC, 1, self.model_id, *self.frame_size, *self.latent_shape,
                           self.bits, 1, self.fps)
        out = [body, struct.pack("<I", zlib.crc32(body))]
        for seq, payload in self.records:
            head = struct.pack("<II", seq, len(payload))
            out.append(FRAME_SYNC + head + payload + struct.pack("<I", zlib.crc32(head + payload)))
        return b"".join(out) + self.tail


def end_record(count: int) -> bytes:
    return END_SYNC + struct.pack("<II", count, zlib.crc32(struct.pack("<I", count)))


def stop_record(count: int, reason: bytes = b"interrupted (signal 15)") -> bytes:
    body = struct.pack("<IB", count, len(reason)) + reason
    return STOP_SYNC + body + struct.pack("<I", zlib.crc32(body))


def steps_then(frame: bytes, channels: int) -> bytes:
    return struct.pack(f"<{channels}f", *[0.01] * channels) + frame


def zstd_of_zeros(size: int) -> bytes:
    """A genuine Zstandard frame of `size` zero bytes: 96 MB of symbols fit in about 3 KB."""
    return zstandard.ZstdCompressor(level=3).compress(bytes(size))


def zstd_declaring(size: int) -> bytes:
    """A Zstandard frame of 1 MiB of zeros whose header declares `size` bytes of content."""
    frame = bytearray(zstd_of_zeros(1 << 20))
    assert frame[4] == 0b10100000  # single segment, 4-byte content size at bytes 5-8
    frame[5:9] = struct.pack("<I", size)
    return bytes(frame)


@pytest.fixture(scope="module")
def healthy(trained_run, synthetic_video, tmp_path_factory) -> Crafted:
    """The two-frame stream compress writes, unpacked into fields to be made hostile one at a time."""
    out = tmp_path_factory.mktemp("hostile") / "healthy.eae"
    compress(CompressConfig(str(synthetic_video), str(out), str(trained_run), limit=2, measure=False))
    reader = BitstreamReader(out)
    h = reader.header
    return Crafted(h.model_id, h.frame_size, h.latent_shape, h.bits, h.fps, tuple(reader), end_record(2))


@pytest.fixture(scope="module")
def model(trained_run):
    with Autoencoder.load(trained_run) as ae:
        return ae.info


def decompress_limited(path, run, out, limit: int) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", RUN, str(limit), "decompress", str(path), str(out), "--model", str(run)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def address_limit(healthy, trained_run, tmp_path_factory) -> int:
    """What a healthy decompress of this model reaches (VmPeak) plus HEADROOM."""
    folder = tmp_path_factory.mktemp("measure")
    (folder / "healthy.eae").write_bytes(healthy.pack())
    done = decompress_limited(folder / "healthy.eae", trained_run, folder / "out.avi", 0)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split("vmpeak")[-1]) + HEADROOM


def renumbered(h: Crafted, *seqs: int) -> Crafted:
    return replace(h, records=tuple((seq, payload) for seq, (_, payload) in zip(seqs, h.records)))


def stepped(h: Crafted, value: float, record: int = 0) -> Crafted:
    """`h` with one record's channel-0 quantisation step replaced."""
    records = [(seq, struct.pack("<f", value) + p[4:] if i == record else p) for i, (seq, p) in enumerate(h.records)]
    return replace(h, records=tuple(records))


def other_channels(h: Crafted, channels: int) -> Crafted:
    """A consistent stream of `channels`-channel latents, which this model does not make."""
    shape = (channels, *h.latent_shape[1:])
    payload = LatentCodec(shape, h.bits).encode(np.ones(shape, np.float32))[0]
    return replace(h, latent_shape=shape, records=((0, payload),), tail=end_record(1))


# name → (hostile stream from the healthy one h, the model's latent channels c and downsampling ds;
#         what the one-line error must say)
CASES = {
    "end record claims 100,000,000 frames": (lambda h, c, ds: replace(h, tail=end_record(100_000_000)),
                                             "counts 100000000 frames"),
    "end record claims 0xFFFFFFFF frames": (lambda h, c, ds: replace(h, tail=end_record(0xFFFFFFFF)),
                                            "counts 4294967295 frames"),
    "stop record claims 0xFFFFFFFF frames": (lambda h, c, ds: replace(h, tail=stop_record(0xFFFFFFFF)),
                                             "counts 4294967295 frames"),
    "record numbered 0xFFFFFFFE": (lambda h, c, ds: renumbered(h, 0, 0xFFFFFFFE), "numbered #4294967294"),
    "96x1000x1000 latent for its 16000x16000 frames": (
        lambda h, c, ds: replace(h, frame_size=(1000 * ds, 1000 * ds), latent_shape=(c, 1000, 1000),
                                 records=((0, steps_then(zstd_of_zeros(c * 1000 * 1000), c)),), tail=end_record(1)),
        "frame size 16000x16000"),
    "zstd frame declares 4 GiB of symbols": (
        lambda h, c, ds: replace(h, records=((0, steps_then(zstd_declaring(0xFFFFFFFF), c)),), tail=end_record(1)),
        "declares 4294967295 bytes of symbols"),
    "fps inf": (lambda h, c, ds: replace(h, fps=float("inf")), "frame rate inf"),
    "fps nan": (lambda h, c, ds: replace(h, fps=float("nan")), "frame rate nan"),
    "fps -25": (lambda h, c, ds: replace(h, fps=-25.0), "frame rate -25"),
    "fps 1e6": (lambda h, c, ds: replace(h, fps=1e6), "frame rate 1000000"),
    "frame size disagrees with the latent": (
        lambda h, c, ds: replace(h, frame_size=(2 * h.frame_size[0], 2 * h.frame_size[1])), "but this model makes"),
    "latent channels differ from the model's": (lambda h, c, ds: other_channels(h, c // 2), "but this model makes"),
    "step nan": (lambda h, c, ds: stepped(h, float("nan")), "quantisation step nan"),
    "step inf": (lambda h, c, ds: stepped(h, float("inf"), record=1), "quantisation step inf"),
    "step negative": (lambda h, c, ds: stepped(h, -1.0), "quantisation step -1"),
    "step that overflows float32": (lambda h, c, ds: stepped(h, 3e38), "quantisation step 3"),
    "bits 0": (lambda h, c, ds: replace(h, bits=0), "declares 0 bits per symbol"),
    "record claims 4 GiB": (
        lambda h, c, ds: replace(h, records=(), tail=FRAME_SYNC + struct.pack("<II", 0, 0xFFFFFFF0) + h.records[0][1]),
        "holds no intact frame"),
}


def test_a_healthy_stream_decodes_under_the_same_limits(healthy, trained_run, address_limit, tmp_path):
    (tmp_path / "healthy.eae").write_bytes(healthy.pack())
    done = decompress_limited(tmp_path / "healthy.eae", trained_run, tmp_path / "out.avi", address_limit)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.avi").is_file()


@pytest.mark.parametrize("case", CASES)
def test_a_crafted_file_is_one_clean_line(healthy, model, trained_run, address_limit, tmp_path, case):
    craft, message = CASES[case]
    (tmp_path / "crafted.eae").write_bytes(craft(healthy, model.latent_channels, model.downsample).pack())
    done = decompress_limited(tmp_path / "crafted.eae", trained_run, tmp_path / "out.avi", address_limit)
    err = done.stderr.strip()
    assert done.returncode == 2, err[-2000:]
    assert len(err.splitlines()) == 1 and err.startswith("edgeae decompress: error:") and message in err, err[-2000:]
    assert not (tmp_path / "out.avi").exists()


# Random damage (not crafted): every cut and bit flip gives intact frames or one EdgeAEError, never a crash.

def test_250_truncations_and_800_bit_flips_read_cleanly(healthy, tmp_path):
    data = healthy.pack()
    variants = [data[:n] for n in np.linspace(0, len(data) - 1, 250).astype(int)]
    variants += [data[:i // 8] + bytes([data[i // 8] ^ (1 << i % 8)]) + data[i // 8 + 1:]
                 for i in np.linspace(0, 8 * len(data) - 1, 800).astype(int)]
    codec, path = LatentCodec(healthy.latent_shape, healthy.bits), tmp_path / "damaged.eae"
    for variant in variants:
        path.write_bytes(variant)
        try:
            for _, payload in checked_records(BitstreamReader(path), str(path)):
                codec.decode(payload)
        except EdgeAEError:
            pass  # a clean refusal; any other exception fails the test
