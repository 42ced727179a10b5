"""Pipeline frames per second on the footage, per task, with the time of each stage.

Stages: read (video decode), preprocess (BGR uint8 → float NCHW), encoder, decoder, postprocess
(back to BGR uint8 for reconstruct/denoise; error map and image score for anomaly).
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from benchmarks.anomaly import AutoencoderScorer, smooth
from benchmarks.context import Context
from benchmarks.models import DENOISE_VARIANT
from edgeae.runtime import Autoencoder
from edgeae.runtime.preprocess import batch_to_frames, frames_to_batch
from edgeae.runtime.sources import iter_video

STAGES = ("read", "preprocess", "encoder", "decoder", "postprocess")


def _run_task(ae: Autoencoder, source: str, limit: int, post) -> dict:
    totals: dict[str, float] = defaultdict(float)
    frames = 0
    t = time.perf_counter()
    for frame in iter_video(source, limit=limit):
        marks = [time.perf_counter()]  # since the previous frame finished: the video decoder's share
        batch, size = frames_to_batch([frame], ae.info.downsample)
        marks.append(time.perf_counter())
        latent = ae.encode_batch(batch)
        marks.append(time.perf_counter())
        out = ae.decode_batch(latent)
        marks.append(time.perf_counter())
        post(frame, out, size)
        marks.append(time.perf_counter())
        totals["read"] += marks[0] - t
        for stage, a, b in zip(STAGES[1:], marks[:-1], marks[1:]):
            totals[stage] += b - a
        frames += 1
        t = time.perf_counter()
    return {"frames": frames, "fps": frames / sum(totals.values()),
            "ms_per_frame": {s: 1000 * totals[s] / frames for s in STAGES}}


def pipeline(ctx: Context) -> dict:
    limit = 24 if ctx.cfg.quick else 200
    reconstruct = lambda frame, out, size: batch_to_frames(out, size)
    results = {}
    with Autoencoder.load(ctx.runs["seed"], threads=ctx.threads) as ae:
        results["reconstruct (seed)"] = _run_task(ae, ctx.cfg.footage, limit, reconstruct)
        scorer = AutoencoderScorer(ae, ctx.pick(ctx.calibration_frames, 8))
        results["anomaly (seed)"] = _run_task(ae, ctx.cfg.footage, limit, _anomaly_post(scorer))
    with Autoencoder.load(ctx.runs[f"denoise-{DENOISE_VARIANT}"], threads=ctx.threads) as ae:
        results[f"denoise ({DENOISE_VARIANT})"] = _run_task(ae, ctx.cfg.footage, limit, reconstruct)
    return {"source": ctx.cfg.footage, "backend": "onnxruntime-cpu fp32", "stages": list(STAGES), "tasks": results,
            "implementation": "benchmarks/pipeline.py (issue 4B's 'edgeae run' pipeline is not in this edgeae yet)"}


def _anomaly_post(scorer: AutoencoderScorer):
    def post(frame, out, size):
        recon = batch_to_frames(out, size)[0]
        error = np.abs(frame.astype(np.float32) - recon).mean(axis=2)
        z = (smooth(error) - scorer.mean) / scorer.std
        return float(z.max())
    return post
