"""The per-step loop: buffers, batching across sources, size changes, per-stage timing; `edgeae run` as a
command: inputs never overwritten, counts checked, unwritable outputs fail, the log a journal can read."""

import json
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edgeae.cli import main
from edgeae.errors import EdgeAEError
from edgeae.runtime.pipeline import STAGES, BatchBuffers, Pipeline, RunConfig, format_profile, run
from edgeae.runtime.preprocess import frames_to_batch
from edgeae.runtime.sinks import SinkSet
from edgeae.runtime.sources import FrameSource
from edgeae.runtime.tasks.denoise import DenoiseTask


def test_batch_buffers_match_frames_to_batch_and_are_reused():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (50, 70, 3), np.uint8) for _ in range(2)]
    buffers = BatchBuffers(16)
    first = buffers.fill(frames)
    np.testing.assert_allclose(first, frames_to_batch(frames, 16)[0], atol=1e-7)
    assert buffers.fill(frames[::-1]) is first


class CountingModel:
    """Identity 'autoencoder' that counts inference calls and batch sizes."""

    info = SimpleNamespace(downsample=16)

    def __init__(self):
        self.batches = []

    def reconstruct_batch(self, batch):
        self.batches.append(len(batch))
        return batch

    def describe(self):
        return "identity"


def test_several_sources_share_one_inference_call_per_step(synthetic_video, tmp_path):
    model = CountingModel()
    sources = [FrameSource(str(synthetic_video), "a").start(), FrameSource(str(synthetic_video), "b").start()]
    sinks = SinkSet(["a", "b"], out_video=str(tmp_path / "out.avi"), events=str(tmp_path / "e.jsonl"))
    try:
        summary = Pipeline(model, sources, DenoiseTask("reconstruct"), sinks, progress=False).run()
    finally:
        sinks.close()
        for s in sources:
            s.close()
    assert model.batches == [2] * 24 and summary["frames"] == 48 and summary["steps"] == 24
    assert (tmp_path / "out_0.avi").is_file() and (tmp_path / "out_1.avi").is_file()
    assert set(summary["stage_ms"]) == set(STAGES)
    assert all(name in format_profile(summary) for name in STAGES)


def test_frame_size_change_mid_stream_is_logged_and_processed(trained_run, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    sizes = [(48, 64), (48, 64), (40, 72), (40, 72)]
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((h, w), 30 * i, np.uint8))  # grayscale, too
    events = tmp_path / "events.jsonl"
    summary = run(RunConfig(run=str(trained_run), task="reconstruct", sources=(str(folder),), events=str(events),
                            out_video=str(tmp_path / "out.avi"), threads=1), progress=False)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    change = next(e for e in lines if e["event"] == "size_change")
    assert change["from"] == [48, 64] and change["to"] == [40, 72] and change["frame"] == 2
    assert summary["frames"] == 4 and sum(e["event"] == "frame" for e in lines) == 4


def test_end_event_is_the_last_line_after_every_frame(trained_run, synthetic_video, tmp_path):
    events = tmp_path / "events.jsonl"
    run(RunConfig(run=str(trained_run), task="reconstruct", sources=(str(synthetic_video),), events=str(events),
                  out_video=str(tmp_path / "out.avi"), threads=1), progress=False)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    kinds = [e["event"] for e in lines]
    assert kinds == ["frame"] * 24 + ["source_end", "end"]  # 24 frames, 8 of them in flight when capture ended
    assert lines[-1]["reason"] == "complete" and lines[-1]["frames"] == 24


@pytest.fixture
def clip(synthetic_video, tmp_path):
    """A private copy of the synthetic video: a test may try to overwrite it."""
    return shutil.copy(synthetic_video, tmp_path / "clip.avi")


def overwrite_cases(tmp_path, clip):
    (tmp_path / "link.avi").symlink_to(clip)
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), np.zeros((32, 32, 3), np.uint8))
    shutil.copy(clip, tmp_path / "out_1.avi")
    return {
        "video over source": (["--source", clip, "--out-video", clip], clip),
        "through a symlink": (["--source", tmp_path / "link.avi", "--out-video", clip], clip),
        "events over source": (["--source", clip, "--events", clip], clip),
        "frames over source folder": (["--source", folder, "--out-frames", folder], folder / "0.png"),
        "per-source name": (["--source", clip, "--source", tmp_path / "out_1.avi", "--out-video", tmp_path / "out.avi"],
                            tmp_path / "out_1.avi"),
    }


@pytest.mark.parametrize("case", ["video over source", "through a symlink", "events over source",
                                  "frames over source folder", "per-source name"])
def test_output_that_is_an_input_is_refused_and_the_input_kept(trained_run, clip, tmp_path, capsys, case):
    argv, kept = overwrite_cases(tmp_path, clip)[case]
    before = kept.read_bytes()
    assert main(["run", str(trained_run), "--task", "reconstruct", *map(str, argv)]) == 2
    assert "would destroy the input" in capsys.readouterr().err
    assert kept.read_bytes() == before


