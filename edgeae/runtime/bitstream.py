"""The .eae container: a header, then one length-prefixed, CRC-checked record per frame, then an end record.

The reader never trusts a byte it has not checked: a damaged or cut-short file yields every intact
frame record and a `LossReport` saying which records were lost and where.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from edgeae.errors import EdgeAEError

MAGIC = b"\x89EAE"
VERSION = 1
CODEC_ZSTD_DELTA = 1
FRAME_SYNC = b"\x89EAF"
END_SYNC = b"\x89EAZ"

_HEADER = struct.Struct("<4sH32sIIHHHBBf")  # then a u32 CRC
_U32 = struct.Struct("<I")
_RECORD_HEAD = struct.Struct("<4sII")  # sync, sequence number, payload length
_END = struct.Struct("<4sII")  # sync, frame count, CRC
HEADER_SIZE = _HEADER.size + _U32.size
RECORD_OVERHEAD = _RECORD_HEAD.size + _U32.size
END_SIZE = _END.size


@dataclass(frozen=True)
class StreamHeader:
    """What a decoder needs before the first frame."""

    model_id: bytes  # sha256 over encoder.onnx + decoder.onnx
    frame_size: tuple[int, int]  # (H, W) of the original frames
    latent_shape: tuple[int, int, int]  # (C, h, w)
    bits: int
    fps: float = 0.0  # 0 when the source has no frame rate
    codec: int = CODEC_ZSTD_DELTA


def write_header(f: BinaryIO, header: StreamHeader) -> None:
    """Write the 62-byte header. Byte layout, little-endian:

    offset size field
         0    4 magic b"\\x89EAE"
         4    2 version u16 (1)
         6   32 model id: sha256(encoder.onnx bytes + decoder.onnx bytes)
        38    4 frame height u32       42  4 frame width u32
        46    2 latent channels u16    48  2 latent height u16    50  2 latent width u16
        52    1 bits per symbol u8     53  1 codec u8 (1: per-channel quantisation, delta, zstd)
        54    4 frames per second f32 (0: unknown)
        58    4 CRC32 of bytes 0..57
    """
    body = _HEADER.pack(MAGIC, VERSION, header.model_id, *header.frame_size, *header.latent_shape,
                        header.bits, header.codec, header.fps)
    f.write(body + _U32.pack(zlib.crc32(body)))


def read_header(buf: bytes, source: str = "bitstream") -> StreamHeader:
    """Parse and check the header at the start of `buf`; EdgeAEError if it is not a usable .eae header."""
    if len(buf) < HEADER_SIZE or buf[:4] != MAGIC:
        raise EdgeAEError(f"{source} is not an edgeae bitstream (no .eae header); pass a file written by 'edgeae compress'")
    body = buf[:_HEADER.size]
    (_, version, model_id, height, width, channels, lh, lw, bits, codec, fps) = _HEADER.unpack(body)
    if _U32.unpack_from(buf, _HEADER.size)[0] != zlib.crc32(body):
        raise EdgeAEError(f"{source}: header is damaged (CRC mismatch), no frame can be decoded; compress the source again")
    if version != VERSION or codec != CODEC_ZSTD_DELTA:
        raise EdgeAEError(f"{source} is .eae version {version} codec {codec}; this edgeae reads version {VERSION}: upgrade edgeae")
    return StreamHeader(model_id, (height, width), (channels, lh, lw), bits, round(fps, 3), codec)


def write_record(f: BinaryIO, seq: int, payload: bytes) -> None:
    """One frame record: FRAME_SYNC, seq u32, length u32, payload, CRC32 u32 of (seq, length, payload)."""
    head = _RECORD_HEAD.pack(FRAME_SYNC, seq, len(payload))
    f.write(head + payload + _U32.pack(zlib.crc32(payload, zlib.crc32(head[4:]))))


def read_record(buf: bytes, pos: int) -> tuple[int, bytes, int]:
    """The record at `pos` → (seq, payload, position after it); ValueError saying why it is not intact."""
    if len(buf) - pos < _RECORD_HEAD.size:
        raise ValueError("record runs past the end of the file")
    sync, seq, length = _RECORD_HEAD.unpack_from(buf, pos)
    if sync != FRAME_SYNC:
        raise ValueError("no record marker")
    end = pos + _RECORD_HEAD.size + length
    if end + _U32.size > len(buf):
        raise ValueError("record runs past the end of the file")
    view = memoryview(buf)
    if _U32.unpack_from(buf, end)[0] != zlib.crc32(view[pos + 4:end]):
        raise ValueError("CRC mismatch")
    return seq, bytes(view[pos + _RECORD_HEAD.size:end]), end + _U32.size


def write_end(f: BinaryIO, count: int) -> None:
    """End record: END_SYNC, number of frame records u32, CRC32 u32 of the count."""
    f.write(_END.pack(END_SYNC, count, zlib.crc32(_U32.pack(count))))


def read_end(buf: bytes, pos: int) -> int:
    """Frame count from the end record at `pos`; ValueError if it is not intact."""
    if len(buf) - pos < _END.size:
        raise ValueError("record runs past the end of the file")
    sync, count, crc = _END.unpack_from(buf, pos)
    if sync != END_SYNC or crc != zlib.crc32(_U32.pack(count)):
        raise ValueError("damaged end record")
    return count


class BitstreamWriter:
    """Streams records to a .eae file, flushing each one so an interrupted run leaves a readable file."""

    def __init__(self, path: str | os.PathLike, header: StreamHeader):
        self.path, self.header, self.count = Path(path), header, 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")
        write_header(self._file, header)
        self._file.flush()

    def write(self, payload: bytes) -> None:
        write_record(self._file, self.count, payload)
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        if not self._file.closed:
            write_end(self._file, self.count)
            self._file.close()

    def __enter__(self) -> "BitstreamWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class LossReport:
    """What a reader found: intact records, damaged byte ranges, and records known or suspected lost."""

    intact: int = 0
    expected: int | None = None  # from the end record; None when the file has none
    last: int = -1  # sequence number of the last intact record
    lost: list[int] = field(default_factory=list)  # sequence numbers missing between/after intact records
    damaged: list[tuple[int, int, str]] = field(default_factory=list)  # (offset, bytes skipped, why)

    @property
    def complete(self) -> bool:
        return self.expected is not None and not self.lost and not self.damaged

    def lines(self) -> list[str]:
        """One line per problem, empty when the file was complete."""
        out = [f"skipped {n} damaged bytes at offset {off} ({why})" for off, n, why in self.damaged]
        if self.lost:
            out.append(f"lost {len(self.lost)} frame(s): {_ranges(self.lost)}")
        if self.expected is None:
            out.append(f"no end record: the file was cut short; frames after #{self.last} may be missing")
        return out


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7] → '#1-#3, #7'."""
    spans, start = [], numbers[0]
    for prev, cur in zip(numbers, numbers[1:] + [None]):
        if cur != prev + 1:
            spans.append(f"#{start}" if start == prev else f"#{start}-#{prev}")
            start = cur
    return ", ".join(spans)


