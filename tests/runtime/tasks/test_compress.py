"""compress/decompress on small synthetic frames with the tiny trained model."""

import json
import logging
import select
import shutil
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgeae.cli import main
from edgeae.errors import EdgeAEError
from edgeae.outputs import OutputLock
from edgeae.runtime import Autoencoder
from edgeae.runtime.bitstream import BitstreamReader, BitstreamWriter
from edgeae.runtime.latent_codec import LatentCodec, quantise
from edgeae.runtime.quality import psnr, ssim
from edgeae.runtime.sources import iter_frames
from edgeae.runtime.tasks.compress import (CompressConfig, DecompressConfig, FrameCompressor, VideoSink, compress,
                                           compress_frames, decompress, decompress_payloads, model_id,
                                           stream_header)


def written(folder):
    """The files a verb wrote into `folder`, by name: hidden lock and partial files left out."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


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


def stream_of(video, run, folder, frames=2):
    """compress the first `frames` frames of `video` to folder/s.eae."""
    compress(CompressConfig(str(video), str(folder / "s.eae"), str(run), limit=frames, measure=False))
    return folder / "s.eae"


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
    decoded = [cv2.imread(str(tmp_path / "out" / name)) for name in written(tmp_path / "out")]
    assert stream[1]["psnr"] == pytest.approx(np.mean([psnr(a, b) for a, b in zip(frames, decoded)]), abs=1e-3)
    assert stream[1]["ssim"] == pytest.approx(np.mean([ssim(a, b) for a, b in zip(frames, decoded)]), abs=1e-4)


@pytest.mark.parametrize("fps", [90000.0, float("nan"), -1.0])
def test_a_frame_rate_the_container_got_wrong_is_stored_as_unknown(ae, fps):
    assert stream_header(ae, (64, 96), 8, bytes(32), fps).fps == 0.0


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
    assert written(tmp_path / "out") == [f"frame_{i:06d}.png" for i in range(6)]
    assert cv2.imread(str(tmp_path / "out" / "frame_000000.png")).shape == (64, 96, 3)


def test_decompress_writes_a_video(stream, trained_run, tmp_path):
    decompress(DecompressConfig(str(stream[0]), str(tmp_path / "out.avi"), str(trained_run)))
    assert len(list(iter_frames(tmp_path / "out.avi"))) == 6
    assert written(tmp_path) == ["out.avi"] and not (tmp_path / ".out.partial.avi").exists()


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


def test_an_interrupted_compress_keeps_its_frames_marked_interrupted(synthetic_video, trained_run, tmp_path,
                                                                    monkeypatch):
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
    assert [seq for seq, _ in reader] == [0, 1, 2, 3] and not reader.report.complete
    assert reader.report.stopped == "interrupted (Ctrl-C)" and reader.report.expected == 4
    saved = json.loads((tmp_path / "i.eae.json").read_text())
    assert saved["stopped"] == "interrupted (Ctrl-C)" and saved["stats"]["frames"] == 4
    assert saved["stats"]["bytes"] == (tmp_path / "i.eae").stat().st_size
    assert written(tmp_path) == ["i.eae", "i.eae.json"]


def test_decompressing_an_interrupted_stream_says_so_and_exits_1(synthetic_video, trained_run, tmp_path, capsys):
    source = BitstreamReader(stream_of(synthetic_video, trained_run, tmp_path))
    with pytest.raises(KeyboardInterrupt), BitstreamWriter(tmp_path / "i.eae", source.header) as writer:
        for _, payload in source:
            writer.write(payload)
        raise KeyboardInterrupt("signal 15")
    assert main(["decompress", str(tmp_path / "i.eae"), str(tmp_path / "out"), "--model", str(trained_run)]) == 1
    err = capsys.readouterr().err
    assert "compression was interrupted (signal 15) after 2 frame(s)" in err and "Traceback" not in err
    assert written(tmp_path / "out") == ["frame_000000.png", "frame_000001.png"]


def test_compress_writes_a_partial_file_renamed_when_finished(synthetic_video, trained_run, tmp_path, monkeypatch):
    real_encode, seen = FrameCompressor.encode_batch, []

    def encode_and_look(self, frames):
        seen.append(((tmp_path / "a.eae").exists(), (tmp_path / ".a.eae.partial").exists()))
        return real_encode(self, frames)

    monkeypatch.setattr(FrameCompressor, "encode_batch", encode_and_look)
    compress(CompressConfig(str(synthetic_video), str(tmp_path / "a.eae"), str(trained_run), limit=4, batch_size=2))
    assert seen[1] == (False, True)
    assert written(tmp_path) == ["a.eae", "a.eae.json"] and not (tmp_path / ".a.eae.partial").exists()


@pytest.mark.parametrize("link", [False, True])
def test_compress_refuses_to_write_over_its_source(synthetic_video, trained_run, tmp_path, capsys, link):
    source = tmp_path / "a.avi"
    shutil.copy(synthetic_video, source)
    out = source
    if link:
        out = tmp_path / "link.avi"
        out.symlink_to(source)
    assert main(["compress", str(source), str(out), "--model", str(trained_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is the source: writing it would destroy the input" in err
    assert source.read_bytes() == synthetic_video.read_bytes()


def test_compress_refuses_to_write_over_a_model_file(synthetic_video, trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = (run / "decoder.onnx").read_bytes()
    assert main(["compress", str(synthetic_video), str(run / "decoder.onnx"), "--model", str(run)]) == 2
    assert "is the model file decoder.onnx" in capsys.readouterr().err
    assert (run / "decoder.onnx").read_bytes() == before


def test_decompress_refuses_to_write_over_its_bitstream(stream, trained_run, tmp_path, capsys):
    bitstream = tmp_path / "s.avi"  # a bitstream named like a video: the output would replace it
    shutil.copy(stream[0], bitstream)
    assert main(["decompress", str(bitstream), str(bitstream), "--model", str(trained_run)]) == 2
    assert "is the bitstream: writing it would destroy the input" in capsys.readouterr().err
    assert bitstream.read_bytes() == stream[0].read_bytes()


@pytest.mark.parametrize("value", ["-1", "0", "257"])
def test_decompress_batch_size_out_of_range_is_a_usage_error(stream, trained_run, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        main(["decompress", str(stream[0]), str(tmp_path / "out"), "--model", str(trained_run), "--batch-size", value])
    assert exit_.value.code == 2 and "--batch-size" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", [["--limit", "-1"], ["--limit", "0"], ["--batch-size", "0"]])
def test_compress_counts_below_one_are_a_usage_error(synthetic_video, trained_run, tmp_path, capsys, option):
    with pytest.raises(SystemExit) as exit_:
        main(["compress", str(synthetic_video), str(tmp_path / "a.eae"), "--model", str(trained_run), *option])
    assert exit_.value.code == 2 and option[0] in capsys.readouterr().err
    assert not (tmp_path / "a.eae").exists()


@pytest.mark.parametrize("cfg", [dict(batch_size=0), dict(batch_size=-1), dict(batch_size=257)])
def test_decompress_config_refuses_a_batch_size_out_of_range(stream, trained_run, tmp_path, cfg):
    with pytest.raises(EdgeAEError, match="batch size"):
        decompress(DecompressConfig(str(stream[0]), str(tmp_path / "out"), str(trained_run), **cfg))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cfg, message", [(dict(limit=-1), "frame limit -1"), (dict(batch_size=0), "batch size 0"),
                                          (dict(batch_size=1000), "batch size 1000")])
def test_compress_config_refuses_counts_out_of_range(synthetic_video, trained_run, tmp_path, cfg, message):
    with pytest.raises(EdgeAEError, match=message):
        compress(CompressConfig(str(synthetic_video), str(tmp_path / "a.eae"), str(trained_run), **cfg))
    assert not (tmp_path / "a.eae").exists()


def test_a_second_writer_of_the_same_bitstream_is_refused(synthetic_video, trained_run, tmp_path):
    with OutputLock(tmp_path / "a.eae"):
        with pytest.raises(EdgeAEError, match="being written by another edgeae process"):
            compress(CompressConfig(str(synthetic_video), str(tmp_path / "a.eae"), str(trained_run), limit=2))
    assert written(tmp_path) == []


def test_a_second_writer_of_the_same_folder_is_refused(stream, trained_run, tmp_path):
    (tmp_path / "out").mkdir()
    with OutputLock(tmp_path / "out"):
        with pytest.raises(EdgeAEError, match="being written by another edgeae process"):
            decompress(DecompressConfig(str(stream[0]), str(tmp_path / "out"), str(trained_run)))
    assert written(tmp_path / "out") == []


def test_a_bitstream_that_cannot_be_written_is_one_line_and_exit_2(synthetic_video, trained_run, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert main(["compress", str(synthetic_video), str(tmp_path / "file" / "a.eae"), "--model", str(trained_run),
                 "--limit", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write" in err


def test_frames_that_cannot_be_written_are_one_line_and_exit_2(stream, trained_run, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert main(["decompress", str(stream[0]), str(tmp_path / "file" / "out"), "--model", str(trained_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write" in err


def test_a_video_sink_refuses_a_frame_of_another_size(tmp_path):
    with pytest.raises(EdgeAEError, match="frame #0 is 48x32, but video"):
        with VideoSink(str(tmp_path / "v.avi"), (64, 96), 10.0) as sink:
            sink.write(0, np.zeros((32, 48, 3), np.uint8))
    assert written(tmp_path) == []


# Signals: a real `edgeae` process, held at a known frame, sent SIGTERM (what systemd and `kill` send).

HOLD = """
import signal, sys
from edgeae.cli import main
from edgeae.runtime.tasks import compress as stage

