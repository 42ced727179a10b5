"""Rate–distortion: the autoencoder's latent as a codec against JPEG and WebP at matched bits per pixel.

The latent rate is an estimate: a uniform quantiser (step q) and zlib on the int16 symbols, because
the bitstream module (issue 4A) is not in this edgeae yet. zlib is a weak entropy coder, so this
over-states the autoencoder's rate, and the report says so.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from benchmarks.context import Context
from benchmarks.metrics import psnr, ssim
from edgeae.runtime import Autoencoder

LATENT_STEPS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
QUALITIES = (5, 10, 20, 30, 50, 70, 85, 95)
RATE_METHOD = "uniform quantiser + zlib level 9 on int16 symbols (estimate; issue 4A's bitstream not merged)"


def latent_rate(latent: np.ndarray, step: float) -> tuple[np.ndarray, int]:
    """(dequantised latent, compressed size in bytes)."""
    symbols = np.round(latent / step).astype(np.int16)
    return symbols.astype(np.float32) * np.float32(step), len(zlib.compress(symbols.tobytes(), 9))


def _point(frames: list[np.ndarray], decoded: list[np.ndarray], nbytes: list[int], **extra) -> dict:
    pixels = sum(f.shape[0] * f.shape[1] for f in frames)
    return {**extra, "bpp": 8 * sum(nbytes) / pixels,
            "psnr_db": float(np.mean([psnr(f, d) for f, d in zip(frames, decoded)])),
            "ssim": float(np.mean([ssim(f, d) for f, d in zip(frames, decoded)]))}


def autoencoder_curve(ae: Autoencoder, frames: list[np.ndarray]) -> list[dict]:
    encoded = [ae.encode([f]) for f in frames]
    points = []
    for step in LATENT_STEPS:
        coded = [(latent_rate(z, step), size) for z, size in encoded]
        decoded = [ae.decode(z, size)[0] for (z, _), size in coded]
        points.append(_point(frames, decoded, [n for (_, n), _ in coded], step=step))
    return points


def opencv_curve(ext: str, flag: int, frames: list[np.ndarray]) -> list[dict]:
    points = []
    for quality in QUALITIES:
        buffers = [cv2.imencode(ext, f, [flag, quality])[1] for f in frames]
        decoded = [cv2.imdecode(b, cv2.IMREAD_COLOR) for b in buffers]
        points.append(_point(frames, decoded, [len(b) for b in buffers], quality=quality))
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
    with Autoencoder.load(ctx.runs["seed"], threads=ctx.threads) as ae:
        curves = {"autoencoder seed": autoencoder_curve(ae, frames)}
    curves["JPEG (OpenCV)"] = opencv_curve(".jpg", cv2.IMWRITE_JPEG_QUALITY, frames)
    curves["WebP (OpenCV)"] = opencv_curve(".webp", cv2.IMWRITE_WEBP_QUALITY, frames)
    matched = {f"{codec} {key}": at_matched_bpp(curves["autoencoder seed"], curves[codec], key)
               for codec in ("JPEG (OpenCV)", "WebP (OpenCV)") for key in ("psnr_db", "ssim")}
    return {"frames": len(frames), "frame_size": list(frames[0].shape[:2]), "rate_method": RATE_METHOD,
            "curves": curves, "matched_bpp": matched}
