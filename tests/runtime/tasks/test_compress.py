"""compress/decompress on small synthetic frames with the tiny trained model."""

import json
import logging
import shutil

import cv2
import numpy as np
import pytest

from edgeae.cli import main
from edgeae.errors import EdgeAEError
from edgeae.runtime import Autoencoder
from edgeae.runtime.bitstream import BitstreamReader, BitstreamWriter
from edgeae.runtime.latent_codec import LatentCodec, quantise
from edgeae.runtime.quality import psnr, ssim
from edgeae.runtime.sources import iter_frames
from edgeae.runtime.tasks.compress import (CompressConfig, DecompressConfig, compress, compress_frames, decompress,
                                           decompress_payloads, model_id)


@pytest.fixture(scope="module")
def ae(trained_run):
    with Autoencoder.load(trained_run) as model:
        yield model


@pytest.fixture(scope="module")
def frames(synthetic_video):
    return list(iter_frames(synthetic_video, limit=6))


@pytest.fixture(scope="module")
def stream(trained_run, synthetic_video, tmp_path_factory):
    out = tmp_path_factory.mktemp("eae") / "square.eae"
    stats = compress(CompressConfig(str(synthetic_video), str(out), str(trained_run), bits=6, limit=6))
    return out, stats


def test_compressed_symbols_decode_bit_exact(ae, frames):
    payloads, _ = compress_frames(ae, frames, bits=8)
    latent, _ = ae.encode(frames)
    codec = LatentCodec(latent.shape[1:], 8)
    for z, payload in zip(latent, payloads):
        assert np.array_equal(codec.decode(payload).symbols, quantise(z, 8).symbols)


def test_decoding_the_same_payloads_twice_gives_identical_frames(ae, frames, stream):
    header = BitstreamReader(stream[0]).header
    payloads = [p for _, p in BitstreamReader(stream[0])]
    first, second = decompress_payloads(ae, header, payloads), decompress_payloads(ae, header, payloads)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_stats_report_the_file_size_and_bpp(stream):
    out, stats = stream
    assert stats["frames"] == 6 and stats["bytes"] == out.stat().st_size
    assert stats["bpp"] == pytest.approx(out.stat().st_size * 8 / (6 * 64 * 96))
    assert json.loads((out.parent / "square.eae.json").read_text())["stats"] == stats


def test_reported_psnr_and_ssim_are_those_of_the_decompressed_frames(stream, frames, trained_run, tmp_path):
    decompress(DecompressConfig(str(stream[0]), str(tmp_path / "out"), str(trained_run)))
    decoded = [cv2.imread(str(p)) for p in sorted((tmp_path / "out").iterdir())]
    assert stream[1]["psnr"] == pytest.approx(np.mean([psnr(a, b) for a, b in zip(frames, decoded)]), abs=1e-3)
    assert stream[1]["ssim"] == pytest.approx(np.mean([ssim(a, b) for a, b in zip(frames, decoded)]), abs=1e-4)


def test_eight_bit_quantisation_costs_little_psnr(ae, frames):
    _, stats = compress_frames(ae, frames, bits=8)
    unquantised = np.mean([psnr(a, b) for a, b in zip(frames, ae.reconstruct(frames))])
    assert abs(stats["psnr"] - unquantised) < 0.5


def test_fewer_bits_give_fewer_bytes(ae, frames):
    sizes = [compress_frames(ae, frames, bits=b)[1]["bytes"] for b in (2, 8)]
    assert sizes[0] < sizes[1]


def test_decompress_writes_a_folder_with_every_frame(stream, trained_run, tmp_path):
    result = decompress(DecompressConfig(str(stream[0]), str(tmp_path / "out"), str(trained_run)))
    assert result["complete"] and result["frames"] == 6
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [f"frame_{i:06d}.png" for i in range(6)]
    assert cv2.imread(str(tmp_path / "out" / written[0])).shape == (64, 96, 3)


def test_decompress_writes_a_video(stream, trained_run, tmp_path):
    decompress(DecompressConfig(str(stream[0]), str(tmp_path / "out.avi"), str(trained_run)))
    assert len(list(iter_frames(tmp_path / "out.avi"))) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["out.avi"]  # the temp file was renamed away


def test_many_frames_into_one_image_is_refused(stream, trained_run, tmp_path):
    with pytest.raises(EdgeAEError, match="holds 6 frames"):
        decompress(DecompressConfig(str(stream[0]), str(tmp_path / "one.png"), str(trained_run)))


