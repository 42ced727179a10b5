"""The learned codec (models/codec-q1 … q4) against JPEG, WebP and the seed autoencoder's codec.

Rate–distortion on two held-out sets the codec never saw in training: the held-out photos of `make data-photos`
(whole photos, long side ≤ 1024) and vtest.avi frames (the codec trains on photos only; the seed autoencoder's
frames are the ones after its training period). Every rate is the bytes of the .eae file(s) 'edgeae compress'
writes (header and framing included), JPEG/WebP the files OpenCV encodes; PSNR is the mean over images, as
`edgeae eval --task compress` reports it (the numbers are what `edgeae eval models/codec-q1 --task compress
--levels models/codec-q2 … --data DIR` prints). BD-rate (VCEG-M33, PSNR) of the codec against each curve.
Time: ms per 768×576 frame on `threads` cores with ONNX Runtime, and with OpenVINO where it is installed (its
deconvolution kernels decode in about half ONNX Runtime's time on the AMD EPYC), encode = analysis transform +
rounding + range coding, decode = range decoding + synthesis transform, with the entropy coder's share.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from benchmarks.compression import at_matched_bpp
from edgeae.errors import EdgeAEError
from edgeae.runtime import sources
from edgeae.runtime.evaluate import CODECS as REFERENCE_CODECS
from edgeae.runtime.evaluate import EvalConfig, autoencoder_curve, bd_rates, codec_curve, opencv_curve

MODELS = Path("models")
HELDOUT_PHOTOS = Path("data/photos/heldout")
CODEC = "edgeae codec"
SEED = "seed autoencoder"
TIME_REPEATS = 5
MATCHED_RANGE = (0.15, 1.0)  # the target range of rates: the codec above JPEG at every rate in it
# section key of each backend's timing rows, and its name in the report
TIMING_BACKENDS = {"timing": ("onnxruntime", "ONNX Runtime"), "timing_openvino": ("openvino", "OpenVINO")}


def codec_levels(folder: Path = MODELS) -> list[Path]:
    """models/codec-q1, codec-q2, … in quality order (q10 after q9)."""
    found = [p for p in folder.glob("codec-q*") if re.fullmatch(r"codec-q\d+", p.name) and (p / "decoder.onnx").is_file()]
    return sorted(found, key=lambda p: int(p.name[len("codec-q"):]))


def photos(folder: Path = HELDOUT_PHOTOS) -> list[np.ndarray]:
    if not folder.is_dir():
        raise EdgeAEError(f"{folder} not found; run 'make data-photos'")
    return [sources.read_image(p) for p in sources.list_images(folder)]


def jpeg_gap(codec_points: list[dict], jpeg_points: list[dict]) -> list[dict]:
    """At each codec point inside JPEG's range: JPEG's PSNR at the same bpp (linear in bpp) and the gap."""
    return [{"model": p.get("model"), "bpp": p["bpp"], "codec_psnr_db": row["autoencoder"],
             "jpeg_psnr_db": row["reference"], "delta_db": row["delta"]}
            for p, row in zip(codec_points, at_matched_bpp(codec_points, jpeg_points, "psnr_db"))]


def rate_distortion(levels: list[Path], frames: list[np.ndarray], threads: int, seed_run: Path | None) -> dict:
    curves = {CODEC: codec_curve([str(p) for p in levels], frames, threads)}
    for name in REFERENCE_CODECS:
        curves[name] = opencv_curve(frames, name, EvalConfig.qualities)
    if seed_run is not None:
        from edgeae.runtime import Autoencoder

        with Autoencoder.load(seed_run, threads=threads) as ae:
            curves[SEED] = autoencoder_curve(ae, frames, EvalConfig.bits)
    return {"images": len(frames), "frame_sizes": sorted({f"{f.shape[1]}x{f.shape[0]}" for f in frames}),
            "curves": curves, "bd_rate_psnr": bd_rates(curves, test=CODEC),
            "vs_jpeg": jpeg_gap(curves[CODEC], curves["JPEG"])}


def timing(level: Path, frame: np.ndarray, threads: int, backend: str = "onnxruntime") -> dict:
    """Median ms per frame: encode (transform, then rounding + range coding) and decode (the reverse)."""
    from edgeae.runtime import Autoencoder
    from edgeae.runtime.tasks.compress import latent_coder, load_tables, stream_header

    with Autoencoder.load(level, backend=backend, threads=threads) as ae:
        header = stream_header(ae, frame.shape[:2], 0, bytes(32), learned=True)
        coder = latent_coder(header, load_tables(level))
        rows = {k: [] for k in ("encode_transform", "encode_coder", "decode_coder", "decode_transform")}
        for i in range(TIME_REPEATS + 1):  # the first round warms the sessions up and is dropped
            t0 = time.perf_counter()
            latent, size = ae.encode([frame])
            t1 = time.perf_counter()
            payload, _ = coder.encode(latent[0])
            t2 = time.perf_counter()
            rounded = coder.decode(payload).dequantise()
            t3 = time.perf_counter()
            ae.decode(rounded[None], size)
            t4 = time.perf_counter()
            if i:
                for key, (a, b) in zip(rows, ((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
                    rows[key].append(1000 * (b - a))
    ms = {k: float(np.median(v)) for k, v in rows.items()}
    encode, decode = ms["encode_transform"] + ms["encode_coder"], ms["decode_coder"] + ms["decode_transform"]
    return {"model": str(level), "frame_size": f"{frame.shape[1]}x{frame.shape[0]}", "encode_ms": encode,
            "decode_ms": decode, "coder_share_encode": ms["encode_coder"] / encode,
            "coder_share_decode": ms["decode_coder"] / decode, "bytes": len(payload), **{f"{k}_ms": v for k, v in ms.items()}}


def run(footage_frames: list[np.ndarray], threads: int, seed_run: Path | None = None, quick: bool = False,
        models: Path = MODELS, photo_folder: Path = HELDOUT_PHOTOS) -> dict:
    levels = codec_levels(models)
    if not levels:
        raise EdgeAEError(f"no learned codec under {models}/codec-q*; run 'make models-codec'")
    sets = {"held-out photos": photos(photo_folder)[:3 if quick else None], "vtest.avi frames": footage_frames}
    section = {"levels": [str(p) for p in levels], "threads": threads,
               "sets": {name: rate_distortion(levels, frames, threads, seed_run) for name, frames in sets.items()}}
    frame = next((f for f in footage_frames if f.shape[:2] == (576, 768)), footage_frames[0])
    from edgeae.runtime.tuning import runtime_version

    for key, (backend, _) in TIMING_BACKENDS.items():
        if runtime_version(backend) is not None:  # installed here
            section[key] = [timing(level, frame, threads, backend) for level in levels]
    return section


def codec(ctx) -> dict:
    """The `make bench` section: vtest frames after the seed model's training period."""
    frames = ctx.pick(ctx.heldout_frames, 2 if ctx.cfg.quick else 6)
    return run(frames, ctx.threads, ctx.runs["seed"], ctx.cfg.quick)