cls, method, after = getattr(stage, sys.argv[1]), sys.argv[2], int(sys.argv[3])
real, calls = getattr(cls, method), []

def held(self, *args):
    real(self, *args)
    calls.append(1)
    if len(calls) == after:  # tell the test where we are, then wait for its signal
        print("ready", flush=True)
        signal.pause()

setattr(cls, method, held)
sys.exit(main(sys.argv[4:]))
"""


def run_until_sigterm(hold: list[str], argv: list[str]) -> subprocess.CompletedProcess:
    """Run `edgeae ARGV` in a subprocess held after `hold` = [class, method, count] calls; SIGTERM it there."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, *hold, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready and proc.stdout.readline() == "ready\n", proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigterm_mid_compress_keeps_the_frames_with_a_stop_record(synthetic_video, trained_run, tmp_path):
    out = tmp_path / "a.eae"
    argv = ["compress", str(synthetic_video), str(out), "--model", str(trained_run), "--batch-size", "2"]
    done = run_until_sigterm(["BitstreamWriter", "write", "3"], argv)
    assert done.returncode == 130 and "interrupted" in done.stderr and "Traceback" not in done.stderr
    reader = BitstreamReader(out)
    assert [seq for seq, _ in reader] == [0, 1, 2]
    assert reader.report.stopped == "interrupted (signal 15)" and reader.report.expected == 3
    assert written(tmp_path) == ["a.eae", "a.eae.json"]


