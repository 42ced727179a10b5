"""`edgeae compress` / `edgeae decompress`: frames ⇄ .eae bitstream through the autoencoder's latent.

Function-level API (for rate–distortion benchmarks): `compress_frames(ae, frames, bits)` returns
record payloads and a stats dict without touching disk; `decompress_payloads(ae, header, payloads)`
turns payloads back into frames. `compress(cfg)` and `decompress(cfg)` are the file-level verbs.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from edgeae.config import atomic_write_json, to_dict
from edgeae.errors import EdgeAEError
from edgeae.runtime.autoencoder import Autoencoder
from edgeae.runtime.bitstream import (END_SIZE, HEADER_SIZE, RECORD_OVERHEAD, BitstreamReader, BitstreamWriter,
                                      StreamHeader)
from edgeae.runtime.latent_codec import LatentCodec, check_bits
from edgeae.runtime.preprocess import padded_size
from edgeae.runtime.quality import SSIM, psnr
from edgeae.runtime.sources import (IMAGE_EXTENSIONS, is_camera, iter_frames, list_images, open_video, to_bgr,
                                    video_frame_count)
from edgeae.runtime.visualise import write_image

log = logging.getLogger("edgeae.compress")
VIDEO_FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "MJPG"}


def model_id(model_dir: str | os.PathLike) -> bytes:
    """sha256 over encoder.onnx then decoder.onnx: names the exact model a bitstream needs."""
    digest = hashlib.sha256()
    for name in ("encoder.onnx", "decoder.onnx"):
        path = Path(model_dir) / name
        if not path.is_file():
            raise EdgeAEError(f"model {path} not found; run 'edgeae export RUN' first")
        digest.update(path.read_bytes())
    return digest.digest()


def stream_header(ae: Autoencoder, frame_size: tuple[int, int], bits: int, ident: bytes, fps: float = 0.0) -> StreamHeader:
    ph, pw = padded_size(*frame_size, ae.info.downsample)
    latent = (ae.info.latent_channels, ph // ae.info.downsample, pw // ae.info.downsample)
    return StreamHeader(ident, tuple(frame_size), latent, bits, fps)


class QualityTally:
    """Running bytes, PSNR and SSIM over frames; `as_dict()` is what compress reports."""

    def __init__(self, frame_size: tuple[int, int], bits: int):
        self.frame_size, self.bits = frame_size, bits
        self.frames = self.skipped = self.measured = 0
        self.nbytes = HEADER_SIZE + END_SIZE
        self.psnr_sum = self.ssim_sum = 0.0
        self._ssim = SSIM()

    def add(self, payload_bytes: int, frame: np.ndarray | None = None, recon: np.ndarray | None = None) -> None:
        self.frames += 1
        self.nbytes += payload_bytes + RECORD_OVERHEAD
        if recon is not None:
            self.measured += 1
            self.psnr_sum += psnr(frame, recon)
            self.ssim_sum += self._ssim(frame, recon)

    def as_dict(self) -> dict:
        """frames, skipped, bits, bytes, bpp, psnr, ssim (None when not measured), frame_size."""
        n, m, (h, w) = max(self.frames, 1), self.measured, self.frame_size
        return {"frames": self.frames, "skipped": self.skipped, "bits": self.bits, "bytes": self.nbytes,
                "bpp": self.nbytes * 8 / (n * h * w), "psnr": self.psnr_sum / m if m else None,
                "ssim": self.ssim_sum / m if m else None, "frame_size": list(self.frame_size)}


class FrameCompressor:
    """Frames of one size → record payloads, tallying bytes and the quality decompress will see."""

    def __init__(self, ae: Autoencoder, header: StreamHeader, measure: bool = True):
        """measure=False skips decoding and PSNR/SSIM: compression then runs the encoder only."""
        self.ae, self.header, self.measure = ae, header, measure
        self.codec = LatentCodec(header.latent_shape, header.bits)
        self.tally = QualityTally(header.frame_size, header.bits)

    def encode_batch(self, frames: list[np.ndarray]) -> list[bytes]:
        """Same-size BGR frames → one payload each; quality is measured on the dequantised latent."""
        latent, size = self.ae.encode(frames)
        dequantised = np.empty_like(latent)
        payloads = []
        for i, z in enumerate(latent):
            payload, q = self.codec.encode(z)
            payloads.append(payload)
            dequantised[i] = q.dequantise()
        recons = self.ae.decode(dequantised, size) if self.measure else [None] * len(frames)
        for frame, recon, payload in zip(frames, recons, payloads):
            self.tally.add(len(payload), frame, recon)
        return payloads

    def payloads(self, frames: Iterable[np.ndarray], batch_size: int = 4) -> Iterator[bytes]:
        """Payload per frame of the stream's size; other sizes are skipped with a warning and counted."""
        batch, size = [], self.header.frame_size
        for i, frame in enumerate(frames):
            frame = to_bgr(frame)
            if frame.shape[:2] != size:
                self.tally.skipped += 1
                log.warning("skipped source frame %d: %dx%d differs from the stream's %dx%d (one .eae holds one "
                            "frame size)", i, frame.shape[1], frame.shape[0], size[1], size[0])
                continue
            batch.append(frame)
            if len(batch) == batch_size:
                yield from self.encode_batch(batch)
                batch = []
        if batch:
            yield from self.encode_batch(batch)