def _f(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(section: dict) -> list[str]:
    lines = ["## Learned codec (models/codec-q*): rate–distortion and speed", ""]
    if "skipped" in section:
        return lines + [f"Skipped: {section['skipped']}", ""]
    for name, rd in section["sets"].items():
        lines += [f"**{name}** ({rd['images']} images, {', '.join(rd['frame_sizes'][:4])}"
                  f"{'…' if len(rd['frame_sizes']) > 4 else ''}): BD-rate of the codec (PSNR) "
                  + ", ".join(f"vs {k} {_f(v['percent'], 1)} %" if v["percent"] is not None else f"vs {k}: {v['why']}"
                              for k, v in rd["bd_rate_psnr"].items()), "",
                  "| level | bpp | PSNR dB | MS-SSIM | JPEG at that bpp, dB | codec − JPEG, dB |", "|---|---|---|---|---|---|"]
        for point, gap in zip(rd["curves"][CODEC], rd["vs_jpeg"]):
            lines.append(f"| {Path(point['model']).name} | {point['bpp']:.3f} | {point['psnr_db']:.2f} | "
                         f"{_f(point['ms_ssim'], 4)} | {_f(gap['jpeg_psnr_db'])} | {_f(gap['delta_db'])} |")
        lines.append("")
    for key, (_, name) in TIMING_BACKENDS.items():
        if key not in section:
            continue
        lines += [f"Time per {section[key][0]['frame_size']} frame, {name} on {section['threads']} threads "
                  "(median of 5):", "", "| level | encode ms | of which range coding | decode ms | of which range decoding |",
                  "|---|---|---|---|---|"]
        lines += [f"| {Path(t['model']).name} | {t['encode_ms']:.1f} | {100 * t['coder_share_encode']:.0f} % | "
                  f"{t['decode_ms']:.1f} | {100 * t['coder_share_decode']:.0f} % |" for t in section[key]] + [""]
    return lines


def plot(section: dict, path: Path) -> Path:
    from benchmarks.plots import _pyplot, _save

    plt = _pyplot()
    sets = section["sets"]
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4.2))
    for ax, (name, rd) in zip(np.atleast_1d(axes), sets.items()):
        for codec_name, points in rd["curves"].items():
            points = sorted(points, key=lambda p: p["bpp"])
            ax.plot([p["bpp"] for p in points], [p["psnr_db"] for p in points], "o-" if codec_name == CODEC else ".--",
                    label=codec_name, linewidth=2 if codec_name == CODEC else 1)
        ax.set(xlabel="bits per pixel", ylabel="PSNR, dB", title=name, xlim=(0, 1.6))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("learned codec vs JPEG / WebP (OpenCV) on held-out images")
    return _save(fig, path)


def main(argv: list[str] | None = None) -> int:
    """The codec section alone: python -m benchmarks.codec [--footage data/opencv/vtest.avi] [--seed-run RUN]."""
    import argparse
    import json

    from edgeae.config import atomic_write_json
    from edgeae.runtime.benchmark import pin_threads

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--footage", default="data/opencv/vtest.avi")
    parser.add_argument("--frames", type=int, default=6, help="vtest frames, spread over the video's last half")
    parser.add_argument("--seed-run", type=Path, help="a trained seed autoencoder to draw beside (runs/bench-seed)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the section here")
    parser.add_argument("--plot", type=Path, help="write the rate–distortion plot here (PNG)")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    frames = list(sources.iter_video(args.footage))
    half = frames[len(frames) // 2:]
    frames = [half[i] for i in np.linspace(0, len(half) - 1, args.frames).round().astype(int)]
    section = run(frames, args.threads, args.seed_run)
    print("\n".join(markdown(section)))
    if args.json:
        atomic_write_json(args.json, section)
    if args.plot:
        plot(section, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
