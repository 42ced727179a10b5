"""Latent codec on real frames: size with and without the left-neighbour delta, and codec time per frame.

    PYTHONPATH=. .venv/bin/python benchmarks/latent_codec.py runs/demo data/opencv/vtest.avi --frames 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import zstandard

from edgeae.runtime import Autoencoder
from edgeae.runtime.latent_codec import ZSTD_LEVEL, LatentCodec, quantise
from edgeae.runtime.sources import iter_frames


def median_ms(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("source")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 6, 8])
    args = parser.parse_args()
    frames = list(iter_frames(args.source, limit=args.frames, stride=5))
    with Autoencoder.load(args.run) as ae:
        latent = np.concatenate([ae.encode(frames[i:i + 4])[0] for i in range(0, len(frames), 4)])
    pixels = len(frames) * frames[0].shape[0] * frames[0].shape[1]
    plain = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    print(f"{len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, latent {latent.shape[1:]}")
    print("symbol bits per pixel (the per-channel steps add 4 bytes per latent channel per frame)")
    print("bits  zstd-only bpp  delta+zstd bpp  saving  encode ms/frame  decode ms/frame")
    for bits in args.bits:
        codec = LatentCodec(latent.shape[1:], bits)
        without = sum(len(plain.compress(quantise(z, bits).symbols.tobytes())) for z in latent) * 8 / pixels
        payloads = [codec.encode(z)[0] for z in latent]
        with_delta = sum(len(p) - 4 * latent.shape[1] for p in payloads) * 8 / pixels
        enc = median_ms(lambda: [codec.encode(z) for z in latent]) / len(latent)
        dec = median_ms(lambda: [codec.decode(p).dequantise() for p in payloads]) / len(latent)
        print(f"{bits:4d}  {without:13.4f}  {with_delta:14.4f}  {1 - with_delta / without:6.1%}  {enc:15.2f}  {dec:15.2f}")


if __name__ == "__main__":
    main()
