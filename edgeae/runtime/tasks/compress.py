"""`edgeae compress` / `edgeae decompress`: frames ⇄ .eae bitstream through the autoencoder's latent.

Function-level API (for rate–distortion benchmarks): `compress_frames(ae, frames, bits)` returns
record payloads and a stats dict without touching disk; `decompress_payloads(ae, header, payloads)`
turns payloads back into frames. `compress(cfg)` and `decompress(cfg)` are the file-level verbs:
they refuse to write over their inputs, hold an OutputLock on what they write, and an interrupted run
(Ctrl-C, SIGTERM) keeps what it wrote, labelled incomplete.
"""

from __future__ import annotations

import hashlib
import logging
import math
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
from edgeae.outputs import OutputLock, refuse_overwriting_inputs, signals_held
from edgeae.runtime.autoencoder import Autoencoder, ModelInfo
from edgeae.runtime.bitstream import (CODEC_ENTROPY, CODEC_ZSTD_DELTA, END_SIZE, HEADER_SIZE, MAX_FPS, RECORD_OVERHEAD,
                                      BitstreamReader, BitstreamWriter, StreamHeader)
from edgeae.runtime.entropy_codec import EntropyCodec, EntropyTables, has_entropy_model, tables_path
from edgeae.runtime.latent_codec import MAX_BITS, MIN_BITS, LatentCodec, check_bits
from edgeae.runtime.preprocess import padded_size
from edgeae.runtime.quality import SSIM, psnr
from edgeae.runtime.run_files import PRECISIONS, ROLES, engine_path, onnx_path
from edgeae.runtime.sources import (IMAGE_EXTENSIONS, is_camera, iter_frames, list_images, open_video, read_image,
                                    to_bgr, video_frame_count)
from edgeae.runtime.visualise import write_image

log = logging.getLogger("edgeae.compress")
VIDEO_FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "MJPG"}
MAX_BATCH = 256  # frames per inference call: more buys nothing but memory


def check_batch_size(batch_size: int) -> None:
    if not 1 <= batch_size <= MAX_BATCH:
        raise EdgeAEError(f"batch size {batch_size} is out of range; choose 1 to {MAX_BATCH} (4 is the default)")


def model_files(model_dir: str | os.PathLike) -> dict[str, Path]:
    """Every file a backend may read from a model folder, labelled for refuse_overwriting_inputs."""
    paths = [f(model_dir, role, p) for role in ROLES for p in PRECISIONS for f in (onnx_path, engine_path)]
    return {f"model file {path.name}": path for path in [*paths, tables_path(model_dir)]}


def model_id(model_dir: str | os.PathLike) -> bytes:
    """sha256 over encoder.onnx, decoder.onnx and a learned codec's probability tables: names the exact model a
    bitstream needs (an autoencoder's id is unchanged from before the tables existed)."""
    digest = hashlib.sha256()
    for role in ROLES:
        path = onnx_path(model_dir, role)
        if not path.is_file():
            raise EdgeAEError(f"model {path} not found; run 'edgeae export RUN' first")
        digest.update(path.read_bytes())
    if has_entropy_model(model_dir):
        digest.update(tables_path(model_dir).read_bytes())
    return digest.digest()


def load_tables(model_dir: str | os.PathLike) -> EntropyTables | None:
    """A learned codec's probability tables; None for an autoencoder (its latent is quantised by --bits)."""
    return EntropyTables.load(tables_path(model_dir)) if has_entropy_model(model_dir) else None


def latent_coder(header: StreamHeader, tables: EntropyTables | None) -> "LatentCodec | EntropyCodec":
    """The coder of the stream's records: the header's codec kind, with the model's tables for a learned codec."""
    if header.codec == CODEC_ENTROPY:
        if tables is None:
            raise EdgeAEError("the stream was written by a learned codec, but the model has no entropy_tables.npz; "
                              "pass the run folder that compressed it")
        return EntropyCodec(header.latent_shape, tables)
    if tables is not None:
        raise EdgeAEError("the model is a learned codec, but the stream was written by an autoencoder; pass the "
                          "run folder that compressed it")
    return LatentCodec(header.latent_shape, header.bits)


def latent_shape(info: ModelInfo, frame_size: tuple[int, int]) -> tuple[int, int, int]:
    """(C, h, w) of the latent the model makes of one frame: the padded frame over the downsampling."""
    ph, pw = padded_size(*frame_size, info.downsample)
    return info.latent_channels, ph // info.downsample, pw // info.downsample


