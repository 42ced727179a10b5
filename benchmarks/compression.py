"""Rate–distortion: the autoencoder's latent as a codec against JPEG and WebP at matched bits per pixel.

The autoencoder's rate is what edgeae's own latent codec writes per frame (runtime/latent_codec.py:
per-channel uniform quantiser at 2–8 bits, left-neighbour delta, Zstandard), the .eae container's
small header and record framing left out (as JPEG/WebP file headers are counted, this slightly
favours the autoencoder). Points, JPEG/WebP curves and BD-rate come from edgeae/runtime/evaluate.py, as
`edgeae eval --task compress` reports them; the frames are saved to RUNS/bench-data/compress for it (its
autoencoder rate counts the .eae container too: a few hundred bytes over all frames).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from benchmarks.context import Context
from edgeae.runtime import Autoencoder
from edgeae.runtime.evaluate import EvalConfig, bd_rates, opencv_curve, rd_point
from edgeae.runtime.latent_codec import LatentCodec
from edgeae.runtime.visualise import write_image

LATENT_BITS, QUALITIES = EvalConfig.bits, EvalConfig.qualities  # `edgeae eval --task compress`'s defaults
RATE_METHOD = ("edgeae latent codec (per-channel uniform quantiser, delta, Zstandard) at 2-8 bits per symbol; "
               "payload bytes per frame, container header left out")


def latent_rate(latent: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """1×C×h×w latent → (what the decoder gets back, payload bytes)."""
    payload, quantised = LatentCodec(latent.shape[1:], bits).encode(latent[0])
    return quantised.dequantise()[None], len(payload)


def autoencoder_curve(ae: Autoencoder, frames: list[np.ndarray]) -> list[dict]:
    encoded = [ae.encode([f]) for f in frames]
    points = []
    for bits in LATENT_BITS:
        coded = [(latent_rate(z, bits), size) for z, size in encoded]
        decoded = [ae.decode(z, size)[0] for (z, _), size in coded]
        points.append(rd_point(frames, decoded, sum(n for (_, n), _ in coded), bits=bits))
    return points


def at_matched_bpp(points: list[dict], reference: list[dict], key: str) -> list[dict]:
    """For each autoencoder point, the reference codec's `key` at the same bpp (linear in bpp)."""
    ref = sorted(reference, key=lambda p: p["bpp"])
    bpps, values = [p["bpp"] for p in ref], [p[key] for p in ref]
    rows = []
    for p in points:
        inside = bpps[0] <= p["bpp"] <= bpps[-1]
        other = float(np.interp(p["bpp"], bpps, values)) if inside else None
        rows.append({"bpp": p["bpp"], "autoencoder": p[key], "reference": other,
                     "delta": None if other is None else p[key] - other})
    return rows


def compression(ctx: Context) -> dict:
    frames = ctx.pick(ctx.heldout_frames, 2 if ctx.cfg.quick else 6)
    data = Path(ctx.cfg.runs_dir) / "bench-data" / "compress"
    shutil.rmtree(data, ignore_errors=True)  # the bench's own folder: last run's frames
    for i, frame in enumerate(frames):
        write_image(data / f"{i:03d}.png", frame)
    with Autoencoder.load(ctx.runs["seed"], threads=ctx.threads) as ae:
        curves = {"autoencoder seed": autoencoder_curve(ae, frames)}
    curves["JPEG (OpenCV)"] = opencv_curve(frames, "JPEG", QUALITIES)
    curves["WebP (OpenCV)"] = opencv_curve(frames, "WebP", QUALITIES)
    matched = {f"{codec} {key}": at_matched_bpp(curves["autoencoder seed"], curves[codec], key)
               for codec in ("JPEG (OpenCV)", "WebP (OpenCV)") for key in ("psnr_db", "ssim")}
    return {"frames": len(frames), "frame_size": list(frames[0].shape[:2]), "rate_method": RATE_METHOD,
            "curves": curves, "matched_bpp": matched, "bd_rate_psnr": bd_rates(curves, test="autoencoder seed"),
            "eval_command": f"edgeae eval {ctx.runs['seed']} --task compress --data {data}"}
