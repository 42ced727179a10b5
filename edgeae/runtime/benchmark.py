"""Torch-free measurement: which backends this device can run, their latency, their agreement.

Used by `edgeae bench RUN` on an edge device (reference: ONNX Runtime fp32) and by the full suite in
benchmarks/ (reference: PyTorch). A backend that cannot run here is reported with the reason, never
left out silently and never given a number.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgeae.runtime.autoencoder import Autoencoder, ModelInfo
from edgeae.runtime.backends import BACKENDS, backend_class

# Shapes the issue asks for: crops at several batch sizes, and single frames at camera resolutions.
CROP_BATCHES = (1, 8, 32, 256)
FRAME_SIZES = ((480, 640), (576, 768), (720, 1280), (1088, 1920))


def latency_shapes(quick: bool = False) -> list[tuple[int, int, int]]:
    """(batch, height, width) for the latency table; quick keeps two small ones for smoke tests."""
    if quick:
        return [(1, 32, 32), (2, 64, 96)]
    return [(n, 32, 32) for n in CROP_BATCHES] + [(1, h, w) for h, w in FRAME_SIZES]


def machine_threads() -> int:
    """Cores this process may run on (the affinity mask, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class Variant:
    """One way to run the model: a backend, a precision, and the files it needs."""

    label: str
    backend: str
    precision: str
    files: tuple[str, str]
    options: dict = field(default_factory=dict, hash=False)


def candidate_variants(threads: int) -> list[Variant]:
    ort = {"providers": ["CPUExecutionProvider"], "threads": threads}
    return [
        Variant("onnxruntime-cpu fp32", "onnxruntime", "fp32", ("encoder.onnx", "decoder.onnx"), ort),
        Variant("onnxruntime-cpu fp16", "onnxruntime", "fp16", ("encoder.fp16.onnx", "decoder.fp16.onnx"), ort),
        Variant("onnxruntime-cpu int8", "onnxruntime", "int8", ("encoder.int8.onnx", "decoder.int8.onnx"), ort),
        Variant("opencv-dnn fp32", "opencv-dnn", "fp32", ("encoder.onnx", "decoder.onnx"), {"threads": threads}),
        Variant("tensorrt fp32", "tensorrt", "fp32", ("encoder.fp32.engine", "decoder.fp32.engine")),
        Variant("tensorrt fp16", "tensorrt", "fp16", ("encoder.fp16.engine", "decoder.fp16.engine")),
        Variant("tensorrt int8", "tensorrt", "int8", ("encoder.int8.engine", "decoder.int8.engine")),
    ]


def has_cuda_gpu() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def skip_reason(variant: Variant, run_dir: Path) -> str | None:
    """Why this variant cannot run here, or None if it can be tried."""
    if variant.backend not in BACKENDS:
        return f"backend {variant.backend!r} is not part of this edgeae build"
    if variant.backend == "tensorrt" and not has_cuda_gpu():
        return "no TensorRT engine can execute on this machine: no CUDA GPU"
    missing = [f for f in variant.files if not (run_dir / f).is_file()]
    if missing:
        fix = "run 'make engines' (edgeae build RUN)" if variant.precision != "fp32" or variant.backend == "tensorrt" \
            else "run 'edgeae export RUN'"
        return f"{', '.join(missing)} not found in {run_dir}: {fix}"
    return None


def load_variant(variant: Variant, run_dir: Path) -> Autoencoder:
    cls = backend_class(variant.backend)
    encoder = cls.load(run_dir / variant.files[0], **variant.options)
    decoder = cls.load(run_dir / variant.files[1], **variant.options)
    return Autoencoder(encoder, decoder, ModelInfo.from_metadata(encoder.metadata, str(run_dir / variant.files[0])))


def open_variants(run_dir: Path, threads: int) -> tuple[dict[str, Autoencoder], dict[str, str]]:
    """Load every variant that can run here: ({label: Autoencoder}, {label: reason it was skipped})."""
    from edgeae.errors import EdgeAEError

    loaded, skipped = {}, {}
    for variant in candidate_variants(threads):
        reason = skip_reason(variant, run_dir)
        if reason is None:
            try:
                loaded[variant.label] = load_variant(variant, run_dir)
            except (EdgeAEError, ImportError) as e:
                reason = str(e)
        if reason is not None:
            skipped[variant.label] = reason
    return loaded, skipped


def pin_threads(threads: int) -> None:
    """Pin OpenCV's pool; ONNX Runtime is pinned per session (Variant.options)."""
    import cv2

    cv2.setNumThreads(threads)


def time_call(fn: Callable[[], object], warmup: int = 3, min_reps: int = 10, max_reps: int = 300,
              budget_s: float = 2.0) -> dict:
    """Warm up, then time `fn` repeatedly (at least min_reps, until budget_s or max_reps): ms percentiles."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() < deadline):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": float(np.mean(times)),
            "reps": len(times)}


def random_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Uniform [0, 1) float32 input: never time on zeros (kernels may shortcut them)."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def full_model(ae: Autoencoder, x: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: ae.decode_batch(ae.encode_batch(x))


def error_stats(got: np.ndarray, ref: np.ndarray) -> dict:
    """max/mean absolute error and PSNR with the reference's range as peak (1 for images)."""
    err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    peak = max(1.0, float(np.abs(ref).max()))
    mse = float(np.mean(err ** 2))
    psnr = float("inf") if mse == 0 else float(10 * np.log10(peak ** 2 / mse))
    return {"max_abs": float(err.max()), "mean_abs": float(err.mean()), "range": peak,
            "max_scaled": float(err.max()) / peak, "psnr_db": psnr}


# Pass/fail per precision. fp32 is judged relative to the reference's range (latents reach tens);
# reduced precisions by PSNR, the target for INT8 being 35 dB.
TOLERANCES = {"fp32": {"max_scaled": 1e-4}, "fp16": {"psnr_db": 45.0}, "int8": {"psnr_db": 35.0}}


def within_tolerance(stats: dict, precision: str) -> bool:
    rule = TOLERANCES[precision]
    if "max_scaled" in rule:
        return bool(stats["max_scaled"] <= rule["max_scaled"])
    return bool(stats["psnr_db"] >= rule["psnr_db"])


def compare_parts(ae: Autoencoder, x: np.ndarray, ref_latent: np.ndarray, ref_image: np.ndarray,
                  precision: str) -> list[dict]:
    """Encoder, decoder (fed the reference latent) and full model against reference outputs."""
    latent = ae.encode_batch(x)
    rows = []
    for part, got, ref in (("encoder", latent, ref_latent), ("decoder", ae.decode_batch(ref_latent), ref_image),
                           ("full", ae.decode_batch(latent), ref_image)):
        stats = error_stats(got, ref)
        rows.append({"part": part, **stats, "passed": within_tolerance(stats, precision)})
    return rows


def device_bench(run_dir: str | os.PathLike, quick: bool = False, threads: int = 0) -> dict:
    """Every runnable backend on this device: latency, and agreement with ONNX Runtime fp32."""
    run_dir = Path(run_dir)
    threads = threads or machine_threads()
    pin_threads(threads)
    loaded, skipped = open_variants(run_dir, threads)
    reference_label = "onnxruntime-cpu fp32"
    if reference_label not in loaded:
        from edgeae.errors import EdgeAEError

        raise EdgeAEError(f"{run_dir} has no runnable encoder.onnx/decoder.onnx ({skipped.get(reference_label)})")
    reference = loaded[reference_label]
    budget = 0.3 if quick else 2.0
    results: dict[str, dict] = {label: {"skipped": reason} for label, reason in skipped.items()}
    for label, ae in loaded.items():
        precision = label.split()[-1]
        rows = []
        for shape in latency_shapes(quick):
            x = random_input((shape[0], 3, shape[1], shape[2]))
            ref_latent = reference.encode_batch(x)
            parity = compare_parts(ae, x, ref_latent, reference.decode_batch(ref_latent), precision)
            timing = time_call(full_model(ae, x), warmup=2 if quick else 5, min_reps=5 if quick else 10, budget_s=budget)
            rows.append({"shape": list(x.shape), **timing, "items_per_s": shape[0] * 1000 / timing["p50_ms"],
                         "parity": parity})
        results[label] = {"precision": precision, "rows": rows}
    for ae in loaded.values():
        ae.close()
    ordered = {v.label: results[v.label] for v in candidate_variants(threads)}
    return {"run": str(run_dir), "threads": threads, "reference": reference_label, "variants": ordered}


def format_device_bench(report: dict) -> str:
    lines = [f"edgeae bench {report['run']}: {report['threads']} threads, parity against {report['reference']}",
             f"{'backend':24} {'input':16} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'items/s':>9} {'full PSNR':>10}  ok"]
    for label, result in report["variants"].items():
        if "skipped" in result:
            lines.append(f"{label:24} skipped: {result['skipped']}")
            continue
        for row in result["rows"]:
            full = next(p for p in row["parity"] if p["part"] == "full")
            ok = "yes" if all(p["passed"] for p in row["parity"]) else "NO"
            lines.append(f"{label:24} {'x'.join(map(str, row['shape'])):16} {row['p50_ms']:9.3f} {row['p90_ms']:9.3f} "
                         f"{row['p99_ms']:9.3f} {row['items_per_s']:9.1f} {full['psnr_db']:9.1f}  {ok}")
    return "\n".join(lines)
