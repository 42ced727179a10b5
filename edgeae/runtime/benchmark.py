"""Torch-free measurement: which backends this device can run, their latency, their agreement.

Used by `edgeae bench RUN` on an edge device (reference: ONNX Runtime fp32) and by the full suite in
benchmarks/ (reference: PyTorch). A backend that cannot run here is reported with the reason, never
left out silently and never given a number.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgeae.runtime.autoencoder import Autoencoder, ModelInfo
from edgeae.runtime.backends import BACKENDS, backend_class
from edgeae.runtime.run_files import PRECISIONS, ROLES, TUNING_FILE, engine_name, onnx_name
from edgeae.runtime.tuning import candidate_table, cpu_info, machine_threads, read_sidecar, tuned_candidate

# Shapes the issue asks for: crops at several batch sizes, and single frames at camera resolutions.
CROP_BATCHES = (1, 8, 32, 256)
FRAME_SIZES = ((480, 640), (576, 768), (720, 1280), (1088, 1920))


def latency_shapes(quick: bool = False) -> list[tuple[int, int, int]]:
    """(batch, height, width) for the latency table; quick keeps two small ones for smoke tests."""
    if quick:
        return [(1, 32, 32), (2, 64, 96)]
    return [(n, 32, 32) for n in CROP_BATCHES] + [(1, h, w) for h, w in FRAME_SIZES]


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
        *(Variant(f"onnxruntime-cpu {p}", "onnxruntime", p, _files(onnx_name, p), ort) for p in PRECISIONS),
        Variant("opencv-dnn fp32", "opencv-dnn", "fp32", _files(onnx_name, "fp32"), {"threads": threads}),
        *(Variant(f"openvino-cpu {p}", "openvino", p, _files(onnx_name, p), {"threads": threads}) for p in PRECISIONS),
        *(Variant(f"tensorrt {p}", "tensorrt", p, _files(engine_name, p)) for p in PRECISIONS),
    ]


def _files(name, precision: str) -> tuple[str, str]:
    return tuple(name(role, precision) for role in ROLES)


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


TUNED = "tuned default"


def open_tuned(run_dir: Path) -> tuple[Autoencoder, str]:
    """What `Autoencoder.load(RUN)` runs here (RUN/tuning.json's pick, else today's defaults), and its precision."""
    form, _ = tuned_candidate(run_dir)
    return Autoencoder.load(run_dir), form.precision if form else "fp32"


def tuning_summary(run_dir: Path) -> dict:
    """The tuner's pick and every candidate's timing from RUN/tuning.json, or why there is none."""
    sidecar, reason = read_sidecar(run_dir)
    if sidecar is None:
        return {"skipped": f"{reason}: run 'edgeae build {run_dir} --backend onnxruntime' to tune"}
    return {k: sidecar[k] for k in ("created", "cpu", "seconds", "shapes", "baseline", "winner", "speedup_vs_baseline",
                                    "int8", "unavailable", "stages")}


def open_variants(run_dir: Path, threads: int, wanted: Callable[[Variant], bool] = lambda v: True,
                  ) -> tuple[dict[str, Autoencoder], dict[str, str]]:
    """Load every `wanted` variant that can run here: ({label: Autoencoder}, {label: reason it was skipped})."""
    from edgeae.errors import EdgeAEError

    loaded, skipped = {}, {}
    for variant in filter(wanted, candidate_variants(threads)):
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


def interleaved_rows(fns: dict[str, Callable[[], object]], warmup: int = 3, min_reps: int = 10,
                     max_reps: int = 300, budget_s: float = 2.0, block: int = 5) -> dict[str, dict]:
    """time_call's statistics for several callables timed in the same rounds (tuning.interleaved_times: in each
    round every callable runs one untimed call then `block` timed ones, the order rotating), so that load from
    other processes on a shared machine falls on all of them alike and their ratios stay fair. Reps per
    callable: as many as fit in budget_s, within [min_reps, max_reps], rounded up to whole blocks."""
    from edgeae.runtime.tuning import interleaved_times

    for fn in fns.values():
        for _ in range(warmup):
            fn()
    t0 = time.perf_counter()
    for fn in fns.values():
        fn()
    round_s = max(time.perf_counter() - t0, 1e-6)
    reps = min(max_reps, max(min_reps, budget_s * len(fns) / round_s))
    rows = {}
    for name, times in interleaved_times(fns, math.ceil(reps / block), warmup=0, block=block).items():
        p50, p90, p99 = np.percentile(times, [50, 90, 99])
        rows[name] = {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": float(np.mean(times)),
                      "reps": len(times), "interleaved_block": block}
    return rows


def random_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Uniform [0, 1) float32 input: never time on zeros (kernels may shortcut them)."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def full_model(ae: Autoencoder, x: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: ae.reconstruct_batch(x)


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
    """Encoder, decoder (fed the reference latent) and full model (reconstruct_batch: the fused graph where the
    form has one) against reference outputs."""
    rows = []
    latent = ae.encode_batch(x)
    for part, got, ref in (("encoder", latent, ref_latent), ("decoder", ae.decode_batch(ref_latent), ref_image),
                           ("full", ae.reconstruct_batch(x), ref_image)):
        if part == "full" and ae.info.rounded_latent:
            rows.append(_rounded_full(ae, latent, ref_latent, got))
            continue
        stats = error_stats(got, ref)
        rows.append({"part": part, **stats, "passed": within_tolerance(stats, precision)})
    return rows


# A codec's encoder output is rounded: where the reference's float latent lies within float error of a
# half-integer, another backend may round it the other way. That is expected, and rare.
MAX_LATENT_FLIP_FRACTION = 1e-4


def _rounded_full(ae: Autoencoder, latent: np.ndarray, ref_latent: np.ndarray, got: np.ndarray) -> dict:
    """The full path of a codec (encode → rint → decode; `got`, from the encoder's `latent`) against the same
    decoder fed the reference's rounded latent: the two differ only where rounding flipped (`latent_flips`),
    which passes when rare."""
    ref_int = np.rint(ref_latent)
    flips = int(np.count_nonzero(np.rint(latent) != ref_int))
    stats = error_stats(got, ae.decode_batch(ref_int))
    return {"part": "full", **stats, "latent_flips": flips,
            "passed": bool(flips <= MAX_LATENT_FLIP_FRACTION * ref_int.size)}


# What `edgeae bench --backends` chooses from: the candidates' backends, and "tuned" for the tuned default.
BENCH_BACKENDS = ("onnxruntime", "opencv-dnn", "tensorrt", "tuned")
REFERENCE = "onnxruntime-cpu fp32"


def parse_shapes(text: str) -> list[tuple[int, int, int, int]]:
    """'1x3x576x768,8x3x32x32' (trtexec's NxCxHxW) → [(1, 3, 576, 768), (8, 3, 32, 32)]."""
    from edgeae.errors import EdgeAEError

    shapes = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise EdgeAEError(f"shape {item.strip()!r} is not NxCxHxW in positive integers; write e.g. 1x3x576x768")
        shapes.append(tuple(int(p) for p in parts))
    return shapes


def check_backends(backends: tuple[str, ...]) -> None:
    from edgeae.errors import EdgeAEError

    unknown = [b for b in backends if b not in BENCH_BACKENDS]
    if unknown:
        raise EdgeAEError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BENCH_BACKENDS)}")