def test_sigterm_mid_decompress_leaves_a_finalised_video(stream, trained_run, tmp_path):
    out = tmp_path / "out.avi"
    done = run_until_sigterm(["VideoSink", "write", "3"],
                             ["decompress", str(stream[0]), str(out), "--model", str(trained_run), "--batch-size", "2"])
    assert done.returncode == 130 and "Traceback" not in done.stderr
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    cap.release()
    assert len(list(iter_frames(out))) == 3 and written(tmp_path) == ["out.avi"]


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
    assert len(written(tmp_path / "out")) >= 3


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
    assert len(written(tmp_path / "out")) == VTEST_FRAMES


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
    assert len(written(tmp_path / "out")) == len(intact) >= VTEST_FRAMES // 2 - 1
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
def test_real_folder_with_grayscale_and_a_size_change_is_refused_before_anything_is_written(footage, trained_run,
                                                                                          tmp_path, capsys):
    vtest = list(iter_frames(footage / "vtest.avi", limit=3))
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a0.png"), vtest[0])
    cv2.imwrite(str(folder / "a1.png"), cv2.cvtColor(vtest[1], cv2.COLOR_BGR2GRAY))
    shutil.copy(footage / "HappyFish.jpg", folder / "a2.jpg")  # another size
    cv2.imwrite(str(folder / "a3.png"), vtest[2])
    assert main(["compress", str(folder), str(tmp_path / "f.eae"), "--model", str(trained_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a2.jpg is 259x194, but a0.png is 768x576: one .eae holds frames of one size" in err
    assert not (tmp_path / "f.eae").exists()


def test_a_folder_of_mixed_frame_sizes_is_an_error_naming_both_files(trained_run, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name, (h, w) in (("0.png", (64, 96)), ("1.png", (64, 96)), ("2.png", (32, 48))):
        cv2.imwrite(str(folder / name), np.full((h, w, 3), 90, np.uint8))
    assert main(["compress", str(folder), str(tmp_path / "f.eae"), "--model", str(trained_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2.png is 48x32, but 0.png is 96x64" in err, err
    assert written(tmp_path) == ["frames"]
    # --limit leaves the odd image out: then the folder is fine
    assert main(["compress", str(folder), str(tmp_path / "f.eae"), "--model", str(trained_run), "--limit", "2"]) == 0


def test_compress_warns_when_the_eae_is_larger_than_its_source(trained_run, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "flat.png"), np.full((64, 96, 3), 128, np.uint8))  # a few hundred bytes of PNG
    assert main(["compress", str(tmp_path / "flat.png"), str(tmp_path / "flat.eae"), "--model", str(trained_run)]) == 0
    err = capsys.readouterr().err
    source, eae = (tmp_path / "flat.png").stat().st_size, (tmp_path / "flat.eae").stat().st_size
    assert eae > source and f"is larger than its source ({source} bytes)" in err
    assert json.loads((tmp_path / "flat.eae.json").read_text())["stats"]["source_bytes"] == source


def test_compress_does_not_warn_when_the_eae_is_smaller(trained_run, synthetic_video, tmp_path, capsys):
    # an uncompressed video: any .eae is smaller
    frames = list(iter_frames(synthetic_video, limit=4))
    raw = tmp_path / "raw.avi"
    writer = cv2.VideoWriter(str(raw), cv2.VideoWriter_fourcc(*"IYUV"), 10, (96, 64))
    for frame in frames:
        writer.write(frame)
    writer.release()
    assert main(["compress", str(raw), str(tmp_path / "raw.eae"), "--model", str(trained_run)]) == 0
    assert "larger than its source" not in capsys.readouterr().err
