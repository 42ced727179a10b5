import struct
import zlib

import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime.bitstream import (END_SYNC, FRAME_SYNC, HEADER_SIZE, MAGIC, BitstreamReader, BitstreamWriter,
                                      StreamHeader, read_header, write_header)

HEADER = StreamHeader(model_id=bytes(range(32)), frame_size=(37, 53), latent_shape=(96, 3, 4), bits=6, fps=29.97)


def write_stream(path, payloads, close=True):
    writer = BitstreamWriter(path, HEADER)
    for p in payloads:
        writer.write(p)
    if close:
        writer.close()
        return path
    writer._file.close()  # as if the process died: no end record, never renamed into place
    return writer.partial


def header_bytes(frame_size=(37, 53), latent=(96, 3, 4), fps=29.97) -> bytes:
    """A header packed by hand from write_header's documented layout, with its CRC recomputed."""
    body = struct.pack("<4sH32sIIHHHBBf", MAGIC, 1, bytes(32), *frame_size, *latent, 6, 1, fps)
    return body + struct.pack("<I", zlib.crc32(body))


def record_bytes(seq: int, payload: bytes) -> bytes:
    head = struct.pack("<II", seq, len(payload))
    return FRAME_SYNC + head + payload + struct.pack("<I", zlib.crc32(head + payload))


def end_bytes(count: int) -> bytes:
    return END_SYNC + struct.pack("<II", count, zlib.crc32(struct.pack("<I", count)))


PAYLOADS = [bytes([i]) * (50 + 10 * i) for i in range(6)]


def test_header_round_trips(tmp_path):
    with open(tmp_path / "h", "wb") as f:
        write_header(f, HEADER)
    data = (tmp_path / "h").read_bytes()
    assert len(data) == HEADER_SIZE and read_header(data) == HEADER


def test_damaged_header_is_refused(tmp_path):
    data = bytearray(write_stream(tmp_path / "a.eae", PAYLOADS).read_bytes())
    data[40] ^= 0xFF  # inside the frame height
    (tmp_path / "a.eae").write_bytes(bytes(data))
    with pytest.raises(EdgeAEError, match="header is damaged"):
        BitstreamReader(tmp_path / "a.eae")


def test_a_file_that_is_not_a_bitstream_is_refused(tmp_path):
    (tmp_path / "x.eae").write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(EdgeAEError, match="not an edgeae bitstream"):
        BitstreamReader(tmp_path / "x.eae")


def test_a_newer_version_is_refused_with_upgrade_hint(tmp_path):
    import struct
    import zlib

    body = bytearray(write_stream(tmp_path / "a.eae", []).read_bytes()[:HEADER_SIZE - 4])
    body[4:6] = struct.pack("<H", 2)
    with pytest.raises(EdgeAEError, match="upgrade edgeae"):
        read_header(bytes(body) + struct.pack("<I", zlib.crc32(body)))


def test_records_round_trip_and_report_complete(tmp_path):
    reader = BitstreamReader(write_stream(tmp_path / "a.eae", PAYLOADS))
    assert list(reader) == list(enumerate(PAYLOADS))
    assert reader.header == HEADER and reader.report.complete and reader.report.lines() == []


def test_truncated_bitstream_yields_intact_frames(tmp_path):
    data = write_stream(tmp_path / "a.eae", PAYLOADS).read_bytes()
    (tmp_path / "cut.eae").write_bytes(data[:len(data) - 100])  # cuts into record #5
    reader = BitstreamReader(tmp_path / "cut.eae")
    assert [seq for seq, _ in reader] == [0, 1, 2, 3, 4]
    assert not reader.report.complete
    assert any("frames after #4 may be missing" in line for line in reader.report.lines())


def test_damaged_record_is_skipped_and_later_records_still_read(tmp_path):
    data = bytearray(write_stream(tmp_path / "a.eae", PAYLOADS).read_bytes())
    data[data.index(bytes([2]) * 70) + 5] ^= 0x01  # one bit inside record #2's payload
    (tmp_path / "bad.eae").write_bytes(bytes(data))
    reader = BitstreamReader(tmp_path / "bad.eae")
    assert [seq for seq, _ in reader] == [0, 1, 3, 4, 5]
    assert reader.report.lost == [2] and reader.report.expected == 6
    assert "lost 1 frame(s): #2" in reader.report.lines()


