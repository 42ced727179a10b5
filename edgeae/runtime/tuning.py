"""Per-device tuning: time the exact, equivalent forms of a run's model on this machine and keep the fastest.

Which form is fastest depends on the CPU (measured at 576×768 on 2 threads: on an AVX2-only EPYC one ConvTranspose
session with spinning on took 28.1 ms, the Conv+DepthToSpace decoder in two sessions 39.8 ms; on an AVX-512 Xeon
the rewrite won), so the choice is made where the model runs, the way TensorRT's builder times tactics on the
device. Candidates are backend (ONNX Runtime; OpenVINO when installed) × form (decoder layers as ConvTranspose,
Conv+DepthToSpace or the 2×2 phase Conv; one fused session or encoder and decoder sessions) × settings
(intra-op threads, spinning, graph optimisation),
plus int8 where its files exist and its output stays within the int8 PSNR bound. Then the winner's throughput
with 1, 2, … calls at once (streams, the cores split between them): a video file's frames may be in flight
together, and `edgeae run` on files loads the winner with the streams that gave the most frames per second. The search is greedy, stage by
stage, each stage re-timing the incumbent beside its challengers in interleaved rounds (lower quartiles), so that
background load falls on all of them alike and counts as little as it can; candidates are scored on frames. The
candidates that end within 10 % of the fastest are timed again in a runoff of their own, and the pick comes from it.

RUN/tuning.json records the key (sha256 of every ONNX file timed, CPU model and ISA flags, runtime versions,
usable cores), the winner, the best candidate per backend and precision, and every candidate's timing.
`Autoencoder.load(RUN)` uses it while the key still matches this machine; otherwise it logs why and keeps
today's defaults (encoder.onnx + decoder.onnx, two sessions, spinning off).

    python -m edgeae.runtime.tuning MODEL_DIR [--seconds 20] [--backend onnxruntime --backend openvino] [--if-stale]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgeae.config import atomic_write_json
from edgeae.errors import EdgeAEError
from edgeae.runtime.quality import psnr_float
from edgeae.runtime.run_files import DECODER_FORMS, TUNING_FILE, decoder_form_name, fused_name, onnx_name

log = logging.getLogger("edgeae.runtime")

SIDECAR_FORMAT = 1
# Real frame sizes, and one 32×32 crop: per-call overhead decides there, arithmetic on frames, and the forms'
# ranking changes with size. A candidate's score weighs each shape alike (see Measured.score).
TIMING_SHAPES = ((1, 3, 32, 32), (1, 3, 480, 640), (1, 3, 576, 768))
TUNABLE_BACKENDS = ("onnxruntime", "openvino")
# The greedy stages' share (each gets rounds by what is left, at least TuneConfig.min_rounds); the small-input stage,
# the runoff and the throughput stage come on top: 32-48 s in all on the 2-core EPYC, 56 s for the heavier shallow
# denoiser on a busy machine where 2 stages were timed again (make bench, 2026-11-28). The
# stages only screen: the runoff re-times what they left close, so 2 rounds each were enough where 3 cost a quarter
# more.
DEFAULT_BUDGET_S = 20.0
# The ISA extensions that decide which kernels run; int8 has a fast path only with the INT8_ISA ones
# (x86 VNNI/AMX, Arm dot-product/i8mm).
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "asimdhp", "i8mm",
             "sve", "sve2", "bf16")
INT8_ISA = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
# int8 gives up accuracy, so it must win clearly, not by timing noise: 10 % faster than the best fp32 form.
INT8_MIN_SPEEDUP = 1.1
FORM_TEXT = {"depth_to_space": "Conv+DepthToSpace decoder", "conv_transpose": "ConvTranspose decoder",
             "phase": "2×2 phase Conv+DepthToSpace decoder"}

_warned: set[str] = set()  # sidecars already reported as stale in this process


# ---------------------------------------------------------------------------------------------- the machine

@dataclass(frozen=True)
class CpuInfo:
    model: str
    isa: tuple[str, ...]  # the ISA_FLAGS this CPU has, in ISA_FLAGS order

    @property
    def int8_fast_path(self) -> bool:
        return any(f in self.isa for f in INT8_ISA)

    def describe(self) -> str:
        """'AMD EPYC; AVX2, FMA; no AVX-512; no VNNI/AMX (int8 has no fast path)'."""
        major = [f.upper().replace("_", "-") for f in self.isa if f in ("avx2", "fma", "avx512f", "asimd", "sve")]
        int8 = [f.upper().replace("_", "-") for f in self.isa if f in INT8_ISA + ("amx_bf16",)]
        parts = [self.model, ", ".join(major) or "no AVX2/NEON"]
        if "avx2" in self.isa and "avx512f" not in self.isa:
            parts.append("no AVX-512")
        parts.append(", ".join(int8) if int8 else "no VNNI/AMX/dot-product (int8 has no fast path)")
        return "; ".join(parts)


def cpu_info(cpuinfo: str | None = None) -> CpuInfo:
    """CPU model name and ISA flags from /proc/cpuinfo (x86 "model name"/"flags", Arm "Features")."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    model = fields.get("model name") or fields.get("hardware") or fields.get("model") or platform.processor() \
        or platform.machine()
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    return CpuInfo(model=model, isa=tuple(f for f in ISA_FLAGS if f in flags))


