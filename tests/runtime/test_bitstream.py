import pytest

from edgeae.errors import EdgeAEError
from edgeae.runtime.bitstream import (HEADER_SIZE, MAGIC, BitstreamReader, BitstreamWriter, StreamHeader, read_header,
                                      write_header)

HEADER = StreamHeader(model_id=bytes(range(32)), frame_size=(37, 53), latent_shape=(96, 3, 4), bits=6, fps=29.97)


def write_stream(path, payloads, close=True):
    writer = BitstreamWriter(path, HEADER)
    for p in payloads:
        writer.write(p)
    if close:
        writer.close()
    else:
        writer._file.close()  # as if the process died: no end record
    return path


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


def test_interrupted_writer_leaves_a_readable_file(tmp_path):
    reader = BitstreamReader(write_stream(tmp_path / "a.eae", PAYLOADS[:3], close=False))
    assert [p for _, p in reader] == PAYLOADS[:3]
    assert reader.report.expected is None and reader.report.lost == []
    assert reader.report.lines() == ["no end record: the file was cut short; frames after #2 may be missing"]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(EdgeAEError, match="not found"):
        BitstreamReader(tmp_path / "none.eae")


def test_magic_is_not_text():
    assert MAGIC[0] >= 0x80  # a text-mode transfer that mangles high bytes is caught at once