def test_garbage_in_the_middle_is_resynchronised(tmp_path):
    data = write_stream(tmp_path / "a.eae", PAYLOADS).read_bytes()
    cut = data.index(bytes([3]) * 80)
    (tmp_path / "bad.eae").write_bytes(data[:cut] + b"\x00" * 33 + data[cut + 40:])
    reader = BitstreamReader(tmp_path / "bad.eae")
    assert [seq for seq, _ in reader] == [0, 1, 2, 4, 5]
    assert reader.report.lost == [3] and len(reader.report.damaged) == 1


def test_a_writer_that_died_leaves_a_readable_partial_file(tmp_path):
    reader = BitstreamReader(write_stream(tmp_path / "a.eae", PAYLOADS[:3], close=False))
    assert [p for _, p in reader] == PAYLOADS[:3]
    assert reader.report.expected is None and reader.report.lost == []
    assert reader.report.lines() == ["no end record: the file was cut short; frames after #2 may be missing"]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(EdgeAEError, match="not found"):
        BitstreamReader(tmp_path / "none.eae")


def test_magic_is_not_text():
    assert MAGIC[0] >= 0x80  # a text-mode transfer that mangles high bytes is caught at once


# A file written by the version-1 writer before stop records existed: header, records #0-#2, end record.
VERSION_1_FILE = bytes.fromhex(
    "894541450100000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f250000003500000060000300040006018f"
    "c2ef41d8806e8d8945414600000000050000000000000000cd03e345894541460100000006000000010101010101661ef4608945414602"
    "0000000700000002020202020202fc5b4c838945415a03000000f270f133")


def test_a_file_from_the_version_1_writer_still_reads_complete(tmp_path):
    (tmp_path / "old.eae").write_bytes(VERSION_1_FILE)
    reader = BitstreamReader(tmp_path / "old.eae")
    assert list(reader) == [(i, bytes([i]) * (5 + i)) for i in range(3)]
    assert reader.header == HEADER and reader.report.complete


def test_a_finished_stream_is_byte_for_byte_what_the_version_1_writer_wrote(tmp_path):
    assert write_stream(tmp_path / "a.eae", [bytes([i]) * (5 + i) for i in range(3)]).read_bytes() == VERSION_1_FILE


def test_the_stream_appears_under_its_name_only_when_closed(tmp_path):
    writer = BitstreamWriter(tmp_path / "a.eae", HEADER)
    writer.write(b"x" * 10)
    assert not (tmp_path / "a.eae").exists() and writer.partial.is_file()
    writer.close()
    assert (tmp_path / "a.eae").is_file() and not writer.partial.exists()


