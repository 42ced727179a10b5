"""The per-step loop: buffers, batching across sources, size changes, per-stage timing."""

import json
from types import SimpleNamespace

import cv2
import numpy as np

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

    def encode_batch(self, batch):
        self.batches.append(len(batch))
        return batch

    def decode_batch(self, latent):
        return latent


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