def compress_frames(ae: Autoencoder, frames: Iterable[np.ndarray], bits: int = 8, batch_size: int = 4) -> tuple[list[bytes], dict]:
    """In memory: frames → (record payloads, stats dict with frames, skipped, bytes, bpp, psnr, ssim).

    `bytes`/`bpp` count the whole .eae file these payloads would make (header, framing, end record).
    """
    check_bits(bits)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise EdgeAEError("no frames to compress")
    compressor = FrameCompressor(ae, stream_header(ae, to_bgr(first).shape[:2], bits, bytes(32)))
    payloads = list(compressor.payloads(chain([first], frames), batch_size))
    return payloads, compressor.tally.as_dict()


def decompress_payloads(ae: Autoencoder, header: StreamHeader, payloads: list[bytes]) -> list[np.ndarray]:
    """Record payloads of one stream → BGR frames of header.frame_size."""
    codec = LatentCodec(header.latent_shape, header.bits)
    latent = np.stack([codec.decode(p).dequantise() for p in payloads])
    return ae.decode(latent, header.frame_size)


@dataclass(frozen=True)
class CompressConfig:
    source: str
    out: str
    model: str
    bits: int = 8
    backend: str = "onnxruntime"
    precision: str = "fp32"
    batch_size: int = 4
    limit: int = 0  # 0 = every frame
    measure: bool = True  # decode as well, to report PSNR and SSIM


def probe_source(source: str) -> tuple[float, int | None]:
    """(frames per second or 0, frame count or None) of a video file, image or folder."""
    if is_camera(source):
        return 0.0, None  # opening a camera twice fails on some drivers
    path = Path(source)
    if path.is_dir():
        return 0.0, len(list_images(path))
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return 0.0, 1
    cap = open_video(source)
    try:
        return float(cap.get(cv2.CAP_PROP_FPS) or 0.0), video_frame_count(cap) or None
    finally:
        cap.release()


def compress(cfg: CompressConfig) -> dict:
    """Source → cfg.out (.eae), streamed record by record; writes cfg.out + '.json' (config and stats)."""
    check_bits(cfg.bits)
    fps, total = probe_source(cfg.source)
    limit = cfg.limit or None
    frames = iter_frames(cfg.source, limit=limit)
    first = to_bgr(next(frames))
    ident = model_id(cfg.model)
    with Autoencoder.load(cfg.model, backend=cfg.backend, precision=cfg.precision) as ae:
        compressor = FrameCompressor(ae, stream_header(ae, first.shape[:2], cfg.bits, ident, fps), cfg.measure)
        tally = compressor.tally
        total = min(total, limit) if total and limit else (total or limit)
        # The redirect prints skip warnings above the progress bar instead of through it.
        with BitstreamWriter(cfg.out, compressor.header) as writer, \
                tqdm(total=total, unit="frame", desc="compress") as bar, logging_redirect_tqdm(loggers=[log]):
            for payload in compressor.payloads(chain([first], frames), cfg.batch_size):
                writer.write(payload)
                bar.update(tally.frames + tally.skipped - bar.n)
    stats = tally.as_dict()
    atomic_write_json(f"{cfg.out}.json", {"config": to_dict(cfg), "stats": stats})
    return stats