def machine_threads() -> int:
    """Cores this process may run on (the affinity mask, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def runtime_version(backend: str) -> str | None:
    """The installed version of a tunable backend's library (its module is named like the backend), None where
    it is not installed. Package metadata first: checking a sidecar must not import OpenVINO into every load."""
    try:
        return importlib.metadata.version(backend)
    except importlib.metadata.PackageNotFoundError:  # e.g. onnxruntime-gpu: the module's own version
        pass
    try:
        return str(__import__(backend).__version__)
    except Exception:  # not installed, or a broken install: either way it cannot run the tuned choice
        return None


# ---------------------------------------------------------------------------------------------- candidates

@dataclass(frozen=True)
class Candidate:
    """One way to run the model: backend, precision, form and settings, and the files it loads.

    encoder/decoder are loaded in every form (encode/decode, compression); `fused`, when set, is the one
    graph reconstruct_batch runs instead of the two."""

    backend: str
    precision: str
    decoder_form: str
    encoder: str
    decoder: str
    fused: str = ""
    options: dict = field(default_factory=dict, hash=False, compare=False)
    options_key: tuple = ()

    @classmethod
    def make(cls, backend: str, precision: str, decoder_form: str, encoder: str, decoder: str, fused: str = "",
             **options) -> "Candidate":
        return cls(backend, precision, decoder_form, encoder, decoder, fused, dict(options), tuple(sorted(options.items())))

    def with_options(self, **changes) -> "Candidate":
        return Candidate.make(self.backend, self.precision, self.decoder_form, self.encoder, self.decoder, self.fused,
                              **{**self.options, **changes})

    @property
    def files(self) -> tuple[str, ...]:
        return (self.encoder, self.decoder) + ((self.fused,) if self.fused else ())

    @property
    def label(self) -> str:
        settings = " ".join(f"{k}={_setting(v)}" for k, v in self.options_key) or "default settings"
        return f"{self.backend} {self.precision} {'fused' if self.fused else 'two sessions'} {self.decoder_form} {settings}"

    def describe(self) -> str:
        """'onnxruntime fp32, one fused session, ConvTranspose decoder, threads 2, spinning on, optimization all'."""
        sessions = "one fused session" if self.fused else "encoder + decoder sessions"
        settings = ", ".join(f"{k} {_setting(v)}" for k, v in self.options_key) or "default settings"
        return f"{self.backend} {self.precision}, {sessions}, {FORM_TEXT.get(self.decoder_form, self.decoder_form)}, {settings}"

    def to_dict(self) -> dict:
        return {"label": self.label, "backend": self.backend, "precision": self.precision,
                "decoder_form": self.decoder_form, "encoder": self.encoder, "decoder": self.decoder,
                "fused": self.fused, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, data: dict) -> "Candidate":
        return cls.make(data["backend"], data["precision"], data["decoder_form"], data["encoder"], data["decoder"],
                        data.get("fused", ""), **data.get("options", {}))


def _setting(value) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def decoder_files(run_dir: Path, default_form: str) -> dict[str, str]:
    """Decoder form → fp32 file: decoder.onnx holds `default_form`, decoder.{form}.onnx any other export wrote."""
    files = {default_form: onnx_name("decoder")}
    for form in DECODER_FORMS:
        if form not in files and (run_dir / decoder_form_name(form)).is_file():
            files[form] = decoder_form_name(form)
    return files


def structure_candidates(run_dir: Path, backend: str, default_form: str, **options) -> list[Candidate]:
    """Every fp32 form the run folder holds: each decoder form in two sessions, and fused where exported."""
    out = []
    for form, decoder in decoder_files(run_dir, default_form).items():
        out.append(Candidate.make(backend, "fp32", form, onnx_name("encoder"), decoder, **options))
        if (run_dir / fused_name(form)).is_file():
            out.append(Candidate.make(backend, "fp32", form, onnx_name("encoder"), decoder, fused_name(form), **options))
    return out


# ---------------------------------------------------------------------------------------------- timing

def timing_inputs(shapes=TIMING_SHAPES, seed: int = 0) -> list[np.ndarray]:
    """Image-like frames (smooth colour fields plus fine noise in [0, 1]), never zeros: kernels may shortcut
    zeros, and int8's accuracy is judged on these too."""
    import cv2

    rng = np.random.default_rng(seed)
    batches = []
    for n, c, h, w in shapes:
        coarse = rng.random((max(1, h // 32), max(1, w // 32), c), dtype=np.float32)
        smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, c)
        image = np.clip(smooth + 0.05 * rng.standard_normal((h, w, c), dtype=np.float32), 0, 1)
        batches.append(np.ascontiguousarray(np.broadcast_to(image.transpose(2, 0, 1), (n, c, h, w)), dtype=np.float32))
    return batches


def interleaved_medians(fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 1,
                        block: int = 1) -> dict[str, float]:
    """Median ms of each callable, all of them timed in turn within every round (the order rotating), so that
    load from other processes falls on every candidate alike; block as in interleaved_times."""
    return {name: float(np.median(t)) for name, t in interleaved_times(fns, rounds, warmup, block).items()}


def lower_quartiles(fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 1,
                    block: int = 1) -> dict[str, float]:
    """The tuner's statistic: each callable's lower-quartile ms over interleaved rounds. Load from other processes
    only ever adds time, and it hurts a 2-thread candidate more than a 1-thread one (it waits for the busy core),
    so on a shared machine medians picked threads=1 where an idle device runs 2 threads faster (make bench,
    2026-11-28); the lower quartile estimates the unloaded cost and is steadier than the minimum."""
    return {name: float(np.percentile(t, 25)) for name, t in interleaved_times(fns, rounds, warmup, block).items()}


def interleaved_times(fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 1,
                      block: int = 1) -> dict[str, list[float]]:
    """Every round's ms of each callable, all of them timed in turn within every round (the order rotating).
    block > 1: each turn is one untimed call and then `block` timed ones. The untimed call absorbs what the
    previous callable left behind: PyTorch's OpenMP threads keep spinning after a call and slowed the next
    runtime's call at 576×768 from 27.7 to 32.0 ms (AMD EPYC, 2 threads, 2026-11-28); with blocks of 5 it
    measured 28.1 ms, its time when run alone."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if block > 1:
                fns[name]()
            for _ in range(block):
                start = time.perf_counter_ns()
                fns[name]()
                times[name].append((time.perf_counter_ns() - start) / 1e6)
    return times


def shape_key(shape) -> str:
    return "x".join(map(str, shape))


FRAME_MIN_PIXELS = 64 * 64
SMALL_STAGE = "small inputs"
# 2 timed calls per round: 120 samples per candidate, enough for a lower quartile of sub-millisecond calls; 200 rounds
# made this stage the tuner's longest (13-15 s of 19 candidates), 100 still 6-8 s, and a tune must stay well under a
# minute.
SMALL_ROUNDS = 60


def is_small(shape) -> bool:
    """Inputs under FRAME_MIN_PIXELS (a 32×32 crop): the tuner's small-input pick runs them (see winner_small)."""
    return shape[-2] * shape[-1] < FRAME_MIN_PIXELS


def scored_shapes(inputs: list[np.ndarray]) -> list[str]:
    """The shape keys a candidate's score weighs: the frames (at least 64×64), or every shape where none is one."""
    frames = [shape_key(x.shape) for x in inputs if x.shape[2] * x.shape[3] >= FRAME_MIN_PIXELS]
    return frames or [shape_key(x.shape) for x in inputs]


# ---------------------------------------------------------------------------------------------- the sidecar

def sidecar_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / TUNING_FILE


def sidecar_key(run_dir: Path, files, backends) -> dict:
    """What the timings depend on: the exact files, the CPU, the runtimes, the usable cores."""
    from edgeae.runtime.engine_cache import sha256_file

    cpu = cpu_info()
    return {"sources": {f: sha256_file(run_dir / f) if (run_dir / f).is_file() else None for f in sorted(files)},
            "cpu": cpu.model, "isa": list(cpu.isa), "nproc": machine_threads(),
            "runtimes": {b: runtime_version(b) for b in sorted(backends)}}


def stale_reason(run_dir: Path, sidecar: dict) -> str | None:
    """None while `sidecar` was tuned for exactly these files on this kind of machine; else what changed."""
    old = sidecar.get("key")
    if sidecar.get("format") != SIDECAR_FORMAT or not isinstance(old, dict):
        return "written by another edgeae version"
    now = sidecar_key(run_dir, set(old.get("sources", {})) | key_files(run_dir), old.get("runtimes", {}))
    changed = [f"{name} changed" for name, digest in now["sources"].items() if digest != old["sources"].get(name)]
    if now["cpu"] != old.get("cpu") or now["isa"] != old.get("isa"):
        changed.append(f"tuned on {old.get('cpu')}, this CPU is {now['cpu']}")
    # A tuned runtime missing here (a server's venv without OpenVINO) only takes its candidates out of the choice
    # (available_entries); one installed in another version, or none installed at all, makes the timings stale.
    changed += [f"{b} {v} was {old['runtimes'].get(b)}" for b, v in now["runtimes"].items()
                if v is not None and v != old["runtimes"].get(b)]
    if now["runtimes"] and all(v is None for v in now["runtimes"].values()):
        changed.append(f"none of the tuned runtimes ({', '.join(now['runtimes'])}) is installed here")
    if now["nproc"] != old.get("nproc"):
        changed.append(f"tuned with {old.get('nproc')} usable cores, this process has {now['nproc']}")
    return "; ".join(changed) or None


def read_sidecar(run_dir: str | os.PathLike) -> tuple[dict | None, str]:
    """(the valid sidecar or None, why not): no file, unreadable, or stale for this machine."""
    run_dir, path = Path(run_dir), sidecar_path(run_dir)
    if not path.is_file():
        return None, f"no {TUNING_FILE}"
    try:
        sidecar = json.loads(path.read_text())
        reason = stale_reason(run_dir, sidecar)
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as e:
        reason = f"unreadable ({type(e).__name__}: {e})"
    if reason is None:
        return sidecar, ""
    return None, f"{path} is stale ({reason})"


def tuned_candidate(run_dir: str | os.PathLike, backend: str | None = None,
                    precision: str | None = None, small_inputs: bool = False) -> tuple[Candidate | None, str]:
    """The candidate RUN/tuning.json picks for this request, and a note saying so (or why there is none: no
    sidecar, a stale one, none of that backend/precision). No backend and no precision: the overall winner
    (small_inputs: the pick for inputs under FRAME_MIN_PIXELS, where that is another candidate, else None)."""
    sidecar, reason = read_sidecar(run_dir)
    if sidecar is None:
        if reason.startswith(str(run_dir)) and reason not in _warned:  # a stale file, not a missing one
            _warned.add(reason)
            log.warning("%s; using the untuned defaults — rerun 'edgeae build %s --backend onnxruntime'", reason, run_dir)
        return None, f"untuned: {reason.replace(str(run_dir) + os.sep, '')}"
    installed = {b for b, v in sidecar["key"]["runtimes"].items() if runtime_version(b) is not None}
    winner = sidecar["winner"] if sidecar["winner"]["backend"] in installed else None
    if small_inputs:
        small = sidecar.get("winner_small")
        if backend is not None or precision is not None or not small or small["backend"] not in installed \
                or winner is None or small["label"] == winner["label"]:
            return None, "frames' form"
        return Candidate.from_dict(small), f"tuned here for inputs under {FRAME_MIN_PIXELS} pixels"
    if backend is None and precision is None and winner is not None:
        entry = winner
    else:  # a named backend/precision, or the winner's runtime is not installed here: the best of what can run
        int8_ok = precision == "int8" or sidecar["int8"]["picked"]  # a refused int8 runs only when asked for by name
        group = [e for e in sidecar["best"].values() if backend in (None, e["backend"]) and e["backend"] in installed
                 and precision in (None, e["precision"]) and (e["precision"] != "int8" or int8_ok)]
        if not group:
            return None, f"untuned: {TUNING_FILE} has no {backend or ''} {precision or ''} candidate".replace("  ", " ")
        entry = min(group, key=lambda e: e["score"])
    timing = ", ".join(f"{v:.1f} ms at {k}" for k, v in entry["ms"].items())
    return Candidate.from_dict(entry), f"tuned here ({TUNING_FILE}: {timing})"


def tuned_streams(run_dir: str | os.PathLike, form: Candidate | None) -> int:
    """Streams for `form` when frames are run for throughput: what the tuner's throughput stage picked for it
    (only the winner is measured there), else 1."""
    if form is None:
        return 1
    measured = (read_sidecar(run_dir)[0] or {}).get("throughput") or {}
    return int(measured.get("streams", 1)) if measured.get("label") == form.label else 1


def form_text(form: Candidate | None, backend: str, precision: str, paths, options: dict, note: str) -> str:
    """Autoencoder.describe(): what runs, and whether it was tuned on this machine."""
    if form is not None:
        text = form.with_options(**options).describe()
    else:
        settings = ", ".join(f"{k} {_setting(v)}" for k, v in sorted(options.items())) or "default settings"
        text = f"{backend} {precision}, encoder + decoder sessions ({', '.join(Path(p).name for p in paths)}), {settings}"
    return f"{text}; {note}" if note else text


# ---------------------------------------------------------------------------------------------- the search

@dataclass
class Measured:
    """One candidate's times in one stage (lower quartiles, ms). score: the geometric mean over the scored shapes of
    its ms over the untuned default's ms in the same stage (0.8 = 1.25× faster). Relative to a reference timed in
    the same rounds, it compares fairly across stages. Scored shapes are the frames (see scored_shapes): what a
    camera runtime runs; a 32×32 crop is timed and recorded, and is scored only where no frame is timed."""

    candidate: Candidate
    stage: str
    ms: dict[str, float]
    score: float

    def to_dict(self) -> dict:
        return {**self.candidate.to_dict(), "stage": self.stage, "ms": self.ms, "score": round(self.score, 4)}


# A stage on a machine busy with other work is timed again, once. A burst of load during the 4-s threads stage (the
# baseline 1.4× its time in the stage before, 2026-11-28) made threads=1 win, as load hurts 2-thread calls more, and
# OpenVINO was then timed on 1 thread only: the pick came out 1.4× the baseline where 1.8-2.0× was there to take.
BUSY_SLOWDOWN = 1.2

# Untimed calls per model and frame size before timing it there: OpenVINO's fused graph was still ~17 % slow on its
# second and third call at 480×640 after loading (20.5 vs 17.5 ms lower quartile, AMD EPYC, 2026-11-28), where two
# sessions were not. The runoff, the bench's re-timing and its denoise section use it.
NEW_SIZE_WARMUP = 3

# Each candidate's turn in a round: one untimed call, then TIMING_BLOCK timed ones (interleaved_times). Timed one
# call at a time, a candidate ran right after another's session, whose threads were still spinning: ONNX Runtime
# candidates with spinning on measured about twice their time (53 vs 27 ms at 480×640, make bench 2026-11-28),
# and the pick then trailed the best candidate by 12 % when re-timed.
TIMING_BLOCK = 2


@dataclass(frozen=True)
class TuneConfig:
    budget_s: float = DEFAULT_BUDGET_S
    backends: tuple[str, ...] = TUNABLE_BACKENDS
    shapes: tuple[tuple[int, int, int, int], ...] = TIMING_SHAPES
    min_rounds: int = 2
    max_rounds: int = 20


class Tuner:
    """Loads candidates as the runtime will run them and times them in stages; holds what it found."""

    def __init__(self, run_dir: Path, cfg: TuneConfig):
        self.run_dir, self.cfg = run_dir, cfg
        self.inputs = timing_inputs(cfg.shapes)
        self.deadline = time.perf_counter() + cfg.budget_s
        self.stages: list[dict] = []
        self.measured: list[Measured] = []
        self.skipped: dict[str, str] = {}
        self.loaded: dict[Candidate, object] = {}
        self.baseline = baseline_candidate(run_dir)  # the reference every stage times and scores against
        self.baseline_fastest: dict[str, float] = {}  # its fastest ms per shape so far: how busy a stage's machine was
        self.reference = [self.load(self.baseline).reconstruct_batch(x) for x in self.inputs]  # int8 is judged on these

    def load(self, candidate: Candidate):
        """Autoencoder.load with that form, kept open until it loses a stage."""
        if candidate not in self.loaded:
            from edgeae.runtime.autoencoder import Autoencoder

            self.loaded[candidate] = Autoencoder.load(self.run_dir, form=candidate)
        return self.loaded[candidate]

    def ready(self, candidates: list[Candidate]) -> list[Candidate]:
        """The baseline and every candidate that loads; one that cannot is recorded as skipped with the reason."""
        ready = [self.baseline]
        for candidate in dict.fromkeys(c for c in candidates if c != self.baseline):
            try:
                self.load(candidate)
                ready.append(candidate)
            except (EdgeAEError, ImportError, RuntimeError, TypeError) as e:
                self.skipped[candidate.label] = str(e)
        return ready

    def record(self, name: str, ready: list[Candidate], inputs: list[np.ndarray], rounds: int, warmup: int,
               began: float, retry: bool = True, **stage_fields) -> list[Measured]:
        """Time `ready` on `inputs` in interleaved rounds (lower quartiles), score each against the baseline on the
        scored shapes, and record the stage with its seconds since `began`; returns its candidates fastest first.
        Where the baseline ran BUSY_SLOWDOWN× slower than its fastest stage so far, the machine was busy: the stage
        is kept in the record, marked busy, and timed once more."""
        ms: dict[Candidate, dict[str, float]] = {c: {} for c in ready}
        for x in inputs:
            quartiles = lower_quartiles({c: (lambda ae=self.loaded[c], x=x: ae.reconstruct_batch(x)) for c in ready},
                                        rounds, warmup=warmup, block=TIMING_BLOCK)
            for c in ready:
                ms[c][shape_key(x.shape)] = round(quartiles[c], 4)
        ref, scored = ms[self.baseline], scored_shapes(inputs)
        measured = sorted((Measured(c, name, m, float(np.exp(np.mean([np.log(m[k] / ref[k]) for k in scored]))))
                           for c, m in ms.items()), key=lambda m: m.score)
        stage = {"stage": name, "rounds": rounds, **stage_fields, "seconds": round(time.perf_counter() - began, 1),
                 "candidates": [m.to_dict() for m in measured]}
        slowdown = self.slowdown({shape_key(x.shape): ref[shape_key(x.shape)] for x in inputs if not is_small(x.shape)})
        self.baseline_fastest.update({k: min(v, self.baseline_fastest.get(k, v)) for k, v in ref.items()})
        if retry and slowdown > BUSY_SLOWDOWN:
            self.stages.append({**stage, "busy": f"the baseline ran {slowdown:.2f}× its fastest: timed again"})
            return self.record(name, ready, inputs, rounds, warmup, time.perf_counter(), retry=False, **stage_fields)
        self.stages.append(stage)
        self.measured += measured
        return measured

    def slowdown(self, baseline_ms: dict[str, float]) -> float:
        """The baseline's ms at frame sizes over its fastest there in earlier stages, geometric mean (1.0 where none
        was timed before; small inputs are left out by the caller: sub-millisecond calls vary too much to tell load by)."""
        shared = [k for k in baseline_ms if k in self.baseline_fastest]
        return float(np.exp(np.mean([np.log(baseline_ms[k] / self.baseline_fastest[k]) for k in shared]))) if shared else 1.0

    def stage(self, name: str, candidates: list[Candidate], stages_left: int, keep: tuple[Candidate, ...] = ()) -> Measured:
        """Time `candidates` and the baseline within this stage's share of the budget; returns the fastest."""
        began = time.perf_counter()
        ready = self.ready(candidates)
        start = time.perf_counter()
        for candidate in ready:  # warm-up, which also tells what one round costs
            for x in self.inputs:
                self.loaded[candidate].reconstruct_batch(x)
        share = max(0.0, self.deadline - time.perf_counter()) / max(1, stages_left)
        per_round = (time.perf_counter() - start) * (1 + TIMING_BLOCK)  # an untimed call, then TIMING_BLOCK timed
        rounds = int(min(self.cfg.max_rounds, max(self.cfg.min_rounds, share / max(per_round, 1e-6))))
        measured = self.record(name, ready, self.inputs, rounds, warmup=0, began=began)
        for candidate in [c for c in self.loaded if c not in (self.baseline, measured[0].candidate, *keep)]:
            self.loaded.pop(candidate).close()
        return measured[0]

    def small_stage(self, candidates: list[Candidate], rounds: int = SMALL_ROUNDS) -> Measured | None:
        """Time `candidates` and the baseline on the small inputs only (many rounds: a call takes under a
        millisecond, where one round's noise decides). Recorded as stage "small inputs", which the frame
        winner never comes from (best_per_group skips it); returns the fastest there."""
        small = [x for x in self.inputs if is_small(x.shape)]
        if not small:
            return None
        began = time.perf_counter()
        measured = self.record(SMALL_STAGE, self.ready(candidates), small, rounds, NEW_SIZE_WARMUP, began=began,
                               shapes=[shape_key(x.shape) for x in small])
        return measured[0]

    def close(self) -> None:
        for ae in self.loaded.values():
            ae.close()
        self.loaded.clear()


def int8_bound(run_dir: Path) -> float:
    """The PSNR (dB, against fp32) int8 must keep: the bound its files were built against, else the runtime's."""
    try:
        return float(json.loads((run_dir / "quantize_config.json").read_text())["psnr_min"])
    except (OSError, ValueError, KeyError, TypeError):
        from edgeae.runtime.benchmark import TOLERANCES

        return float(TOLERANCES["int8"]["psnr_db"])


def int8_candidate(tuner: Tuner, fp32: Candidate) -> tuple[Candidate | None, str]:
    """The int8 candidate (two sessions, fp32's settings) if its files exist and its PSNR against fp32 on the
    timing frames is within the bound; else None and why."""
    names = (onnx_name("encoder", "int8"), onnx_name("decoder", "int8"))
    missing = [n for n in names if not (tuner.run_dir / n).is_file()]
    if missing:
        return None, f"{', '.join(missing)} not found, so int8 was not tried ('edgeae build RUN --precision int8' makes them)"
    candidate = Candidate.make(fp32.backend, "int8", "depth_to_space", *names, **fp32.options)
    try:
        ae = tuner.load(candidate)
    except (EdgeAEError, ImportError, RuntimeError, TypeError) as e:
        return None, f"the int8 files do not load ({e})"
    worst = min(psnr_float(ae.reconstruct_batch(x), ref) for x, ref in zip(tuner.inputs, tuner.reference))
    bound = int8_bound(tuner.run_dir)
    if worst < bound:
        tuner.loaded.pop(candidate).close()
        return None, f"int8 PSNR {worst:.1f} dB against fp32 on the timing frames is below its {bound:g} dB bound"
    return candidate, f"int8 PSNR {worst:.1f} dB against fp32, within its {bound:g} dB bound"


def int8_verdict(int8: Measured | None, fp32: Measured | None, accuracy: str, cpu: CpuInfo) -> dict:
    """Whether int8 is picked, and why (or why not) in words. int8 must be faster than the best fp32 it was
    timed against and within its accuracy bound (`accuracy` says which)."""
    no_fast_path = "" if cpu.int8_fast_path else "; this CPU has no VNNI/AMX/dot-product instructions"
    if int8 is None or fp32 is None:
        return {"picked": False, "reason": accuracy + no_fast_path}
    ratio = fp32.score / int8.score
    frames = ", ".join(f"{k}: int8 {int8.ms[k]:.1f} ms vs fp32 {fp32.ms[k]:.1f} ms" for k in int8.ms)
    timing = f"int8 {ratio:.2f}× the best fp32 ({frames}), {accuracy}"
    if ratio >= INT8_MIN_SPEEDUP:
        return {"picked": True, "reason": timing}
    why = "no VNNI/AMX/dot-product on this CPU, so int8 convolutions have no fast path" if not cpu.int8_fast_path \
        else "despite the CPU's int8 instructions"
    return {"picked": False, "reason": f"{timing}: not {INT8_MIN_SPEEDUP:g}× faster ({why})"}


def baseline_candidate(run_dir: Path) -> Candidate:
    """Today's untuned default: ONNX Runtime, encoder.onnx + decoder.onnx, default settings."""
    from edgeae.runtime.backends import backend_class

    with backend_class("onnxruntime").load(run_dir / onnx_name("decoder")) as decoder:
        form = decoder.metadata.get("edgeae.decoder_form", "conv_transpose")
    form = "depth_to_space" if "depth_to_space" in form else form
    return Candidate.make("onnxruntime", "fp32", form, onnx_name("encoder"), onnx_name("decoder"))


def openvino_unavailable() -> str | None:
    try:
        from edgeae.runtime.backends import backend_class

        backend_class("openvino")
        import openvino  # noqa: F401
    except (EdgeAEError, ImportError) as e:
        return f"not installed ({e})" if isinstance(e, ImportError) else str(e)
    return None


def search(tuner: Tuner) -> dict:
    """Greedy stages, each timing the incumbent and the untuned baseline beside its challengers:
    structure (decoder form × fused/two sessions × spinning) → threads → graph optimisation (ONNX Runtime),
    → int8 (where its files exist and it keeps its accuracy) → OpenVINO's forms (where installed)."""
    run_dir, nproc, backends, baseline = tuner.run_dir, machine_threads(), tuner.cfg.backends, tuner.baseline
    openvino_missing = openvino_unavailable() if "openvino" in backends else "not asked for"
    if "openvino" in backends and openvino_missing:
        tuner.skipped["openvino"] = openvino_missing
    left = 4 * ("onnxruntime" in backends) + (not openvino_missing)

    def stage(name: str, candidates: list[Candidate]) -> Candidate:
        nonlocal left
        won = tuner.stage(name, [incumbent, *candidates], left, keep=(incumbent,))
        left = max(1, left - 1)
        return won.candidate

    incumbent, int8, accuracy = baseline, None, "ONNX Runtime was not tuned"
    if "onnxruntime" in backends:
        forms = structure_candidates(run_dir, "onnxruntime", baseline.decoder_form, threads=nproc, optimization="all")
        # Spinning only where one session runs: with two sessions back to back, the idle session's spinning threads
        # take the cores from the running one: alone in a process, ConvTranspose two sessions took 51-56 ms at
        # 480×640 spinning and 27-28 ms not (AMD EPYC, 2 threads, 2026-11-28). Timing them only costs seconds.
        incumbent = stage("structure", [c.with_options(spinning=spin) for c in forms
                                        for spin in ((False, True) if c.fused else (False,))])
        incumbent = stage("threads", [incumbent.with_options(threads=t) for t in sorted({1, max(1, nproc // 2), nproc})])
        incumbent = stage("optimization", [incumbent.with_options(optimization=o) for o in ("basic", "extended", "all")])
        int8, accuracy = int8_candidate(tuner, incumbent)
        if int8 is not None:
            stage("int8", [int8])
    if not openvino_missing:
        stage("openvino", openvino_candidates(run_dir, baseline.decoder_form, incumbent, int8, nproc))
    if any(is_small(x.shape) for x in tuner.inputs) and not all(is_small(x.shape) for x in tuner.inputs):
        # Fused forms only, where exported: at 32×32 per-call overhead decides, and two sessions pay it twice
        # (2026-11-28, AMD EPYC: no two-session form ever won this stage). Timing all 37 forms took 34 s.
        def fused(forms: list[Candidate]) -> list[Candidate]:
            return [c for c in forms if c.fused] or forms

        small = []
        if "onnxruntime" in backends:
            forms = fused(structure_candidates(run_dir, "onnxruntime", baseline.decoder_form, optimization="all"))
            # one thread has no pool to spin: spinning on would time the same session twice
            small += [c.with_options(threads=t, spinning=spin) for c in forms for t in sorted({1, nproc})
                      for spin in ((False, True) if t > 1 else (False,))]
        if not openvino_missing:
            small += [c for t in sorted({1, nproc})
                      for c in fused(structure_candidates(run_dir, "openvino", baseline.decoder_form, threads=t))]
        tuner.small_stage(small)
    int8_measured = best(tuner.measured, precision="int8")
    fp32_measured = best([m for m in tuner.measured if int8_measured and m.stage == int8_measured.stage], precision="fp32")
    return {"int8": int8_verdict(int8_measured, fp32_measured, accuracy, cpu_info())}


def openvino_candidates(run_dir: Path, default_form: str, incumbent: Candidate, int8: Candidate | None,
                        nproc: int) -> list[Candidate]:
    """OpenVINO's forms (and int8 where ONNX Runtime's int8 files were tried) at the incumbent's threads, and at every
    core where the incumbent runs fewer: ONNX Runtime's threads stage says how ONNX Runtime scales, not OpenVINO, and
    one busy threads stage had made ONNX Runtime's 1 thread win, after which OpenVINO, timed at 1 thread only, lost
    (2026-11-28). Every core costs one more set of forms only where the threads differ."""
    counts = sorted({incumbent.options.get("threads", nproc), nproc}, reverse=True)
    candidates = [c for t in counts for c in structure_candidates(run_dir, "openvino", default_form, threads=t)]
    if int8 is not None:
        candidates += [Candidate.make("openvino", "int8", int8.decoder_form, int8.encoder, int8.decoder, threads=t)
                       for t in counts]
    return candidates


def best(measured: list[Measured], **match) -> Measured | None:
    group = [m for m in measured if all(getattr(m.candidate, k) == v for k, v in match.items())]
    return min(group, key=lambda m: m.score) if group else None


def best_per_group(stages: list[dict]) -> dict[str, dict]:
    """'backend precision' → its best candidate, from the last stage that timed that group (every stage re-times
    the incumbent, so the latest comparison is the fairest)."""
    out: dict[str, dict] = {}
    for stage in reversed(stages):
        if stage["stage"] == SMALL_STAGE or stage.get("busy"):  # small inputs only, or timed again
            continue
        for entry in stage["candidates"]:  # sorted fastest first
            out.setdefault(f"{entry['backend']} {entry['precision']}", entry)
    return out


def small_winner(tuner: Tuner, int8_picked: bool) -> dict | None:
    """Where frames and a small crop disagree: the candidate fastest in the "small inputs" stage (its ms over the
    baseline's in the same rounds), when it is not the frame winner's form. Per-call overhead decides at 32×32 and arithmetic on
    frames, so one form rarely wins both (2026-11-28, AMD EPYC: OpenVINO fused 0.61 ms at 32×32 and 23.5 ms at
    480×640, ONNX Runtime fused 0.33 ms and 29 ms). None when no small shape was timed."""
    small = [shape_key(x.shape) for x in tuner.inputs if is_small(x.shape)]
    fit = [m for m in tuner.measured if m.stage == SMALL_STAGE and (m.candidate.precision != "int8" or int8_picked)]
    if not small or len(small) == len(tuner.inputs) or not fit:
        return None
    best_small = min(fit, key=lambda m: m.score)  # relative to the baseline in the same rounds
    return {**best_small.to_dict(), "score_small": round(best_small.score, 4), "shapes": small}


# The runoff: the stages pick among a dozen candidates from 3-6 timed calls each, and the fastest of many noisy
# estimates is biased fast (a winner's curse). On the 2-core EPYC (make bench, 2026-11-28) the openvino stage had two
# sessions 8 % ahead of the fused graph, and the bench's re-timing then had it 19 % behind at 480×640. So the
# candidates within RUNOFF_MARGIN of the fastest are timed again, afresh and at length, and the pick comes from that.
# Rounds: re-timing the two OpenVINO forms 40 rounds (the fused graph 8 % ahead at 480×640, 6 % at 576×768), the ratio
# from any 8 consecutive rounds had a standard deviation of 0.03-0.04 per size; 5 rounds picked two sessions in one
# make bench of two. A call-by-call (paired) ratio was no steadier (sd 0.03-0.04 too): the noise here is within a
# round, not from round to round. 8 rounds took the runoff from 4.2 to 5.7 s (make bench, 2026-11-28).
RUNOFF_STAGE = "runoff"
RUNOFF_MARGIN = 0.10
RUNOFF_MAX = 3
RUNOFF_ROUNDS = 8


def finalists(measured: list[Measured], int8_picked: bool) -> list[Candidate]:
    """Each candidate's latest frame-stage score (every stage re-times the incumbent: its latest is the fairest); the
    ones within RUNOFF_MARGIN of the fastest, fastest first, at most RUNOFF_MAX. int8 only where it was picked."""
    latest = {m.candidate: m for m in measured if m.stage not in (SMALL_STAGE, RUNOFF_STAGE)
              and (m.candidate.precision != "int8" or int8_picked)}
    ranked = sorted(latest.values(), key=lambda m: m.score)
    return [m.candidate for m in ranked if m.score <= ranked[0].score * (1 + RUNOFF_MARGIN)][:RUNOFF_MAX] if ranked else []


def runoff(tuner: Tuner, int8_picked: bool) -> Measured | None:
    """Time the finalists (and the baseline, the stage's reference) in fresh interleaved rounds; the fastest
    finalist, or None where only one candidate was close enough to need it."""
    contenders = finalists(tuner.measured, int8_picked)
    if len(contenders) < 2:
        return None
    measured = tuner.record(RUNOFF_STAGE, tuner.ready(contenders), tuner.inputs, RUNOFF_ROUNDS, NEW_SIZE_WARMUP,
                            began=time.perf_counter(), finalists=[c.label for c in contenders])
    return next(m for m in measured if m.candidate in contenders)


# Streams serve video files, where only frames per second count (each frame's latency rises, a call getting fewer
# cores, but live cameras never run them), so any gain beyond the timing noise of a paired median is taken. On the
# 2-core EPYC the stage's rounds gave 1.00-1.37, medians 1.02-1.17 by the machine's load; no median fell below 1.
STREAMS_MIN_GAIN = 1.02
THROUGHPUT_ROUNDS = 4


def stream_counts(nproc: int) -> list[int]:
    """The stream counts the throughput stage tries: 1 (latency), 2, half and all of the cores."""
    return sorted({n for n in (1, 2, nproc // 2, nproc) if 1 <= n <= nproc})


def stream_gains(times: dict[int, list[float]]) -> dict[int, float]:
    """Each stream count's gain over 1 stream: the median over rounds of 1 stream's ms per frame over its own in the
    same round. Paired by round, so a machine that slows down between rounds moves both sides alike."""
    return {n: float(np.median(np.array(times[1]) / np.array(t))) for n, t in times.items()}


def pick_streams(gains: dict[int, float]) -> int:
    """The stream count with the largest gain over 1 stream, if that is at least STREAMS_MIN_GAIN; else 1."""
    best = max(gains, key=gains.get)
    return best if gains[best] >= STREAMS_MIN_GAIN else 1


# Frames per turn of the throughput stage: the first and last ones leave streams idle, so a turn is a run of frames.
THROUGHPUT_FRAMES = 12


def pipeline_ms_per_frame(ae, folder: Path, events: Path) -> float:
    """Wall ms per frame of `edgeae run --task reconstruct --events …` with `ae` on the image folder `folder`: the
    pipeline itself (capture thread, preprocessing, inference in flight, task, event sink), not a model of it. A
    model of it, each frame preprocessed and scored in a loop, timed 1 and 2 streams alike where `edgeae run` on
    vtest.avi gained 15-25 % from 2 (AMD EPYC, 2026-11-28): what else runs beside inference decides the gain."""
    from edgeae.runtime.pipeline import Pipeline
    from edgeae.runtime.sinks import SinkSet
    from edgeae.runtime.sources import FrameSource
    from edgeae.runtime.tasks.denoise import DenoiseTask

    source = FrameSource(str(folder), "tuning")
    sinks = SinkSet([source.name], events=str(events))
    try:
        source.start()
        summary = Pipeline(ae, [source], DenoiseTask("reconstruct"), sinks, progress=False).run()
    finally:
        sinks.close()
        source.close()
    return 1000 * summary["seconds"] / max(1, summary["frames"])


def write_frames(folder: Path, shape: tuple, count: int) -> None:
    """`count` different timing frames of `shape` as PNG files: what the throughput stage's pipeline reads."""
    import cv2

    from edgeae.runtime.preprocess import batch_to_frames

    for i, x in enumerate(timing_inputs([shape] * count, seed=1)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), batch_to_frames(x, x.shape[2:])[0])


def throughput_stage(run_dir: Path, winner: Candidate, inputs: list[np.ndarray]) -> dict | None:
    """Frames per second of `edgeae run` (pipeline_ms_per_frame) with the winner at the largest timing frame and
    1, 2, … calls at once (each call's threads = the winner's threads // streams), interleaved rounds; the pick by
    the gain over 1 stream paired by round (stream_gains). A video file's frames can be in flight together, and
    two 1-thread calls can beat one 2-thread call, whose threads wait for each other at every layer. None where the
    winner's backend runs one call at a time or one core is all there is."""
    import tempfile

    from edgeae.runtime.autoencoder import Autoencoder
    from edgeae.runtime.backends import backend_class

    counts = stream_counts(machine_threads())
    if len(counts) < 2 or not backend_class(winner.backend).runs_concurrently:
        return None
    began, x = time.perf_counter(), max(inputs, key=lambda a: a.shape[2] * a.shape[3])
    models = {n: Autoencoder.load(run_dir, form=winner, streams=n) for n in counts}
    try:
        with tempfile.TemporaryDirectory(prefix="edgeae-tune-") as tmp:
            folder = Path(tmp) / "frames"
            folder.mkdir()
            write_frames(folder, (1, *x.shape[1:]), THROUGHPUT_FRAMES)
            times: dict[int, list[float]] = {n: [] for n in counts}
            for r in range(THROUGHPUT_ROUNDS):
                for n in counts[r % len(counts):] + counts[:r % len(counts)]:
                    times[n].append(pipeline_ms_per_frame(models[n], folder, Path(tmp) / f"events-{r}-{n}.jsonl"))
    finally:
        for model in models.values():
            model.close()
    ms = {n: float(np.percentile(t, 25)) for n, t in times.items()}
    gains = stream_gains(times)
    return {"label": winner.label, "shape": shape_key(x.shape), "rounds": THROUGHPUT_ROUNDS,
            "frames": THROUGHPUT_FRAMES, "ms_per_frame": {str(n): round(v, 3) for n, v in ms.items()},
            "frames_per_s": {str(n): round(1000 / v, 1) for n, v in ms.items()},
            "gain": {str(n): round(g, 3) for n, g in gains.items()}, "streams": pick_streams(gains),
            "min_gain": STREAMS_MIN_GAIN, "seconds": round(time.perf_counter() - began, 1)}


def key_files(run_dir: Path) -> set[str]:
    """Every ONNX file the tuner considers that this run folder holds."""
    names = {onnx_name(r, p) for r in ("encoder", "decoder") for p in ("fp32", "int8")}
    names |= {decoder_form_name(f) for f in DECODER_FORMS} | {fused_name(f) for f in DECODER_FORMS}
    return {n for n in names if (run_dir / n).is_file()}


def tune(run_dir: str | os.PathLike, cfg: TuneConfig = TuneConfig(), progress: bool = True) -> dict:
    """Time this run's candidates here, write RUN/tuning.json, return it."""
    run_dir = Path(run_dir)
    if not (run_dir / onnx_name("encoder")).is_file() or not (run_dir / onnx_name("decoder")).is_file():
        raise EdgeAEError(f"{run_dir} has no encoder.onnx/decoder.onnx; run 'edgeae export {run_dir}' first")
    if not cfg.budget_s > 0:  # `not >` also refuses nan
        raise EdgeAEError(f"tuning budget must be more than 0 seconds, got {cfg.budget_s}")
    unknown = sorted(set(cfg.backends) - set(TUNABLE_BACKENDS))
    if unknown or not cfg.backends:
        raise EdgeAEError(f"cannot tune backend {', '.join(unknown) or '(none)'}; choose from {', '.join(TUNABLE_BACKENDS)}")
    start = time.perf_counter()
    tuner = Tuner(run_dir, cfg)
    try:
        result = search(tuner)
        final = runoff(tuner, result["int8"]["picked"])
    finally:
        tuner.close()
    groups = best_per_group(tuner.stages)
    winner = final.to_dict() if final else min((g for g in groups.values()
                                                if g["precision"] != "int8" or result["int8"]["picked"]),
                                               key=lambda e: e["score"])
    small = small_winner(tuner, result["int8"]["picked"])
    throughput = throughput_stage(run_dir, Candidate.from_dict(winner), tuner.inputs)
    sidecar = {
        "format": SIDECAR_FORMAT,
        "key": sidecar_key(run_dir, key_files(run_dir), {m.candidate.backend for m in tuner.measured}),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - start, 1), "budget_s": cfg.budget_s,
        "shapes": [list(s) for s in cfg.shapes], "cpu": cpu_info().describe(),
        "baseline": tuner.baseline.label, "winner": winner, "winner_small": small, "best": groups,
        "speedup_vs_baseline": round(1 / winner["score"], 3),  # scores are relative to the baseline
        "throughput": throughput, "int8": result["int8"], "unavailable": tuner.skipped, "stages": tuner.stages,
    }
    atomic_write_json(sidecar_path(run_dir), sidecar)
    _warned.clear()
    if progress:
        print(format_tuning(sidecar))
    return sidecar


def candidate_table(stages: list[dict], shapes: list[str], winner: str = "", indent: str = "") -> list[str]:
    """One line per timed candidate and stage: ms per timing shape; `winner` marked with '*'."""
    width = max((len(e["label"]) for st in stages for e in st["candidates"]), default=9)
    lines = [f"{indent}{'stage':13} {'candidate':{width}} " + " ".join(f"{s:>11}" for s in shapes)]
    for stage in stages:
        name = stage_name(stage)
        for e in stage["candidates"]:
            mark = "*" if e["label"] == winner and not stage.get("busy") else " "
            lines.append(f"{indent}{name:13}{mark}{e['label']:{width}} " + " ".join(f"{e['ms'][s]:11.2f}" if s in e["ms"] else f"{'–':>11}" for s in shapes))
    return lines


def stage_name(stage: dict) -> str:
    """'threads', or 'threads busy' for a stage timed again because the machine was busy."""
    return f"{stage['stage']} busy" if stage.get("busy") else stage["stage"]


def format_tuning(sidecar: dict) -> str:
    """The tuning report: every stage's candidates with ms per shape, then the pick and why int8 was (not) taken."""
    shapes = [shape_key(s) for s in sidecar["shapes"]]
    lines = [f"tuned on {sidecar['cpu']}, {sidecar['key']['nproc']} cores, in {sidecar['seconds']} s "
             f"(interleaved rounds, lower-quartile ms)", *candidate_table(sidecar["stages"], shapes, sidecar["winner"]["label"])]
    lines += [f"unavailable {name}: {why}" for name, why in sidecar["unavailable"].items()]
    lines += [f"{stage['stage']} busy: {stage['busy']}" for stage in sidecar["stages"] if stage.get("busy")]
    lines.append(f"picked: {sidecar['winner']['label']} ({sidecar['speedup_vs_baseline']:.2f}× the untuned default)")
    small = sidecar.get("winner_small")
    if small and small["label"] != sidecar["winner"]["label"]:
        lines.append(f"picked for inputs under {FRAME_MIN_PIXELS} pixels ({', '.join(small['shapes'])}): {small['label']}")
    lines.append(f"int8: {'picked' if sidecar['int8']['picked'] else 'not picked'} — {sidecar['int8']['reason']}")
    if sidecar.get("throughput"):
        lines.append(throughput_text(sidecar["throughput"]))
    return "\n".join(lines)


def throughput_text(throughput: dict) -> str:
    """'frames in flight (a video file), 1x3x576x768: 1 stream 33.1, 2 streams 38.4 frames/s (gain paired by
    round: 1.16× with 2): 2 streams'."""
    rates = ", ".join(f"{n} stream{'s' * (n != '1')} {fps:.1f}" for n, fps in throughput["frames_per_s"].items())
    gains = ", ".join(f"{g:.2f}× with {n}" for n, g in throughput.get("gain", {}).items() if n != "1")
    n = throughput["streams"]
    return (f"frames in flight (a video file), {throughput['shape']}: {rates} frames/s (gain paired by round: {gains}): "
            f"{n} stream{'s' * (n != 1)}")


def main(argv: list[str] | None = None) -> int:
    """`python -m edgeae.runtime.tuning MODEL_DIR`: what install.sh runs on the device."""
    parser = argparse.ArgumentParser(prog="python -m edgeae.runtime.tuning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run or model folder with encoder.onnx and decoder.onnx")
    parser.add_argument("--seconds", type=float, default=DEFAULT_BUDGET_S, help=f"time budget (default {DEFAULT_BUDGET_S:g})")
    parser.add_argument("--backend", action="append", choices=TUNABLE_BACKENDS,
                        help="backends to try (repeatable; default: each one installed here)")
    parser.add_argument("--if-stale", action="store_true",
                        help="do nothing while RUN/tuning.json still matches this machine (for a service's start)")
    args = parser.parse_args(argv)
    if args.if_stale and read_sidecar(args.run)[0] is not None:
        print(f"{sidecar_path(args.run)} matches this machine; nothing to tune")
        return 0
    try:
        tune(args.run, TuneConfig(budget_s=args.seconds, backends=tuple(args.backend or TUNABLE_BACKENDS)))
    except EdgeAEError as e:
        print(f"edgeae tuning: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