def check_shapes(shapes: list[tuple[int, int, int, int]], info: ModelInfo, run_dir: Path) -> None:
    """Refuse shapes the model cannot take, before anything is timed."""
    from edgeae.errors import EdgeAEError

    s = info.downsample
    for n, c, h, w in shapes:
        if c != 3 or h % s or w % s:
            raise EdgeAEError(f"shape {n}x{c}x{h}x{w} does not fit {run_dir}: it takes 3 channels (RGB) and sides "
                              f"that are multiples of {s}")


def device_bench(run_dir: str | os.PathLike, quick: bool = False, threads: int = 0,
                 backends: tuple[str, ...] | None = None, shapes: list[tuple[int, int, int, int]] | None = None,
                 warmup: int | None = None, iterations: int | None = None, progress: bool = False) -> dict:
    """Every runnable backend on this device, and the tuned default (`Autoencoder.load(RUN)`): latency, and
    agreement with ONNX Runtime fp32; with the CPU and what the tuner timed.

    backends: names from BENCH_BACKENDS (None: all); shapes: NCHW inputs (None: latency_shapes(quick));
    warmup: untimed calls per shape; iterations: exactly this many timed calls per shape (None: as many as
    fit the time budget); progress: a progress bar on stderr.
    """
    from tqdm import tqdm

    from edgeae.errors import EdgeAEError

    run_dir = Path(run_dir)
    threads = threads or machine_threads()
    check_backends(backends or ())
    measure = set(backends or BENCH_BACKENDS)
    shapes = shapes or [(n, 3, h, w) for n, h, w in latency_shapes(quick)]
    pin_threads(threads)
    loaded, skipped = open_variants(run_dir, threads, lambda v: v.backend in measure or v.label == REFERENCE)
    if REFERENCE not in loaded:
        raise EdgeAEError(f"{run_dir} has no runnable encoder.onnx/decoder.onnx ({skipped.get(REFERENCE)})")
    reference = loaded[REFERENCE]
    check_shapes(shapes, reference.info, run_dir)
    tuned, tuned_precision = open_tuned(run_dir)
    loaded[TUNED] = tuned
    backend_of = {v.label: v.backend for v in candidate_variants(threads)} | {TUNED: "tuned"}
    measured = {label: ae for label, ae in loaded.items() if backend_of[label] in measure}
    timing_options = {"warmup": (2 if quick else 5) if warmup is None else warmup,
                      "min_reps": iterations or (5 if quick else 10), "max_reps": iterations or 300,
                      "budget_s": 0.0 if iterations else (0.3 if quick else 2.0)}
    results: dict[str, dict] = {label: {"skipped": reason} for label, reason in skipped.items()}
    with tqdm(total=len(measured) * len(shapes), desc="bench", unit="run", disable=not progress) as bar:
        for label, ae in measured.items():
            precision = tuned_precision if label == TUNED else label.split()[-1]
            rows = []
            for shape in shapes:
                bar.set_postfix_str(f"{label} {'x'.join(map(str, shape))}")
                x = random_input(shape)
                ref_latent = reference.encode_batch(x)
                parity = compare_parts(ae, x, ref_latent, reference.decode_batch(ref_latent), precision)
                timing = time_call(full_model(ae, x), **timing_options)
                rows.append({"shape": list(x.shape), **timing, "items_per_s": shape[0] * 1000 / timing["p50_ms"],
                             "parity": parity})
                bar.update()
            results[label] = {"precision": precision, "form": ae.describe(), "rows": rows}
    tuned_form = tuned.describe()
    for ae in loaded.values():
        ae.close()
    ordered = {v.label: results[v.label] for v in candidate_variants(threads) if v.label in results}
    if TUNED in results:
        ordered[TUNED] = results[TUNED]
    return {"run": str(run_dir), "threads": threads, "cpu": cpu_info().describe(), "reference": REFERENCE,
            "tuned": tuned_form, "tuning": tuning_summary(run_dir), "variants": ordered}


def format_tuning_summary(tuning: dict) -> list[str]:
    if "skipped" in tuning:
        return [f"tuning: none ({tuning['skipped']})"]
    shapes = ["x".join(map(str, s)) for s in tuning["shapes"]]
    lines = [f"tuning ({TUNING_FILE}, {tuning['created']}, {tuning['seconds']} s): every candidate, median ms",
             *candidate_table(tuning["stages"], shapes, tuning["winner"]["label"], indent="  ")]
    lines.append(f"  picked {tuning['winner']['label']} ({tuning['speedup_vs_baseline']:.2f}× the untuned default)")
    lines.append(f"  int8 {'picked' if tuning['int8']['picked'] else 'not picked'}: {tuning['int8']['reason']}")
    return lines


def format_device_bench(report: dict) -> str:
    lines = [f"edgeae bench {report['run']}: {report['threads']} threads, parity against {report['reference']}",
             f"cpu: {report['cpu']}", f"{TUNED}: {report['tuned']}", *format_tuning_summary(report["tuning"]),
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