def stream_header(ae: Autoencoder, frame_size: tuple[int, int], bits: int, ident: bytes, fps: float = 0.0,
                  learned: bool = False) -> StreamHeader:
    """The header for frames of `frame_size`; a frame rate the container got wrong is stored as 0 (unknown).
    learned: the model is a learned codec (range-coded latent, no bit depth)."""
    fps = fps if math.isfinite(fps) and 0 < fps <= MAX_FPS else 0.0
    codec = CODEC_ENTROPY if learned else CODEC_ZSTD_DELTA
    return StreamHeader(ident, tuple(frame_size), latent_shape(ae.info, frame_size), 0 if learned else bits, fps, codec)


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

    def __init__(self, ae: Autoencoder, header: StreamHeader, measure: bool = True,
                 tables: EntropyTables | None = None):
        """measure=False skips decoding and PSNR/SSIM: compression then runs the encoder only.
        tables: a learned codec's probability tables (header.codec CODEC_ENTROPY)."""
        self.ae, self.header, self.measure = ae, header, measure
        self.codec = latent_coder(header, tables)
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


def compress_frames(ae: Autoencoder, frames: Iterable[np.ndarray], bits: int = 8, batch_size: int = 4,
                    tables: EntropyTables | None = None) -> tuple[list[bytes], dict]:
    """In memory: frames → (record payloads, stats dict with frames, skipped, bytes, bpp, psnr, ssim).

    `bytes`/`bpp` count the whole .eae file these payloads would make (header, framing, end record).
    tables: a learned codec's (load_tables(RUN)); `bits` is then unused.
    """
    if tables is None:
        check_bits(bits)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise EdgeAEError("no frames to compress")
    header = stream_header(ae, to_bgr(first).shape[:2], bits, bytes(32), learned=tables is not None)
    compressor = FrameCompressor(ae, header, tables=tables)
    payloads = list(compressor.payloads(chain([first], frames), batch_size))
    return payloads, compressor.tally.as_dict()


def decompress_payloads(ae: Autoencoder, header: StreamHeader, payloads: list[bytes],
                        tables: EntropyTables | None = None) -> list[np.ndarray]:
    """Record payloads of one stream → BGR frames of header.frame_size."""
    codec = latent_coder(header, tables)
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

    def validate(self) -> None:
        check_bits(self.bits)  # checked for every model, so a bad --bits is an error before the model is looked at
        check_batch_size(self.batch_size)
        if self.limit < 0:
            raise EdgeAEError(f"frame limit {self.limit} must be 0 (every frame) or more")


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


def check_one_frame_size(folder: str, limit: int | None) -> None:
    """Refuse a folder whose images differ in size, before anything is written: one .eae holds one frame size.

    Reads every image once more than compressing does; a folder is small beside what the encoder costs, and
    the alternative is finding out halfway through, with a partial file.
    """
    files = list_images(folder)[:limit]
    size, first = None, None
    for path in files:
        h, w = read_image(path).shape[:2]
        if size is None:
            size, first = (h, w), path.name
        elif (h, w) != size:
            raise EdgeAEError(f"{path.name} is {w}x{h}, but {first} is {size[1]}x{size[0]}: one .eae holds frames of one "
                              f"size; resize the images in {folder} to one size, or compress each size on its own")


def source_bytes(source: str, limit: int | None, total: int | None) -> int | None:
    """Bytes of what compress reads from `source` (image files, or a whole video file), None where unknown
    (cameras, streams, part of a video)."""
    path = Path(source)
    if is_camera(source) or not path.exists():
        return None
    if path.is_dir():
        return sum(f.stat().st_size for f in list_images(path)[:limit])
    if limit and (total is None or limit < total):
        return None
    return path.stat().st_size


