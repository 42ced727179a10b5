"""The .eae container: a header, then one length-prefixed, CRC-checked record per frame, then an end record.

    header (62 bytes, see write_header) | frame record … (write_record) | end record (write_end)
                                                                        or stop record (write_stop)

A writer that finishes ends the file with an end record; one stopped early (Ctrl-C, SIGTERM, an error)
ends it with a stop record instead, which also counts the frames written and says why it stopped.
Version 1 files written before the stop record existed are unchanged and read the same.

The reader never trusts a byte it has not checked: a damaged or cut-short file yields every intact
frame record and a `LossReport` saying which records were lost and where. Every size, count and rate
read from a file is checked against bounds before it sizes anything (frame sides, frame counts no
larger than the file could hold, payloads no longer than the caller's limit), so a crafted file with
valid CRCs fails with one EdgeAEError instead of exhausting memory or time.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from edgeae.errors import EdgeAEError
from edgeae.outputs import signals_held

MAGIC = b"\x89EAE"
VERSION = 1
CODEC_ZSTD_DELTA = 1  # the autoencoders' latent: per-channel quantisation, delta, zstd (runtime/latent_codec.py)
CODEC_ENTROPY = 2  # a learned codec's latent: rounded, range-coded under its tables (runtime/entropy_codec.py)
CODECS = (CODEC_ZSTD_DELTA, CODEC_ENTROPY)
FRAME_SYNC = b"\x89EAF"
END_SYNC = b"\x89EAZ"
STOP_SYNC = b"\x89EAI"
MAX_FRAME_SIDE = 8192  # DCI 8K; with MAX_FRAME_PIXELS this bounds what one frame can make a decoder allocate
MAX_FRAME_PIXELS = 8192 * 4320
MAX_FPS = 1000.0
MAX_REASON_BYTES = 255

_HEADER = struct.Struct("<4sH32sIIHHHBBf")  # then a u32 CRC
_U32 = struct.Struct("<I")
_RECORD_HEAD = struct.Struct("<4sII")  # sync, sequence number, payload length
_END = struct.Struct("<4sII")  # sync, frame count, CRC
_STOP_HEAD = struct.Struct("<4sIB")  # sync, frame count, reason length; then the reason and a CRC
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


def header_problem(header: StreamHeader) -> str | None:
    """What makes `header` unusable whatever the model (a size or rate out of bounds), or None."""
    (height, width), latent = header.frame_size, header.latent_shape
    if not (1 <= height <= MAX_FRAME_SIDE and 1 <= width <= MAX_FRAME_SIDE and height * width <= MAX_FRAME_PIXELS):
        return (f"frame size {width}x{height} is outside what an .eae stream holds (1 to {MAX_FRAME_SIDE} pixels a "
                f"side, {MAX_FRAME_PIXELS} in all)")
    if min(latent) < 1 or latent[1] > height or latent[2] > width:
        return f"latent shape {'x'.join(map(str, latent))} does not fit a {width}x{height} frame"
    if not (math.isfinite(header.fps) and 0 <= header.fps <= MAX_FPS):
        return f"frame rate {header.fps} is not 0 (unknown) or a number of frames per second up to {MAX_FPS:g}"
    return None


def write_header(f: BinaryIO, header: StreamHeader) -> None:
    """Write the 62-byte header (EdgeAEError if `header_problem` finds one). Byte layout, little-endian:

    offset size field
         0    4 magic b"\\x89EAE"
         4    2 version u16 (1)
         6   32 model id: sha256(encoder.onnx bytes + decoder.onnx bytes)
        38    4 frame height u32       42  4 frame width u32
        46    2 latent channels u16    48  2 latent height u16    50  2 latent width u16
        52    1 bits per symbol u8     53  1 codec u8 (1: per-channel quantisation, delta, zstd;
                                                     2: rounding + range coding under the model's tables, bits 0)
        54    4 frames per second f32 (0: unknown; else at most 1000)
        58    4 CRC32 of bytes 0..57
    Frames are at most 8192 pixels a side and 8192×4320 pixels in all; readers refuse larger ones.
    """
    problem = header_problem(header)
    if problem:
        raise EdgeAEError(f"cannot write an .eae stream: {problem}; resize the source")
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
    if version != VERSION or codec not in CODECS:
        raise EdgeAEError(f"{source} is .eae version {version} codec {codec}; this edgeae reads version {VERSION}: upgrade edgeae")
    header = StreamHeader(model_id, (height, width), (channels, lh, lw), bits, fps, codec)
    problem = header_problem(header)
    if problem:
        raise EdgeAEError(f"{source} is not a usable .eae file: {problem}; it is damaged or was not written by "
                          f"'edgeae compress'")
    return StreamHeader(model_id, (height, width), (channels, lh, lw), bits, round(fps, 3), codec)


def write_record(f: BinaryIO, seq: int, payload: bytes) -> None:
    """One frame record: FRAME_SYNC, seq u32, length u32, payload, CRC32 u32 of (seq, length, payload)."""
    head = _RECORD_HEAD.pack(FRAME_SYNC, seq, len(payload))
    f.write(head + payload + _U32.pack(zlib.crc32(payload, zlib.crc32(head[4:]))))


def read_record(buf: bytes, pos: int, max_payload: int | None = None) -> tuple[int, bytes, int]:
    """The record at `pos` → (seq, payload, position after it); ValueError saying why it is not intact.

    A payload longer than `max_payload` is refused before its CRC is computed.
    """
    if len(buf) - pos < _RECORD_HEAD.size:
        raise ValueError("record runs past the end of the file")
    sync, seq, length = _RECORD_HEAD.unpack_from(buf, pos)
    if sync != FRAME_SYNC:
        raise ValueError("no record marker")
    if max_payload is not None and length > max_payload:
        raise ValueError(f"record claims {length} bytes, more than a frame's payload can be")
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


def write_stop(f: BinaryIO, count: int, reason: str) -> None:
    """Stop record, in place of the end record when the writer was stopped early. Byte layout, little-endian:

    offset size field
         0    4 sync b"\\x89EAI"
         4    4 frame records written u32
         8    1 reason length n u8 (at most 255)
         9    n reason, UTF-8 (e.g. "interrupted (signal 15)")
       9+n    4 CRC32 of bytes 4..8+n
    Readers from before this record existed skip it as damage and report the file as cut short.
    """
    text = reason.encode("utf-8")[:MAX_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
    body = _STOP_HEAD.pack(STOP_SYNC, count, len(text)) + text
    f.write(body + _U32.pack(zlib.crc32(body[4:])))


def read_stop(buf: bytes, pos: int) -> tuple[int, str]:
    """(frame count, reason) from the stop record at `pos`; ValueError if it is not intact."""
    if len(buf) - pos < _STOP_HEAD.size:
        raise ValueError("record runs past the end of the file")
    sync, count, length = _STOP_HEAD.unpack_from(buf, pos)
    end = pos + _STOP_HEAD.size + length
    if sync != STOP_SYNC or end + _U32.size > len(buf) or _U32.unpack_from(buf, end)[0] != zlib.crc32(buf[pos + 4:end]):
        raise ValueError("damaged stop record")
    return count, buf[pos + _STOP_HEAD.size:end].decode("utf-8", "replace")


def stop_reason(exc: BaseException) -> str:
    """What a stop record says about the exception that stopped the writer."""
    if isinstance(exc, KeyboardInterrupt):  # edgeae.cli raises KeyboardInterrupt("signal 15") on SIGTERM
        return f"interrupted ({exc})" if str(exc) else "interrupted (Ctrl-C)"
    return f"stopped by an error ({exc or type(exc).__name__})"


class BitstreamWriter:
    """Streams records to a hidden `.NAME.partial` file, flushing each one, renamed to NAME when closed.

    Closed normally (or by a `with` block that ends without an exception) it writes the end record;
    closed with `stopped=reason` (a `with` block left by an exception, Ctrl-C included) it writes a stop
    record instead, and the file is still renamed into place: the frames are kept, labelled incomplete.
    """

    def __init__(self, path: str | os.PathLike, header: StreamHeader):
        self.path, self.header, self.count = Path(path), header, 0
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self.stopped: str | None = None  # the stop record's reason, once closed early
        self.kept = False  # renamed into place (finished or stopped early)
        problem = header_problem(header)
        if problem:
            raise EdgeAEError(f"cannot write {self.path}: {problem}; resize the source")
        with self._writing():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.partial, "wb")
            write_header(self._file, header)
            self._file.flush()

    def write(self, payload: bytes) -> None:
        with self._writing():
            write_record(self._file, self.count, payload)
            self.count += 1
            self._file.flush()

    def close(self, stopped: str | None = None) -> None:
        """End the stream (or mark it stopped early, giving why) and rename it into place."""
        if self._file.closed:
            return
        with signals_held(), self._writing():
            try:
                if stopped is None:
                    write_end(self._file, self.count)
                else:
                    write_stop(self._file, self.count, stopped)
                self._file.close()
            except BaseException:
                self._file.close()
                self.partial.unlink(missing_ok=True)
                raise
            os.replace(self.partial, self.path)
            self.stopped, self.kept = stopped, True

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A full disk or a path that cannot be written is the user's to fix: one line, not a traceback."""
        try:
            yield
        except OSError as e:
            raise EdgeAEError(f"cannot write {self.path}: {e.strerror or e}; "
                              f"check the path and the free space") from None

    def __enter__(self) -> "BitstreamWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(None if exc is None else stop_reason(exc))


@dataclass
class LossReport:
    """What a reader found: intact records, damaged byte ranges, and records known or suspected lost."""

    intact: int = 0
    expected: int | None = None  # from the end or stop record; None when the file has neither
    last: int = -1  # sequence number of the last intact record
    lost: list[int] = field(default_factory=list)  # sequence numbers missing between/after intact records
    damaged: list[tuple[int, int, str]] = field(default_factory=list)  # (offset, bytes skipped, why)
    stopped: str | None = None  # the stop record's reason: the writer was stopped before the source ended

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.stopped is None and not self.lost and not self.damaged

    def lines(self) -> list[str]:
        """One line per problem (at most MAX_DAMAGE_LINES about damage), empty when the file was complete."""
        out = [f"skipped {n} damaged bytes at offset {off} ({why})" for off, n, why in self.damaged[:MAX_DAMAGE_LINES]]
        if len(self.damaged) > MAX_DAMAGE_LINES:
            rest = self.damaged[MAX_DAMAGE_LINES:]
            out.append(f"skipped {sum(n for _, n, _ in rest)} damaged bytes in {len(rest)} more places")
        if self.stopped is not None:
            out.append(f"the stream is incomplete: compression was {self.stopped} after {self.expected} frame(s)")
        if self.lost:
            out.append(f"lost {len(self.lost)} frame(s): {_ranges(self.lost)}")
        if self.expected is None:
            out.append(f"no end record: the file was cut short; frames after #{self.last} may be missing")
        return out


MAX_DAMAGE_LINES = 10


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7] → '#1-#3, #7'."""
    spans, start = [], numbers[0]
    for prev, cur in zip(numbers, numbers[1:] + [None]):
        if cur != prev + 1:
            spans.append(f"#{start}" if start == prev else f"#{start}-#{prev}")
            start = cur
    return ", ".join(spans)


class BitstreamReader:
    """Reads a whole .eae file; iterate (or call `records`) for (seq, payload) of every intact record, then
    read `.report`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise EdgeAEError(f"bitstream {self.path} not found; check the path")
        self._buf = self.path.read_bytes()
        self.header = read_header(self._buf, str(self.path))
        self.report = LossReport()
        # No writer fits more records than this in the file: a larger count or sequence number was crafted.
        self.max_records = max(0, len(self._buf) - HEADER_SIZE) // RECORD_OVERHEAD

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return self.records()

    def records(self, max_payload: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(seq, payload) of every intact record; payloads longer than `max_payload` count as damage."""
        buf, pos, next_seq = self._buf, HEADER_SIZE, 0
        self.report = report = LossReport()
        while pos < len(buf):
            if buf[pos:pos + 4] in (END_SYNC, STOP_SYNC):
                try:
                    if buf[pos:pos + 4] == END_SYNC:
                        report.expected = read_end(buf, pos)
                    else:
                        report.expected, report.stopped = read_stop(buf, pos)
                except ValueError as e:
                    pos = self._skip_damage(pos, str(e))
                    continue
                self._check_count(report.expected, "its end record counts")
                break
            try:
                seq, payload, after = read_record(buf, pos, max_payload)
            except ValueError as e:
                pos = self._skip_damage(pos, str(e))
                continue
            self._check_count(seq + 1, f"record at offset {pos} is numbered #{seq}: that makes")
            if seq < next_seq:  # a stale duplicate cannot come from our writer: treat it as damage
                pos = self._skip_damage(pos, f"out-of-order record #{seq}")
                continue
            report.lost.extend(range(next_seq, seq))
            report.intact, report.last, next_seq, pos = report.intact + 1, seq, seq + 1, after
            yield seq, payload
        if report.expected is not None:
            report.lost.extend(range(next_seq, report.expected))

    def _check_count(self, count: int, what: str) -> None:
        if count > self.max_records:
            raise EdgeAEError(f"{self.path} is not a usable .eae file: {what} {count} frames, more than its "
                              f"{len(self._buf)} bytes can hold; it is damaged or was not written by 'edgeae compress'")

    def _skip_damage(self, pos: int, why: str) -> int:
        """Record the damage at `pos` and return the next position that starts with a marker (or EOF)."""
        found = (self._buf.find(sync, pos + 1) for sync in (FRAME_SYNC, END_SYNC, STOP_SYNC))
        candidates = [i for i in found if i >= 0]
        resume = min(candidates, default=len(self._buf))
        self.report.damaged.append((pos, resume - pos, why))
        return resume