@dataclass(frozen=True)
class DecompressConfig:
    source: str
    out: str
    model: str
    backend: str = "onnxruntime"
    precision: str = "fp32"
    batch_size: int = 4


def check_model(header: StreamHeader, model: str, source: str) -> None:
    """Refuse to decode a stream with any model other than the one that encoded it."""
    ident = model_id(model)
    if ident != header.model_id:
        raise EdgeAEError(f"{source} was compressed with model {header.model_id.hex()[:12]}, but {model} is model "
                          f"{ident.hex()[:12]}; decompress with the run folder that compressed it")


def decompress(cfg: DecompressConfig) -> dict:
    """cfg.source (.eae) → an image, an image folder or a video; returns {frames, lost, complete, problems}.

    Every intact record is decoded even when others are damaged; `problems` says what was lost.
    """
    reader = BitstreamReader(cfg.source)
    check_model(reader.header, cfg.model, cfg.source)
    records = list(reader)
    report = reader.report
    if not records:
        raise EdgeAEError(f"{cfg.source} holds no intact frame ({'; '.join(report.lines()) or 'no records'})")
    with Autoencoder.load(cfg.model, backend=cfg.backend, precision=cfg.precision) as ae, open_sink(cfg.out, reader.header, len(records)) as sink:
        for start in tqdm(range(0, len(records), cfg.batch_size), unit="batch", desc="decompress"):
            chunk = records[start:start + cfg.batch_size]
            for (seq, _), frame in zip(chunk, decompress_payloads(ae, reader.header, [p for _, p in chunk])):
                sink.write(seq, frame)
    return {"frames": len(records), "lost": report.lost, "complete": report.complete, "problems": report.lines()}


def open_sink(out: str, header: StreamHeader, count: int) -> "FrameSink":
    """An image file for one frame, a video file by extension, otherwise a folder of PNGs."""
    suffix = Path(out).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        if count != 1:
            raise EdgeAEError(f"{out} is one image but the stream holds {count} frames; give a folder or a .avi/.mp4 file")
        return ImageSink(out)
    if suffix in VIDEO_FOURCC:
        return VideoSink(out, header.frame_size, header.fps or 25.0)
    return FolderSink(out)


class FrameSink:
    """Where decoded frames go; frames arrive with their sequence number."""

    def write(self, seq: int, frame: np.ndarray) -> None:
        raise NotImplementedError

    def close(self, ok: bool = True) -> None:
        pass

    def __enter__(self) -> "FrameSink":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(ok=exc_type is None)


class ImageSink(FrameSink):
    def __init__(self, path: str):
        self.path = path

    def write(self, seq: int, frame: np.ndarray) -> None:
        write_image(self.path, frame)


class FolderSink(FrameSink):
    """frame_000000.png … named by sequence number, so lost frames show as gaps; each file atomic."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise EdgeAEError(f"{folder} is a file; give a folder, a .png/.jpg for one frame, or a .avi/.mp4 file")

    def write(self, seq: int, frame: np.ndarray) -> None:
        write_image(self.folder / f"frame_{seq:06d}.png", frame)


class VideoSink(FrameSink):
    """Writes to a hidden temp file renamed into place at the end: an interrupted run leaves no half video."""

    def __init__(self, path: str, size: tuple[int, int], fps: float):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[self.path.suffix.lower()])
        self.writer = cv2.VideoWriter(str(self.tmp), fourcc, fps, (size[1], size[0]))
        if not self.writer.isOpened():
            raise EdgeAEError(f"cannot write video {path}: this OpenCV build lacks the codec; use .avi or a folder")

    def write(self, seq: int, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def close(self, ok: bool = True) -> None:
        self.writer.release()
        if ok:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