def test_a_writer_stopped_by_an_interrupt_keeps_its_frames_marked_stopped(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with BitstreamWriter(tmp_path / "a.eae", HEADER) as writer:
            for p in PAYLOADS[:3]:
                writer.write(p)
            raise KeyboardInterrupt("signal 15")
    reader = BitstreamReader(tmp_path / "a.eae")
    assert [p for _, p in reader] == PAYLOADS[:3] and not reader.report.complete
    assert reader.report.stopped == "interrupted (signal 15)" and reader.report.expected == 3
    assert reader.report.lines() == ["the stream is incomplete: compression was interrupted (signal 15) after 3 "
                                     "frame(s)"]
    assert writer.stopped == "interrupted (signal 15)" and not writer.partial.exists()


def test_a_writer_stopped_by_an_error_says_so(tmp_path):
    with pytest.raises(EdgeAEError):
        with BitstreamWriter(tmp_path / "a.eae", HEADER) as writer:
            writer.write(PAYLOADS[0])
            raise EdgeAEError("camera 0 went away")
    reader = BitstreamReader(tmp_path / "a.eae")
    assert [p for _, p in reader] == PAYLOADS[:1]
    assert reader.report.stopped == "stopped by an error (camera 0 went away)" and not reader.report.complete


def test_a_long_stop_reason_is_cut_to_255_bytes_of_utf8(tmp_path):
    writer = BitstreamWriter(tmp_path / "a.eae", HEADER)
    writer.close(stopped="é" * 200)
    reader = BitstreamReader(tmp_path / "a.eae")
    list(reader)
    assert reader.report.stopped == "é" * 127


def test_a_damaged_stop_record_leaves_the_file_cut_short(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with BitstreamWriter(tmp_path / "a.eae", HEADER) as writer:
            writer.write(PAYLOADS[0])
            raise KeyboardInterrupt
    data = bytearray((tmp_path / "a.eae").read_bytes())
    data[-6] ^= 0x01  # inside the reason
    (tmp_path / "a.eae").write_bytes(bytes(data))
    reader = BitstreamReader(tmp_path / "a.eae")
    assert [p for _, p in reader] == PAYLOADS[:1]
    assert reader.report.expected is None and reader.report.damaged[0][2] == "damaged stop record"


@pytest.mark.parametrize("fps", [float("inf"), float("nan"), -1.0, 1001.0])
def test_a_header_frame_rate_that_is_not_a_rate_is_refused(fps):
    with pytest.raises(EdgeAEError, match="frame rate"):
        read_header(header_bytes(fps=fps))


@pytest.mark.parametrize("size", [(0, 53), (8193, 64), (64, 8193), (8000, 8000)])
def test_a_header_frame_size_beyond_the_format_is_refused(size):
    with pytest.raises(EdgeAEError, match="frame size"):
        read_header(header_bytes(frame_size=size))


def test_a_header_latent_larger_than_its_frame_is_refused():
    with pytest.raises(EdgeAEError, match="does not fit"):
        read_header(header_bytes(latent=(96, 1000, 1000)))


def test_the_writer_refuses_frames_larger_than_the_format_before_creating_a_file(tmp_path):
    from dataclasses import replace

    with pytest.raises(EdgeAEError, match="frame size 9000x9000"):
        BitstreamWriter(tmp_path / "a.eae", replace(HEADER, frame_size=(9000, 9000)))
    assert list(tmp_path.iterdir()) == []


def test_an_end_record_counting_more_frames_than_the_file_holds_is_refused(tmp_path):
    (tmp_path / "a.eae").write_bytes(header_bytes() + record_bytes(0, b"x" * 9) + end_bytes(10_000))
    with pytest.raises(EdgeAEError, match="end record counts 10000 frames, more than its 99 bytes can hold"):
        list(BitstreamReader(tmp_path / "a.eae"))


def test_a_record_numbered_beyond_what_the_file_holds_is_refused(tmp_path):
    (tmp_path / "a.eae").write_bytes(header_bytes() + record_bytes(0xFFFFFFFE, b"x" * 9) + end_bytes(1))
    with pytest.raises(EdgeAEError, match="numbered #4294967294"):
        list(BitstreamReader(tmp_path / "a.eae"))


def test_a_record_longer_than_a_payload_can_be_is_skipped_unread(tmp_path):
    reader = BitstreamReader(write_stream(tmp_path / "a.eae", PAYLOADS))
    assert [seq for seq, _ in reader.records(max_payload=80)] == [0, 1, 2, 3]
    assert reader.report.lost == [4, 5] and "more than a frame's payload can be" in reader.report.damaged[0][2]


def test_damage_is_summarised_after_ten_lines(tmp_path):
    data = write_stream(tmp_path / "a.eae", [b"y" * 40] * 30).read_bytes()
    data = data.replace(b"y" * 40, b"y" * 39 + b"z")  # every record's CRC fails
    (tmp_path / "bad.eae").write_bytes(data)
    reader = BitstreamReader(tmp_path / "bad.eae")
    assert list(reader) == [] and len(reader.report.damaged) == 30
    assert len(reader.report.lines()) == 12 and reader.report.lines()[10].endswith("in 20 more places")
