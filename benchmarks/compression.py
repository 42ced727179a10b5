"""Rate–distortion: the autoencoder's latent as a codec against JPEG and WebP at matched bits per pixel.

The autoencoder's rate is what edgeae's own latent codec writes per frame (runtime/latent_codec.py:
per-channel uniform quantiser at 2–8 bits, left-neighbour delta, Zstandard), the .eae container's
small header and record framing left out (as JPEG/WebP file headers are counted, this slightly
favours the autoencoder).
"""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.context import Context
from benchmarks.metrics import psnr, ssim
from edgeae.runtime import Autoencoder
from edgeae.runtime.latent_codec import LatentCodec

LATENT_BITS = (2, 3, 4, 5, 6, 8)
QUALITIES = (5, 10, 20, 30, 50, 70, 85, 95)
RATE_METHOD = ("edgeae latent codec (per-channel uniform quantiser, delta, Zstandard) at 2-8 bits per symbol; "
               "payload bytes per frame, container header left out")


def latent_rate(latent: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """1×C×h×w latent → (what the decoder gets back, payload bytes)."""
    payload, quantised = LatentCodec(latent.shape[1:], bits).encode(latent[0])
    return quantised.dequantise()[None], len(payload)


def _point(frames: list[np.ndarray], decoded: list[np.ndarray], nbytes: list[int], **extra) -> dict:
    pixels = sum(f.shape[0] * f.shape[1] for f in frames)
    return {**extra, "bpp": 8 * sum(nbytes) / pixels,
            "psnr_db": float(np.mean([psnr(f, d) for f, d in zip(frames, decoded)])),
            "ssim": float(np.mean([ssim(f, d) for f, d in zip(frames, decoded)]))}


def autoencoder_curve(ae: Autoencoder, frames: list[np.ndarray]) -> list[dict]:
    encoded = [ae.encode([f]) for f in frames]
    points = []
    for bits in LATENT_BITS:
        coded = [(latent_rate(z, bits), size) for z, size in encoded]
        decoded = [ae.decode(z, size)[0] for (z, _), size in coded]
        points.append(_point(frames, decoded, [n for (_, n), _ in coded], bits=bits))
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