def test_a_bitstream_from_another_model_is_refused(stream, trained_run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(trained_run, other)
    with open(other / "decoder.onnx", "ab") as f:  # any change to the files is another model id
        f.write(b"\x00")
    assert model_id(other) != model_id(trained_run)
    assert main(["decompress", str(stream[0]), str(tmp_path / "x"), "--model", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "was compressed with model" in err
    assert not (tmp_path / "x").exists()


def test_a_frame_whose_size_changes_is_skipped_with_a_warning(ae, frames, caplog):
    odd = frames[:2] + [np.zeros((32, 48, 3), np.uint8)] + frames[2:4]
    with caplog.at_level(logging.WARNING, logger="edgeae.compress"):
        payloads, stats = compress_frames(ae, odd, bits=8)
    assert len(payloads) == 4 and stats["frames"] == 4 and stats["skipped"] == 1
    assert "skipped source frame 2: 48x32 differs from the stream's 96x64" in caplog.text


def test_grayscale_frames_are_compressed_as_bgr(ae, frames, trained_run, tmp_path):
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames[:2]]
    payloads, stats = compress_frames(ae, gray, bits=8)
    assert stats["frames"] == 2
    cv2.imwrite(str(tmp_path / "gray.png"), gray[0])
    assert main(["compress", str(tmp_path / "gray.png"), str(tmp_path / "g.eae"), "--model", str(trained_run)]) == 0
    assert main(["decompress", str(tmp_path / "g.eae"), str(tmp_path / "g.png"), "--model", str(trained_run)]) == 0
    assert cv2.imread(str(tmp_path / "g.png"), cv2.IMREAD_UNCHANGED).shape == (64, 96, 3)


def test_cli_prints_bpp_psnr_and_ssim(synthetic_video, trained_run, tmp_path, capsys):
    argv = ["compress", str(synthetic_video), str(tmp_path / "a.eae"), "--model", str(trained_run), "--limit", "2"]
    assert main(argv + ["--bits", "4"]) == 0
    out = capsys.readouterr().out
    assert "2 frames" in out and "bits per pixel" in out and "PSNR" in out and "SSIM" in out


def test_no_quality_writes_the_same_bitstream_without_decoding(stream, synthetic_video, trained_run, tmp_path, capsys):
    argv = ["compress", str(synthetic_video), str(tmp_path / "q.eae"), "--model", str(trained_run), "--limit", "6",
            "--bits", "6", "--no-quality"]
    assert main(argv) == 0
    assert "quality not measured" in capsys.readouterr().out
    assert (tmp_path / "q.eae").read_bytes() == stream[0].read_bytes()


def test_an_interrupted_compress_leaves_a_readable_file(synthetic_video, trained_run, tmp_path, monkeypatch):
    from edgeae.runtime.tasks.compress import FrameCompressor

    real_encode, calls = FrameCompressor.encode_batch, []

    def encode_then_interrupt(self, frames):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_encode(self, frames)

    monkeypatch.setattr(FrameCompressor, "encode_batch", encode_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        compress(CompressConfig(str(synthetic_video), str(tmp_path / "i.eae"), str(trained_run), batch_size=2))
    reader = BitstreamReader(tmp_path / "i.eae")
    assert [seq for seq, _ in reader] == [0, 1, 2, 3] and reader.report.complete


def test_a_bit_depth_out_of_range_is_one_line(synthetic_video, trained_run, tmp_path, capsys):
    argv = ["compress", str(synthetic_video), str(tmp_path / "a.eae"), "--model", str(trained_run), "--bits", "20"]
    assert main(argv) == 2
    assert "bit depth 20 is out of range" in capsys.readouterr().err
    assert not (tmp_path / "a.eae").exists()


def test_damaged_stream_decompresses_intact_frames_and_exits_1(stream, trained_run, tmp_path, capsys):
    data = stream[0].read_bytes()
    (tmp_path / "cut.eae").write_bytes(data[:len(data) * 2 // 3])
    assert main(["decompress", str(tmp_path / "cut.eae"), str(tmp_path / "out"), "--model", str(trained_run)]) == 1
    err = capsys.readouterr().err
    assert "may be missing" in err and "Traceback" not in err
    assert len(list((tmp_path / "out").iterdir())) >= 3


def test_a_stream_without_intact_frames_is_one_line(stream, trained_run, tmp_path, capsys):
    data = stream[0].read_bytes()
    (tmp_path / "head.eae").write_bytes(data[:70])
    assert main(["decompress", str(tmp_path / "head.eae"), str(tmp_path / "out"), "--model", str(trained_run)]) == 2
    assert "holds no intact frame" in capsys.readouterr().err


# Integration on the real footage.

VTEST_FRAMES = 20


@pytest.fixture(scope="module")
def vtest_stream(footage, trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("vtest") / "vtest.eae"
    argv = ["compress", str(footage / "vtest.avi"), str(out), "--model", str(trained_run), "--limit", str(VTEST_FRAMES)]
    assert main(argv) == 0
    return out


@pytest.mark.footage
def test_vtest_round_trips_every_frame_with_bit_exact_latent(vtest_stream, footage, ae, trained_run, tmp_path):
    frames = list(iter_frames(footage / "vtest.avi", limit=VTEST_FRAMES))
    reader = BitstreamReader(vtest_stream)
    codec = LatentCodec(reader.header.latent_shape, reader.header.bits)
    sent = [quantise(z, 8).symbols for start in range(0, VTEST_FRAMES, 4) for z in ae.encode(frames[start:start + 4])[0]]
    received = [codec.decode(p).symbols for _, p in reader]
    assert len(received) == VTEST_FRAMES and all(np.array_equal(a, b) for a, b in zip(sent, received))
    assert main(["decompress", str(vtest_stream), str(tmp_path / "out"), "--model", str(trained_run)]) == 0
    assert len(list((tmp_path / "out").iterdir())) == VTEST_FRAMES


@pytest.mark.footage
def test_vtest_compress_reports_bpp_and_psnr(vtest_stream):
    stats = json.loads(vtest_stream.with_name("vtest.eae.json").read_text())["stats"]
    assert stats["frames"] == VTEST_FRAMES and stats["frame_size"] == [576, 768]
    assert 0 < stats["bpp"] < 8 and stats["psnr"] > 5 and 0 < stats["ssim"] <= 1


@pytest.mark.footage
def test_truncated_vtest_stream_yields_intact_frames_and_names_the_loss(vtest_stream, trained_run, tmp_path, capsys):
    data = vtest_stream.read_bytes()
    (tmp_path / "cut.eae").write_bytes(data[:len(data) // 2])
    assert main(["decompress", str(tmp_path / "cut.eae"), str(tmp_path / "out"), "--model", str(trained_run)]) == 1
    err = capsys.readouterr().err
    intact = [p for _, p in BitstreamReader(tmp_path / "cut.eae")]
    assert len(list((tmp_path / "out").iterdir())) == len(intact) >= VTEST_FRAMES // 2 - 1
    assert f"frames after #{len(intact) - 1} may be missing" in err and "Traceback" not in err


@pytest.mark.footage
def test_vtest_stream_with_another_model_id_is_refused(vtest_stream, trained_run, tmp_path, capsys):
    from dataclasses import replace

    reader = BitstreamReader(vtest_stream)
    with BitstreamWriter(tmp_path / "other.eae", replace(reader.header, model_id=bytes(32))) as writer:
        for _, payload in reader:
            writer.write(payload)
    assert main(["decompress", str(tmp_path / "other.eae"), str(tmp_path / "out"), "--model", str(trained_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "was compressed with model 000000000000" in err


@pytest.mark.footage
def test_damaged_megamind_video_compresses_what_is_readable(footage, trained_run, tmp_path, capsys):
    argv = ["compress", str(footage / "Megamind_bugy.avi"), str(tmp_path / "m.eae"), "--model", str(trained_run),
            "--limit", "6"]
    assert main(argv) == 0
    assert "6 frames" in capsys.readouterr().out
    assert main(["decompress", str(tmp_path / "m.eae"), str(tmp_path / "m.avi"), "--model", str(trained_run)]) == 0
    assert [f.shape for f in iter_frames(tmp_path / "m.avi")] == [(528, 720, 3)] * 6


@pytest.mark.footage
def test_real_folder_with_grayscale_and_a_size_change_skips_only_the_odd_frame(footage, trained_run, tmp_path, capsys,
                                                                              caplog):
    vtest = list(iter_frames(footage / "vtest.avi", limit=3))
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a0.png"), vtest[0])
    cv2.imwrite(str(folder / "a1.png"), cv2.cvtColor(vtest[1], cv2.COLOR_BGR2GRAY))
    shutil.copy(footage / "HappyFish.jpg", folder / "a2.jpg")  # another size
    cv2.imwrite(str(folder / "a3.png"), vtest[2])
    with caplog.at_level(logging.WARNING, logger="edgeae.compress"):
        assert main(["compress", str(folder), str(tmp_path / "f.eae"), "--model", str(trained_run)]) == 0
    out = capsys.readouterr().out
    assert "3 frames" in out and "skipped 1 frame(s) of another size" in out
    assert "skipped source frame 2: 259x194 differs" in caplog.text