def compress(cfg: CompressConfig) -> dict:
    """Source → cfg.out (.eae), streamed record by record; writes cfg.out + '.json' (config, stats, stopped).

    Stopped early (Ctrl-C, SIGTERM, an error), the frames written so far are kept in cfg.out, which ends
    with a stop record saying why, and the exception goes on to the caller.
    """
    cfg.validate()
    refuse_overwriting_inputs({"output": cfg.out, "stats file": f"{cfg.out}.json"},
                              {"source": cfg.source, **model_files(cfg.model)})
    fps, total = probe_source(cfg.source)
    limit = cfg.limit or None
    if Path(cfg.source).is_dir():
        check_one_frame_size(cfg.source, limit)
    read_bytes = source_bytes(cfg.source, limit, total)
    frames = iter_frames(cfg.source, limit=limit)
    first = to_bgr(next(frames))
    ident = model_id(cfg.model)
    tables = load_tables(cfg.model)
    with OutputLock(cfg.out, "bitstream"), \
            Autoencoder.load(cfg.model, backend=cfg.backend, precision=cfg.precision) as ae:
        header = stream_header(ae, first.shape[:2], cfg.bits, ident, fps, learned=tables is not None)
        compressor = FrameCompressor(ae, header, cfg.measure, tables)
        total = min(total, limit) if total and limit else (total or limit)
        writer = BitstreamWriter(cfg.out, compressor.header)
        try:
            write_stream(writer, compressor, chain([first], frames), cfg.batch_size, total)
        finally:
            if writer.kept:  # a stop record is longer than the end record the tally assumes
                compressor.tally.nbytes = writer.path.stat().st_size
            stats = {**compressor.tally.as_dict(), "source_bytes": read_bytes}
            if writer.kept:
                atomic_write_json(f"{cfg.out}.json",
                                  {"config": to_dict(cfg), "stats": stats, "stopped": writer.stopped})
            if writer.stopped:
                log.warning("kept the %d frame(s) compressed before it was %s in %s, marked incomplete",
                            writer.count, writer.stopped, cfg.out)
    return stats


def write_stream(writer: BitstreamWriter, compressor: "FrameCompressor", frames: Iterable[np.ndarray],
                 batch_size: int, total: int | None) -> None:
    """Encode and write every frame; the writer ends the file (end or stop record) however this returns."""
    # The redirect prints skip warnings above the progress bar instead of through it.
    with writer, tqdm(total=total, unit="frame", desc="compress") as bar, logging_redirect_tqdm(loggers=[log]):
        for payload in compressor.payloads(frames, batch_size):
            writer.write(payload)
            bar.update(compressor.tally.frames + compressor.tally.skipped - bar.n)


@dataclass(frozen=True)
class DecompressConfig:
    source: str
    out: str
    model: str
    backend: str = "onnxruntime"
    precision: str = "fp32"
    batch_size: int = 4

    def validate(self) -> None:
        check_batch_size(self.batch_size)


def check_model(header: StreamHeader, model: str, source: str) -> None:
    """Refuse to decode a stream with any model other than the one that encoded it."""
    ident = model_id(model)
    if ident != header.model_id:
        raise EdgeAEError(f"{source} was compressed with model {header.model_id.hex()[:12]}, but {model} is model "
                          f"{ident.hex()[:12]}; decompress with the run folder that compressed it")


def check_stream(header: StreamHeader, info: ModelInfo, source: str) -> None:
    """Refuse a header whose latent this model cannot have made from its frames (channels, sides)."""
    expected = latent_shape(info, header.frame_size)
    if header.latent_shape != expected:
        (h, w), (shape, made) = header.frame_size, ("x".join(map(str, s)) for s in (header.latent_shape, expected))
        raise EdgeAEError(f"{source} declares a {shape} latent for {w}x{h} frames, but this model makes {made}; "
                          f"the file is damaged or was not written by 'edgeae compress'")


def checked_records(reader: BitstreamReader, source: str, tables: EntropyTables | None = None) -> list[tuple[int, bytes]]:
    """Every intact record, each payload's steps and declared size checked before anything is decoded."""
    header = reader.header
    if header.codec == CODEC_ZSTD_DELTA and not MIN_BITS <= header.bits <= MAX_BITS:
        raise EdgeAEError(f"{source} declares {header.bits} bits per symbol (edgeae writes {MIN_BITS} to {MAX_BITS}); "
                          f"the file is damaged or was not written by 'edgeae compress'")
    try:
        codec = latent_coder(header, tables)
    except EdgeAEError as e:
        raise EdgeAEError(f"{source}: {e}") from None
    records = list(reader.records(max_payload=codec.max_payload))
    for seq, payload in records:
        try:
            codec.check(payload)
        except EdgeAEError as e:
            raise EdgeAEError(f"{source}, frame #{seq}: {e}") from None
    return records