class BitstreamReader:
    """Reads a whole .eae file; iterate for (seq, payload) of every intact record, then read `.report`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise EdgeAEError(f"bitstream {self.path} not found; check the path")
        self._buf = self.path.read_bytes()
        self.header = read_header(self._buf, str(self.path))
        self.report = LossReport()

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        buf, pos, next_seq = self._buf, HEADER_SIZE, 0
        self.report = report = LossReport()
        while pos < len(buf):
            if buf[pos:pos + 4] == END_SYNC:
                try:
                    report.expected = read_end(buf, pos)
                    break
                except ValueError as e:
                    pos = self._skip_damage(pos, str(e))
                    continue
            try:
                seq, payload, after = read_record(buf, pos)
            except ValueError as e:
                pos = self._skip_damage(pos, str(e))
                continue
            if seq < next_seq:  # a stale duplicate cannot come from our writer: treat it as damage
                pos = self._skip_damage(pos, f"out-of-order record #{seq}")
                continue
            report.lost.extend(range(next_seq, seq))
            report.intact, report.last, next_seq, pos = report.intact + 1, seq, seq + 1, after
            yield seq, payload
        if report.expected is not None:
            report.lost.extend(range(next_seq, report.expected))

    def _skip_damage(self, pos: int, why: str) -> int:
        """Record the damage at `pos` and return the next position that starts with a marker (or EOF)."""
        candidates = [i for i in (self._buf.find(FRAME_SYNC, pos + 1), self._buf.find(END_SYNC, pos + 1)) if i >= 0]
        resume = min(candidates, default=len(self._buf))
        self.report.damaged.append((pos, resume - pos, why))
        return resume