@pytest.mark.parametrize("option, value", [("--threads", "100000"), ("--threads", "-1"), ("--max-frames", "-1"),
                                           ("--reconnect-timeout", "-1"), ("--reconnect-timeout", "nan")])
def test_out_of_range_counts_are_usage_errors(option, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "no_such_run", "--source", "clip.avi", option, value])
    assert exit_.value.code == 2 and "out of range" in capsys.readouterr().err


def test_run_whose_only_output_cannot_be_written_fails(trained_run, clip, tmp_path, capsys):
    (tmp_path / "file").write_text("a file, not a folder")
    assert main(["run", str(trained_run), "--task", "reconstruct", "--source", str(clip),
                 "--out-video", str(tmp_path / "file" / "out.avi")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out.avi" in err[0] and "Traceback" not in err[0]


def test_log_is_one_json_line_per_event_without_progress_bar_off_a_terminal(trained_run, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((32, 48, 3), 50 * i, np.uint8))
    (folder / "1.png").write_bytes(b"not a png")  # a `skip` event, worth a log line
    assert main(["run", str(trained_run), "--task", "reconstruct", "--source", str(folder), "--threads", "1",
                 "--events", str(tmp_path / "e.jsonl")]) == 0
    err = capsys.readouterr().err  # captured: not a terminal
    lines = [json.loads(line) for line in err.splitlines()]  # every line is JSON: no bar, no dict text
    assert [e.get("event") for e in lines] == ["skip", "source_end", "end"]
    assert lines[0]["level"] == "info" and lines[0]["frame"] == 1 and lines[-1]["reason"] == "complete"


def test_inference_steps_ahead_write_what_one_step_at_a_time_writes(trained_run, synthetic_video, tmp_path):
    from edgeae.runtime.autoencoder import Autoencoder
    from edgeae.runtime.tasks.anomaly import AnomalyConfig, AnomalyTask

    written = {}
    for overlap, streams in ((False, 1), (True, 1), (True, 2)):
        out = tmp_path / f"overlap-{overlap}-{streams}"
        sources = [FrameSource(str(synthetic_video), "a").start(), FrameSource(str(synthetic_video), "b").start()]
        sinks = SinkSet(["a", "b"], out_frames=str(out / "frames"), events=str(out / "events.jsonl"))
        try:
            with Autoencoder.load(trained_run, threads=2, streams=streams) as ae:
                # anomaly: its post-processing reads the step's input batch again, after later steps have been filled
                task = AnomalyTask(AnomalyConfig(threshold=1e-3, reference=""))
                summary = Pipeline(ae, sources, task, sinks, progress=False, overlap=overlap).run()
        finally:
            sinks.close()
            for s in sources:
                s.close()
        assert summary["overlap"] is overlap and summary["steps_ahead"] == (streams if overlap else 0)
        assert summary["frames"] == 48
        events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
        frames = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "frames").rglob("*.jpg"))}
        # scores rounded: two 1-thread calls and one 2-thread call may sum in another order (last bits)
        written[overlap, streams] = ([{k: round(v, 4) if k == "score" else v for k, v in e.items()
                                       if k not in ("time", "seconds")} for e in events], frames)
    assert len(written[True, 2][1]) == 48
    # Same frames (each step's batch buffer is kept until it is post-processed), same events in order.
    assert written[True, 1] == written[False, 1]
    assert written[True, 2][0] == written[False, 1][0] and written[True, 2][1].keys() == written[False, 1][1].keys()


def test_a_size_change_is_logged_just_before_the_first_frame_of_the_new_size_with_steps_ahead(trained_run, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, (h, w) in enumerate([(48, 64)] * 3 + [(40, 72)] * 3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((h, w, 3), 30 * i, np.uint8))
    events = tmp_path / "events.jsonl"
    summary = run(RunConfig(run=str(trained_run), task="reconstruct", sources=(str(folder),), events=str(events),
                            threads=2, streams=2), progress=False)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    order = [(e["event"], e.get("frame")) for e in lines if e["event"] in ("frame", "size_change")]
    assert summary["steps_ahead"] == 2
    assert order == [("frame", 0), ("frame", 1), ("frame", 2), ("size_change", 3), ("frame", 3), ("frame", 4), ("frame", 5)]


def test_streams_are_refused_for_a_triton_client_and_out_of_range():
    from edgeae.serve.client import RemoteRunConfig

    with pytest.raises(EdgeAEError, match="--streams 2 .* leave it out"):
        RemoteRunConfig(run="r", sources=("v.avi",), backend="triton", streams=2).validate()
    with pytest.raises(EdgeAEError, match="--streams must be 0"):
        RunConfig(run="r", sources=("v.avi",), streams=-1).validate()