def decompress(cfg: DecompressConfig) -> dict:
    """cfg.source (.eae) → an image, an image folder or a video; returns {frames, lost, complete, problems}.

    Every intact record is decoded even when others are damaged; `problems` says what was lost, and
    that the stream was stopped early when its stop record says so. Everything read from the file is
    checked before the model runs; interrupted (Ctrl-C, SIGTERM), the frames decoded so far are kept.
    """
    cfg.validate()
    refuse_overwriting_inputs({"output": cfg.out}, {"bitstream": cfg.source, **model_files(cfg.model)})
    reader = BitstreamReader(cfg.source)
    check_model(reader.header, cfg.model, cfg.source)
    tables = load_tables(cfg.model)
    records = checked_records(reader, cfg.source, tables)
    report = reader.report
    if not records:
        raise EdgeAEError(f"{cfg.source} holds no intact frame ({'; '.join(report.lines()) or 'no records'})")
    kind = sink_kind(cfg.out, len(records))
    with OutputLock(cfg.out, "output", folder=kind is FolderSink), \
            Autoencoder.load(cfg.model, backend=cfg.backend, precision=cfg.precision) as ae:
        check_stream(reader.header, ae.info, cfg.source)
        try:
            with open_sink(cfg.out, reader.header, len(records)) as sink:
                for start in tqdm(range(0, len(records), cfg.batch_size), unit="batch", desc="decompress"):
                    chunk = records[start:start + cfg.batch_size]
                    for (seq, _), frame in zip(chunk, decompress_payloads(ae, reader.header, [p for _, p in chunk], tables)):
                        sink.write(seq, frame)
        except OSError as e:
            raise EdgeAEError(f"cannot write {cfg.out}: {e.strerror or e}; check the path and the free space") from None
    return {"frames": len(records), "lost": report.lost, "complete": report.complete, "problems": report.lines()}


def sink_kind(out: str, count: int) -> type["FrameSink"]:
    """ImageSink for an image file (one frame only), VideoSink by video extension, otherwise FolderSink."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        if count != 1:
            raise EdgeAEError(f"{out} is one image but the stream holds {count} frames; give a folder or a .avi/.mp4 file")
        return ImageSink
    if suffix in VIDEO_FOURCC:
        return VideoSink
    if path.exists() and not path.is_dir():
        raise EdgeAEError(f"{out} is a file; give a folder, a .png/.jpg for one frame, or a .avi/.mp4 file")
    return FolderSink


def open_sink(out: str, header: StreamHeader, count: int) -> "FrameSink":
    """An image file for one frame, a video file by extension, otherwise a folder of PNGs."""
    kind = sink_kind(out, count)
    if kind is VideoSink:
        return VideoSink(out, header.frame_size, header.fps or 25.0)
    return kind(out)


class FrameSink:
    """Where decoded frames go; frames arrive with their sequence number."""

    def write(self, seq: int, frame: np.ndarray) -> None:
        raise NotImplementedError

    def close(self, keep: bool = True) -> None:
        """Finish the output; keep=False discards it (an error), True keeps it (done, or interrupted)."""

    def __enter__(self) -> "FrameSink":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(keep=exc_type is None or issubclass(exc_type, KeyboardInterrupt))


class ImageSink(FrameSink):
    def __init__(self, path: str):
        self.path = path

    def write(self, seq: int, frame: np.ndarray) -> None:
        write_image(self.path, frame)


class FolderSink(FrameSink):
    """frame_000000.png … named by sequence number, so lost frames show as gaps; each file atomic."""

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def write(self, seq: int, frame: np.ndarray) -> None:
        write_image(self.folder / f"frame_{seq:06d}.png", frame)


class VideoSink(FrameSink):
    """Writes to a hidden temp file renamed into place when closed: an error leaves no half video, and an
    interrupted run leaves a finalised one (its header counts the frames it holds)."""

    def __init__(self, path: str, size: tuple[int, int], fps: float):
        self.path, self.size = Path(path), tuple(size)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[self.path.suffix.lower()])
        self.writer = cv2.VideoWriter(str(self.tmp), fourcc, fps, (size[1], size[0]))
        if not self.writer.isOpened():
            raise EdgeAEError(f"cannot write video {path}: this OpenCV build lacks the codec; use .avi or a folder")

    def write(self, seq: int, frame: np.ndarray) -> None:
        if frame.shape[:2] != self.size:  # OpenCV would drop it silently and leave an unreadable file
            raise EdgeAEError(f"frame #{seq} is {frame.shape[1]}x{frame.shape[0]}, but video {self.path} is "
                              f"{self.size[1]}x{self.size[0]}")
        self.writer.write(frame)

    def close(self, keep: bool = True) -> None:
        with signals_held():
            self.writer.release()
            if keep and not self.tmp.is_file():
                raise EdgeAEError(f"OpenCV wrote nothing to {self.tmp}; write a folder of PNGs instead")
            if keep:
                os.replace(self.tmp, self.path)
            else:
                self.tmp.unlink(missing_ok=True)
