"""`edgeae eval`: score a model on labelled data — anomaly AUROC, denoising PSNR/SSIM, compression rate–distortion.

Torch-free: it runs the exported model through the runtime, scoring each image exactly as `edgeae run`
(anomaly: the calibrated task) and `edgeae compress` (the .eae codec) do, so what it reports is what the
deployed model does. The result is a dict (written with --json, its EvalConfig beside it) and a table.

DATA layouts: LAYOUTS below (also `edgeae eval --help` and the README).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeae.config import atomic_write_json, save_config
from edgeae.errors import EdgeAEError
from edgeae.outputs import refuse_overwriting_inputs
from edgeae.runtime.latent_codec import check_bits
from edgeae.runtime.preprocess import frames_to_batch
from edgeae.runtime.quality import MS_SSIM_MIN_SIDE, SSIM, bd_rate, ms_ssim, psnr
from edgeae.runtime.sources import IMAGE_EXTENSIONS, iter_frames, list_images, read_image

EVAL_TASKS = ("anomaly", "denoise", "compress")
PIXEL_STRIDE = 4  # pixel AUROC ranks every 4th pixel of every 4th row: the maps are smooth at that scale
MASK_SUFFIXES = ("_mask", "")  # DATA/mask/<kind>/<name>_mask.png (MVTec) or <name>.png
LAYOUT_HELP = ("anomaly: DATA/good/ and DATA/defect/[<kind>/] (+ DATA/mask/[<kind>/]<name>_mask.png), or an "
               "MVTec AD category folder; denoise: a folder of clean images, or DATA/noisy/ + DATA/clean/; "
               "compress: an image folder or video (see 'edgeae eval --help')")
LAYOUTS = """DATA layouts:
  anomaly   DATA/good/*                       normal images
            DATA/defect/<kind>/*              defective images, a folder per kind (or DATA/defect/*)
            DATA/mask/<kind>/<name>_mask.png  optional ground truth, non-zero = defect (pixel AUROC);
                                              <name>.png works too; DATA/mask/<name>_mask.png for DATA/defect/*
            or an MVTec AD category folder as it is (test/good, test/<kind>, ground_truth/<kind>)
            needs 'edgeae calibrate' first: scores, threshold and reference map are the run's own
  denoise   DATA/* (or a video)               clean images; Gaussian noise of each --sigma added, seeded by --seed
            DATA/noisy/* + DATA/clean/*       real noisy/clean pairs, matched by file name
  compress  DATA                              image folder, video or image: rate-distortion of the .eae codec
                                              (--bits) against OpenCV's JPEG and WebP (--quality), BD-rate
examples:
  edgeae eval runs/demo --task anomaly --data demo/anomaly-set --json demo/eval.json
  edgeae eval runs/dn --task denoise --data data/opencv --sigma 15 25 50
  edgeae eval runs/demo --task compress --data data/opencv/vtest.avi --limit 6
"""
CODECS = {"JPEG": (".jpg", cv2.IMWRITE_JPEG_QUALITY), "WebP": (".webp", cv2.IMWRITE_WEBP_QUALITY)}


@dataclass(frozen=True)
class EvalConfig:
    """What `edgeae eval` scored, and how; saved beside the --json results (RESULTS.config.json)."""

    run: str
    task: str
    data: str
    backend: str = "onnxruntime"
    precision: str = "fp32"
    threads: int = 0                       # ONNX Runtime intra-op threads (0: its default)
    threshold: float | None = None         # anomaly: decide with this instead of the calibrated threshold
    sigmas: tuple[int, ...] = (25,)        # denoise: Gaussian σ (0..255 units) added to clean images
    seed: int = 0                          # denoise: the noise's seed (each σ draws from [seed, σ])
    bits: tuple[int, ...] = (2, 3, 4, 5, 6, 8)                    # compress: latent bits per symbol
    qualities: tuple[int, ...] = (5, 10, 20, 30, 50, 70, 85, 95)  # compress: JPEG and WebP qualities
    levels: tuple[str, ...] = ()  # compress, learned codecs: more quality levels (run folders) on the run's curve
    limit: int = 0                         # at most this many images per folder (frames of a video); 0: all
    json: str = ""

    def validate(self) -> None:
        if self.task not in EVAL_TASKS:
            raise EdgeAEError(f"eval task {self.task!r} is not one of {', '.join(EVAL_TASKS)}")
        if self.threshold is not None and not (math.isfinite(self.threshold) and self.threshold > 0):
            raise EdgeAEError(f"--threshold {self.threshold} must be a finite number above 0")
        if not self.sigmas or not all(0 <= s <= 255 for s in self.sigmas):
            raise EdgeAEError(f"--sigma {' '.join(map(str, self.sigmas))}: each must be from 0 to 255")
        for bits in self.bits:
            check_bits(bits)
        if not self.bits or not self.qualities or not all(1 <= q <= 100 for q in self.qualities):
            raise EdgeAEError("--bits and --quality need at least one value each; qualities are 1 to 100")
        if self.limit < 0 or self.seed < 0 or not 0 <= self.threads <= 256:
            raise EdgeAEError("--limit must be 0 (all) or more, --seed 0 or more, --threads 0 to 256")


# ----------------------------------------------------------------------------------------------------
# Scores


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (nan without both classes), from ranks: the Mann–Whitney U statistic over
    positives × negatives, tied scores at their mean rank — the same number as scikit-learn's
    roc_auc_score (its trapezoids count a tie as half), without its import."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first index of each run of ties
    ends = np.r_[starts[1:], ordered.size]
    mean_rank = (starts + 1 + ends) / 2                                # 1-based ranks starts+1 … ends
    ranks = np.empty(scores.size)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    u = ranks[labels].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


def detection_scores(anomalous: np.ndarray, decided: np.ndarray) -> dict:
    """Precision, recall, F1, false-positive rate and the four counts of decisions against labels."""
    tp, fp = int((decided & anomalous).sum()), int((decided & ~anomalous).sum())
    fn, tn = int((~decided & anomalous).sum()), int((~decided & ~anomalous).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
            "counts": {"true_positive": tp, "false_positive": fp, "false_negative": fn, "true_negative": tn}}


def anomaly_metrics(scores: list[float], kinds: list[str], threshold: float | None,
                    pixels: list[tuple[np.ndarray, np.ndarray] | None] | None = None) -> dict:
    """Image AUROC, pixel AUROC, precision/recall at `threshold` (None: a detector without one) and a
    breakdown per defect kind.

    kinds: "" for a normal image, else its defect kind; pixels: per image (map, mask) already strided, or
    None where no ground truth was given (normal images count as all-normal pixels).
    """
    scores, kinds = np.asarray(scores, dtype=np.float64), np.asarray(kinds)
    anomalous = kinds != ""
    decided = scores > (threshold if threshold is not None else np.inf)
    pixels = pixels or [None] * len(scores)

    def pixel_auroc(chosen: np.ndarray) -> float | None:
        pairs = [pixels[i] for i in np.flatnonzero(chosen) if pixels[i] is not None]
        if not any(mask.any() for _, mask in pairs):
            return None
        return auroc(np.concatenate([m.ravel() for m, _ in pairs]), np.concatenate([k.ravel() for _, k in pairs]))

    per_defect = {}
    for kind in sorted(set(kinds) - {""}):
        this = kinds == kind
        per_defect[kind] = {"images": int(this.sum()), "image_auroc": auroc(scores[this | ~anomalous], this[this | ~anomalous]),
                            "pixel_auroc": pixel_auroc(this | ~anomalous)}
        if threshold is not None:
            per_defect[kind]["recall"] = float(decided[this].mean())
    return {"images": len(scores), "normal_images": int((~anomalous).sum()), "defect_images": int(anomalous.sum()),
            "image_auroc": auroc(scores, anomalous), "pixel_auroc": pixel_auroc(np.ones(len(scores), bool)),
            "pixel_auroc_images": sum(p is not None for p in pixels), "pixel_stride": PIXEL_STRIDE,
            "threshold": threshold, **(detection_scores(anomalous, decided) if threshold is not None else {}),
            "per_defect": per_defect}


# ----------------------------------------------------------------------------------------------------
# Anomaly


@dataclass(frozen=True)
class Sample:
    """One labelled image: its file, its defect kind ("" = normal) and its ground-truth mask, if any."""

    path: Path
    kind: str = ""
    mask: Path | None = None


def _images(folder: Path, limit: int = 0) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    return files[:limit] if limit else files


def _mask_for(image: Path, mask_dir: Path) -> Path | None:
    for suffix in MASK_SUFFIXES:
        for ext in IMAGE_EXTENSIONS:
            candidate = mask_dir / f"{image.stem}{suffix}{ext}"
            if candidate.is_file():
                return candidate
    return None


def anomaly_samples(data: str | os.PathLike, limit: int = 0) -> list[Sample]:
    """The labelled images of an anomaly DATA folder (module docstring: layouts); EdgeAEError if it is none."""
    root = Path(data)
    if not root.is_dir():
        raise EdgeAEError(f"anomaly data {root} is not a folder; expected {LAYOUT_HELP}")
    if (root / "test" / "good").is_dir() and not (root / "good").is_dir():  # an MVTec AD category
        good, defects, masks = root / "test" / "good", root / "test", root / "ground_truth"
    else:
        good, defects, masks = root / "good", root / "defect", root / "mask"
    if not good.is_dir() or not defects.is_dir():
        raise EdgeAEError(f"anomaly data {root} has no {good.name}/ or {defects.name}/ folder; expected {LAYOUT_HELP}")
    samples = [Sample(p) for p in _images(good, limit)]
    kinds = [(d.name, d, masks / d.name) for d in sorted(defects.iterdir()) if d.is_dir() and d != good]
    if defects != root / "test":
        kinds.append(("defect", defects, masks))  # DATA/defect/* directly: one kind
    for kind, folder, mask_dir in kinds:
        samples += [Sample(p, kind, _mask_for(p, mask_dir)) for p in _images(folder, limit)]
    if not any(s.kind == "" for s in samples) or not any(s.kind for s in samples):
        raise EdgeAEError(f"anomaly data {root} needs normal and defective images: found "
                          f"{sum(not s.kind for s in samples)} normal, {sum(bool(s.kind) for s in samples)} defective; "
                          f"expected {LAYOUT_HELP}")
    return samples


def read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A ground-truth mask as bool H×W (non-zero = defect), checked to be the image's size."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise EdgeAEError(f"cannot decode mask {path}: not an image OpenCV can read")
    if mask.shape != tuple(size):
        raise EdgeAEError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]}, its image {size[1]}x{size[0]}; "
                          "a mask must match its image")
    return mask > 0


def score_image(ae, task, image: np.ndarray) -> tuple[float, np.ndarray]:
    """(frame score, per-pixel map) of one BGR image, as `edgeae run --task anomaly` scores a frame."""
    from edgeae.runtime.tasks.anomaly import pixel_map

    batch, (h, w) = frames_to_batch([image], ae.info.downsample)
    score, small = task.score(task.errors(batch, ae.reconstruct_batch(batch))[0, :h, :w])
    return score, pixel_map(small, (h, w))


def evaluate_anomaly(ae, task, samples: list[Sample], root: Path, progress: bool = True) -> dict:
    """Score every sample with the calibrated `task`; anomaly_metrics plus one row per image."""
    scores, pixels, rows = [], [], []
    s = PIXEL_STRIDE
    for sample in tqdm(samples, desc="eval anomaly", unit="image", disable=None if progress else True):
        image = read_image(sample.path)
        score, full = score_image(ae, task, image)
        if not math.isfinite(score):
            raise EdgeAEError(f"{sample.path} scored {score}: the model's output is not finite; re-export the model")
        mask = read_mask(sample.mask, image.shape[:2]) if sample.mask else None
        has_truth = mask is not None or not sample.kind
        pixels.append((full[::s, ::s], (mask if mask is not None else np.zeros(image.shape[:2], bool))[::s, ::s])
                      if has_truth else None)
        scores.append(score)
        rows.append({"image": sample.path.relative_to(root).as_posix(), "kind": sample.kind, "score": score,
                     "anomalous": score > task.cfg.threshold})
    return {**anomaly_metrics(scores, [x.kind for x in samples], task.cfg.threshold, pixels), "per_image": rows}


# ----------------------------------------------------------------------------------------------------
# Denoise


def add_gaussian_noise(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """uint8 frame + N(0, σ²) per value (σ in 0..255 units), rounded and clipped: as the benchmark adds it."""
    return np.clip(frame + rng.normal(0.0, sigma, frame.shape), 0, 255).round().astype(np.uint8)


def denoise_pairs(data: str | os.PathLike, limit: int = 0) -> list[tuple[Path, Path]] | None:
    """(noisy, clean) files matched by name when DATA has noisy/ and clean/; None for a folder of clean images."""
    root = Path(data)
    if not ((root / "noisy").is_dir() and (root / "clean").is_dir()):
        return None
    noisy = {p.stem: p for p in _images(root / "noisy")}
    clean = {p.stem: p for p in _images(root / "clean")}
    unmatched = sorted(set(noisy) ^ set(clean))
    if unmatched:
        raise EdgeAEError(f"denoise data {root}: {len(unmatched)} image(s) without a partner in noisy/ and clean/ "
                          f"(e.g. {', '.join(unmatched[:3])}); name each pair alike")
    if not noisy:
        raise EdgeAEError(f"denoise data {root}: noisy/ and clean/ hold no images; expected {LAYOUT_HELP}")
    names = sorted(noisy)[:limit] if limit else sorted(noisy)
    return [(noisy[n], clean[n]) for n in names]


def clean_images(data: str, limit: int = 0) -> list[tuple[str, np.ndarray]]:
    """(name, image) of a folder's or one image's files, or ("frame N", frame) of a video."""
    path = Path(data)
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS:
        files = list_images(path)[:limit or None] if path.is_dir() else [path]
        return [(f.name, read_image(f)) for f in files]
    return [(f"frame {i}", frame) for i, frame in enumerate(iter_frames(data, limit=limit or None))]


def denoise_row(ae, cases: list[tuple[str, np.ndarray, np.ndarray]], progress: bool, label: str) -> tuple[dict, list]:
    """PSNR/SSIM of the model's output and of its noisy input against the clean image, over (name, noisy, clean)."""
    ssim, per_image = SSIM(), []
    for name, noisy, clean in tqdm(cases, desc=f"eval denoise {label}", unit="image", disable=None if progress else True):
        if noisy.shape != clean.shape:
            raise EdgeAEError(f"{name}: the noisy image is {noisy.shape[1]}x{noisy.shape[0]}, the clean one "
                              f"{clean.shape[1]}x{clean.shape[0]}; a pair must be the same size")
        out = ae.reconstruct([noisy])[0]
        per_image.append({"image": name, "psnr_db": psnr(clean, out), "ssim": ssim(clean, out),
                          "input_psnr_db": psnr(clean, noisy), "input_ssim": ssim(clean, noisy)})
    mean = {k: float(np.mean([r[k] for r in per_image])) for k in ("psnr_db", "ssim", "input_psnr_db", "input_ssim")}
    return {"images": len(per_image), **mean, "gain_db": mean["psnr_db"] - mean["input_psnr_db"]}, per_image


def evaluate_denoise(ae, cfg: EvalConfig, progress: bool = True) -> dict:
    """One row per --sigma on clean images with seeded noise, or one row on noisy/clean pairs."""
    pairs = denoise_pairs(cfg.data, cfg.limit)
    rows, per_image = [], []
    if pairs is not None:
        cases = [(n.name, read_image(n), read_image(c)) for n, c in pairs]
        row, images = denoise_row(ae, cases, progress, "pairs")
        rows.append({"sigma": None, **row})
        per_image += images
    else:
        clean = clean_images(cfg.data, cfg.limit)
        for sigma in cfg.sigmas:
            rng = np.random.default_rng([cfg.seed, sigma])  # the same frames get the same noise, as in the benchmark
            cases = [(name, add_gaussian_noise(image, sigma, rng), image) for name, image in clean]
            row, images = denoise_row(ae, cases, progress, f"σ {sigma}")
            rows.append({"sigma": sigma, **row})
            per_image += [{"sigma": sigma, **r} for r in images]
    return {"pairs": pairs is not None, "model_task": ae.info.task, "rows": rows, "per_image": per_image}


# ----------------------------------------------------------------------------------------------------
# Compress


def rd_point(frames: list[np.ndarray], decoded: list[np.ndarray], nbytes: int, **extra) -> dict:
    """One rate–distortion point: bits per pixel of `nbytes`, mean PSNR, SSIM and MS-SSIM (None for images
    under MS_SSIM_MIN_SIDE a side)."""
    pixels = sum(f.shape[0] * f.shape[1] for f in frames)
    ssim = SSIM()
    fits = all(min(f.shape[:2]) >= MS_SSIM_MIN_SIDE for f in frames)
    return {**extra, "bpp": 8 * nbytes / pixels,
            "psnr_db": float(np.mean([psnr(f, d) for f, d in zip(frames, decoded)])),
            "ssim": float(np.mean([ssim(f, d) for f, d in zip(frames, decoded)])),
            "ms_ssim": float(np.mean([ms_ssim(f, d) for f, d in zip(frames, decoded)])) if fits else None}


def autoencoder_curve(ae, frames: list[np.ndarray], bits: tuple[int, ...], tables=None, **extra) -> list[dict]:
    """A point per bit depth — or, for a learned codec (its `tables`), the one point its model makes; the rate is
    the .eae file(s) `edgeae compress` writes, one stream per frame size."""
    from edgeae.runtime.tasks.compress import FrameCompressor, decompress_payloads, stream_header

    by_size: dict[tuple, list[int]] = {}
    for i, frame in enumerate(frames):
        by_size.setdefault(frame.shape[:2], []).append(i)
    points = []
    for b in (None,) if tables is not None else bits:
        decoded, nbytes = [None] * len(frames), 0
        for size, indices in by_size.items():
            header = stream_header(ae, size, b or 0, bytes(32), learned=tables is not None)
            compressor = FrameCompressor(ae, header, measure=False, tables=tables)
            payloads = list(compressor.payloads([frames[i] for i in indices]))
            nbytes += compressor.tally.nbytes
            for i, image in zip(indices, decompress_payloads(ae, header, payloads, tables)):
                decoded[i] = image
        points.append(rd_point(frames, decoded, nbytes, **({"bits": b} if b else {}), **extra))
    return points


def codec_curve(runs: list[str], frames: list[np.ndarray], threads: int = 0, progress: bool = False) -> list[dict]:
    """A learned codec's curve: one point per quality level (run folder), each its .eae bytes and quality."""
    from edgeae.runtime.autoencoder import Autoencoder
    from edgeae.runtime.tasks.compress import load_tables

    points = []
    for run in tqdm(runs, desc="eval compress: levels", unit="level", disable=None if progress else True):
        tables = load_tables(run)
        if tables is None:
            raise EdgeAEError(f"{run} is not a learned codec (no entropy_tables.npz); --levels takes codec run folders")
        with Autoencoder.load(run, **({"threads": threads} if threads else {})) as ae:
            points += autoencoder_curve(ae, frames, (), tables, model=str(run))
    return points


def opencv_curve(frames: list[np.ndarray], codec: str, qualities: tuple[int, ...]) -> list[dict]:
    """A point per quality of OpenCV's JPEG or WebP encoder (file bytes, headers included)."""
    ext, flag = CODECS[codec]
    points = []
    for quality in qualities:
        buffers = [cv2.imencode(ext, f, [flag, quality])[1] for f in frames]
        decoded = [cv2.imdecode(b, cv2.IMREAD_COLOR) for b in buffers]
        points.append(rd_point(frames, decoded, sum(len(b) for b in buffers), quality=quality))
    return points


def bd_rates(curves: dict[str, list[dict]], test: str = "autoencoder") -> dict:
    """BD-rate (PSNR) of the `test` curve against every other one: {"percent": x} or {"percent": None, "why": …}."""
    out = {}
    for name, points in curves.items():
        if name == test:
            continue
        try:
            out[name] = {"percent": bd_rate([(p["bpp"], p["psnr_db"]) for p in points],
                                            [(p["bpp"], p["psnr_db"]) for p in curves[test]], names=(name, test))}
        except ValueError as e:
            out[name] = {"percent": None, "why": str(e)}
    return out


def evaluate_compress(ae, cfg: EvalConfig, progress: bool = True) -> dict:
    """The run's curve (a point per --bits; a learned codec: its point, then one per --levels run) against JPEG/WebP."""
    from edgeae.runtime.tasks.compress import load_tables

    frames = list(tqdm(iter_frames(cfg.data, limit=cfg.limit or None), desc="eval compress: read", unit="frame",
                       disable=None if progress else True))
    tables = load_tables(cfg.run)
    if tables is None and cfg.levels:
        raise EdgeAEError(f"--levels adds quality levels of a learned codec, but {cfg.run} is an autoencoder; "
                          "drop --levels or pass a codec run (models/codec-q*)")
    curve = autoencoder_curve(ae, frames, cfg.bits, tables, **({"model": cfg.run} if tables is not None else {}))
    if cfg.levels:
        curve = sorted(curve + codec_curve(list(cfg.levels), frames, cfg.threads, progress), key=lambda p: p["bpp"])
    curves = {"autoencoder": curve}
    for codec in CODECS:
        curves[codec] = opencv_curve(frames, codec, cfg.qualities)
    return {"frames": len(frames), "frame_sizes": sorted({f"{f.shape[1]}x{f.shape[0]}" for f in frames}),
            "rate": "autoencoder: bytes of the .eae file(s) 'edgeae compress' writes (header and framing "
                    "included); JPEG/WebP: OpenCV's encoded files", "curves": curves, "bd_rate_psnr": bd_rates(curves)}


# ----------------------------------------------------------------------------------------------------
# The stage


def results_config_path(json_path: str | os.PathLike) -> Path:
    """The EvalConfig saved beside the results: eval.json → eval.config.json."""
    path = Path(json_path)
    return path.with_name(f"{path.stem}.config.json")


def evaluate(cfg: EvalConfig, progress: bool = True) -> dict:
    """Score the model of `cfg.run` on `cfg.data` for `cfg.task`; writes cfg.json (and its config) when set."""
    from edgeae.runtime.autoencoder import Autoencoder

    cfg.validate()
    if cfg.json:
        refuse_overwriting_inputs({"--json": cfg.json, "the saved eval config": results_config_path(cfg.json)},
                                  {"--data": cfg.data, "run folder": cfg.run})
    samples = anomaly_samples(cfg.data, cfg.limit) if cfg.task == "anomaly" else None  # a bad layout fails first
    options = {"threads": cfg.threads} if cfg.threads else {}
    with Autoencoder.load(cfg.run, backend=cfg.backend, precision=cfg.precision, **options) as ae:
        head = {"task": cfg.task, "run": cfg.run, "data": cfg.data, "model": ae.describe()}
        if cfg.task == "anomaly":
            from edgeae.runtime.tasks.anomaly import load_task

            task = load_task(cfg.run, ae.info.checkpoint_sha256)
            head["threshold_from"] = "--threshold" if cfg.threshold is not None else "anomaly.json (calibrated)"
            if cfg.threshold is not None:
                task.set_threshold(cfg.threshold)
            result = {**head, **evaluate_anomaly(ae, task, samples, Path(cfg.data), progress)}
        elif cfg.task == "denoise":
            result = {**head, **evaluate_denoise(ae, cfg, progress)}
        else:
            result = {**head, **evaluate_compress(ae, cfg, progress)}
    if cfg.json:
        atomic_write_json(cfg.json, _finite(result))
        save_config(cfg, results_config_path(cfg.json))
    return result


def _finite(obj):
    """NaN (an AUROC without both classes) → None: strict JSON readers refuse NaN."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------------------------
# The table


def _f(value, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def format_results(result: dict) -> str:
    """The table `edgeae eval` prints."""
    lines = [f"model: {result['model']}", f"data: {result['data']}"]
    if result["task"] == "anomaly":
        r = result
        lines += [f"{r['images']} images ({r['normal_images']} normal, {r['defect_images']} defective); "
                  f"pixel AUROC over {r['pixel_auroc_images']} with ground truth",
                  f"image AUROC {_f(r['image_auroc'])}   pixel AUROC {_f(r['pixel_auroc'])}",
                  f"at threshold {r['threshold']:.6g} ({r['threshold_from']}): precision {_f(r['precision'])}, "
                  f"recall {_f(r['recall'])}, F1 {_f(r['f1'])}, false-positive rate {_f(r['false_positive_rate'])}",
                  f"{'defect':<16} {'images':>6} {'image AUROC':>11} {'pixel AUROC':>11} {'recall':>7}"]
        lines += [f"{kind:<16} {d['images']:>6} {_f(d['image_auroc']):>11} {_f(d['pixel_auroc']):>11} {_f(d['recall']):>7}"
                  for kind, d in r["per_defect"].items()]
    elif result["task"] == "denoise":
        lines.append(f"{'sigma':>5} {'images':>6} {'PSNR dB':>8} {'SSIM':>6} {'input PSNR':>10} {'input SSIM':>10} {'gain dB':>7}")
        lines += [f"{'pairs' if r['sigma'] is None else r['sigma']:>5} {r['images']:>6} {_f(r['psnr_db'], 2):>8} "
                  f"{_f(r['ssim']):>6} {_f(r['input_psnr_db'], 2):>10} {_f(r['input_ssim']):>10} {_f(r['gain_db'], 2):>7}"
                  for r in result["rows"]]
    else:
        lines.append(f"{result['frames']} frames ({', '.join(result['frame_sizes'])})")
        lines.append(f"{'codec':<12} {'setting':>18} {'bpp':>7} {'PSNR dB':>8} {'SSIM':>6} {'MS-SSIM':>7}")
        for codec, points in result["curves"].items():
            for p in points:
                setting = (f"{p['bits']} bits" if "bits" in p else f"q {p['quality']}" if "quality" in p
                           else Path(p.get("model", "")).name[-18:])
                lines.append(f"{codec:<12} {setting:>18} {p['bpp']:>7.3f} {_f(p['psnr_db'], 2):>8} "
                             f"{_f(p['ssim']):>6} {_f(p['ms_ssim']):>7}")
        for codec, bd in result["bd_rate_psnr"].items():
            lines.append(f"BD-rate (PSNR) of the autoencoder against {codec}: "
                         + (f"{bd['percent']:+.1f} %" if bd["percent"] is not None else f"not defined: {bd['why']}"))
    return "\n".join(lines)
