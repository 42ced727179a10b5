"""GPU benchmark (`make bench-gpu`): PyTorch eager, PyTorch CUDA graph and ONNX Runtime CUDA (I/O binding).

    python -m benchmarks.gpu --run runs/bench-seed [--ort-dir .ortgpu] [--name bench-h100]

Timing: warm up, then many runs timed with CUDA events (PyTorch) or a
synchronised clock (ONNX Runtime), median/p90/p99, everything measured in one process on the same
inputs, ratios against PyTorch eager. Writes reports/NAME.json and reports/NAME.md. On a machine
without a CUDA GPU it exits with one line and code 2.

--ort-dir: a folder where onnxruntime-gpu was installed with `pip install --no-deps --target DIR`
(the GPU image ships the CPU build); it is put first on sys.path before onnxruntime is imported.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import platform
import sys
import time
from pathlib import Path

import numpy as np

from edgeae.config import atomic_write_bytes, atomic_write_json
from edgeae.errors import EdgeAEError
from edgeae.runtime.benchmark import error_stats, latency_shapes, random_input

# TensorRT-RTX 1.7 runs engines only on these compute capabilities (its own error message on an H100).
TRT_RTX_CAPABILITIES = ("8.0", "8.6", "8.9", "12.0", "12.1")


def cuda_torch():
    import torch

    if not torch.cuda.is_available():
        raise EdgeAEError(f"no CUDA GPU visible to torch {torch.__version__}; run 'make bench-gpu' on the GPU machine "
                          "with a CUDA build of torch (README, 'Set up and try it': make install TORCH_INDEX=…)")
    return torch


def load_model(run: Path, torch):
    """The run's trained seed model, or random weights if there is no run (latency does not depend on weights)."""
    from edgeae.training.model import Autoencoder

    if (run / "config.json").is_file():
        from edgeae.training.train import load_model as load_run

        return load_run(run)[0], f"trained weights from {run}"
    return Autoencoder().eval(), "seed architecture, random weights (no run folder given)"


def time_cuda_events(fn, torch, warmup: int, reps: int) -> list[float]:
    """Per-call GPU time in ms between CUDA events on the current stream."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for start, end in pairs:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in pairs]


def time_synchronised(fn, torch, warmup: int, reps: int) -> list[float]:
    """Per-call wall time in ms, synchronising the device after each call."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times


def stats(times: list[float], batch: int) -> dict:
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "reps": len(times),
            "items_per_s": batch * 1000 / float(p50)}


def cuda_graph(model, x, torch):
    """Capture model(x) once into a CUDA graph; returns (replay function, static output)."""
    static_x = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.inference_mode():
        for _ in range(3):  # warm up on a side stream before capture, as the CUDA graphs docs require
            model(static_x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        static_y = model(static_x)
    return graph.replay, static_y


class OrtCudaModel:
    """encoder.onnx → decoder.onnx on ONNX Runtime's CUDA provider, inputs and outputs bound to GPU tensors."""

    def __init__(self, run: Path, ort, torch):
        self.torch = torch
        providers = [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
        self.sessions = [ort.InferenceSession(str(run / f), providers=providers) for f in ("encoder.onnx", "decoder.onnx")]
        if "CUDAExecutionProvider" not in self.sessions[0].get_providers():
            raise EdgeAEError(f"ONNX Runtime {ort.__version__} did not take the CUDA provider (it has "
                              f"{', '.join(ort.get_available_providers())}); pass --ort-dir with onnxruntime-gpu")
        meta = self.sessions[0].get_modelmeta().custom_metadata_map
        self.downsample, self.latent_channels = int(meta["edgeae.downsample"]), int(meta["edgeae.latent_channels"])

    def bind(self, x) -> tuple:
        """Bindings for input x (a CUDA tensor): (callable that runs both, output tensor)."""
        torch = self.torch
        n, _, h, w = x.shape
        s = self.downsample
        latent = torch.empty((n, self.latent_channels, h // s, w // s), device="cuda", dtype=torch.float32)
        y = torch.empty_like(x)
        bindings = []
        for session, src, dst in ((self.sessions[0], x, latent), (self.sessions[1], latent, y)):
            b = session.io_binding()
            b.bind_input(session.get_inputs()[0].name, "cuda", 0, np.float32, tuple(src.shape), src.data_ptr())
            b.bind_output(session.get_outputs()[0].name, "cuda", 0, np.float32, tuple(dst.shape), dst.data_ptr())
            bindings.append((session, b))

        def run():
            for session, b in bindings:
                session.run_with_iobinding(b)
        return run, y


def import_ort(ort_dir: str | None):
    if ort_dir:
        sys.path.insert(0, str(Path(ort_dir).resolve()))
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # the CUDA/cuDNN libraries from the torch wheel, before the first CUDA session
    return ort


def tensorrt_status(torch) -> str:
    """Why no TensorRT number is in the report (engines are measured by the tensorrt backend when they can run)."""
    major, minor = torch.cuda.get_device_capability(0)
    capability = f"{major}.{minor}"
    if importlib.util.find_spec("tensorrt") is None and importlib.util.find_spec("tensorrt_rtx_bindings") is None:
        return f"no TensorRT installed on this machine (compute capability {capability})"
    if importlib.util.find_spec("tensorrt") is None and capability not in TRT_RTX_CAPABILITIES:
        return (f"TensorRT-RTX runs engines only on compute capability {', '.join(TRT_RTX_CAPABILITIES)}; "
                f"this GPU is {capability}")
    return "TensorRT engines are not measured by this script: use 'edgeae bench RUN' with engines built"


def measure(run: Path, ort_dir: str | None, quick: bool) -> dict:
    torch = cuda_torch()
    torch.backends.cudnn.benchmark = True
    cpu_model, weights = load_model(run, torch)
    model = copy.deepcopy(cpu_model).cuda()
    warmup, reps = (3, 20) if quick else (20, 300)
    rows: dict[str, list] = {"pytorch eager": [], "pytorch CUDA graph": [], "onnxruntime CUDA (I/O binding)": []}
    skipped: dict[str, str] = {"tensorrt": tensorrt_status(torch)}
    ort_model = None
    try:
        if not (run / "encoder.onnx").is_file():
            raise EdgeAEError(f"no encoder.onnx in {run}: bring the run folder (runs/bench-seed) to this machine")
        ort_model = OrtCudaModel(run, import_ort(ort_dir), torch)
    except (EdgeAEError, ImportError) as e:
        skipped["onnxruntime CUDA (I/O binding)"] = str(e)
        del rows["onnxruntime CUDA (I/O binding)"]
    for n, h, w in latency_shapes(quick):
        x_cpu = random_input((n, 3, h, w))
        with torch.inference_mode():
            reference = cpu_model(torch.from_numpy(x_cpu)).numpy()
        x = torch.from_numpy(x_cpu).cuda()
        with torch.inference_mode():
            eager = time_cuda_events(lambda: model(x), torch, warmup, reps)
            y_eager = model(x).cpu().numpy()
        replay, y_graph = cuda_graph(model, x, torch)
        graph = time_cuda_events(replay, torch, warmup, reps)
        shape = [n, 3, h, w]
        results = {"pytorch eager": (eager, y_eager), "pytorch CUDA graph": (graph, y_graph.cpu().numpy())}
        if ort_model:
            run_ort, y_ort = ort_model.bind(x)
            times = time_synchronised(run_ort, torch, warmup, reps)  # leaves y_ort holding the last output
            results["onnxruntime CUDA (I/O binding)"] = (times, y_ort.cpu().numpy())
        for name, (times, y) in results.items():
            rows[name].append({"shape": shape, **stats(times, n), "speedup_vs_eager": float(np.median(eager) / np.median(times)),
                               "parity_vs_cpu_fp32": error_stats(y, reference)})
        print(f"gpu bench {'x'.join(map(str, shape))}: " + ", ".join(f"{k} {v[-1]['p50_ms']:.3f} ms" for k, v in rows.items()),
              flush=True)
    return {"weights": weights, "backends": {**{k: {"rows": v} for k, v in rows.items()},
                                             **{k: {"skipped": v} for k, v in skipped.items()}}}


def gpu_machine(torch, ort_dir: str | None) -> dict:
    props = torch.cuda.get_device_properties(0)
    ort_version = None
    try:
        ort_version = import_ort(ort_dir).__version__
    except ImportError:
        pass
    return {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}",
            "gpu_memory_gib": round(props.total_memory / 2 ** 30, 1), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "onnxruntime": ort_version, "host": platform.node(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# edgeae GPU benchmark ({m['gpu']})", "",
             f"{m['date']}: {m['gpu']} (compute capability {m['compute_capability']}, {m['gpu_memory_gib']} GiB), "
             f"torch {m['torch']} (CUDA {m['cuda']}, cuDNN {m['cudnn']}), onnxruntime {m['onnxruntime']}, "
             f"Python {m['python']}. Model: {report['weights']}. Full model (encoder + decoder), fp32; "
             "PyTorch timed with CUDA events, ONNX Runtime with a synchronised clock; speed-up = eager p50 / p50.", "",
             "| backend | input | p50 ms | p90 ms | p99 ms | items/s | speed-up | max abs vs CPU fp32 |",
             "|---|---|---|---|---|---|---|---|"]
    for name, result in report["backends"].items():
        for r in result.get("rows", []):
            lines.append(f"| {name} | {'×'.join(map(str, r['shape']))} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} | "
                         f"{r['p99_ms']:.3f} | {r['items_per_s']:.0f} | {r['speedup_vs_eager']:.2f}× | "
                         f"{r['parity_vs_cpu_fp32']['max_abs']:.1e} |")
    lines.append("")
    lines += [f"- **{k}**: not measured — {v['skipped']}" for k, v in report["backends"].items() if "skipped" in v]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/bench-seed", help="run folder with best.pt and encoder/decoder.onnx")
    parser.add_argument("--ort-dir", help="folder holding onnxruntime-gpu (pip install --no-deps --target DIR)")
    parser.add_argument("--out", default="reports")
    parser.add_argument("--name", default="bench-h100", help="report name: OUT/NAME.json and OUT/NAME.md")
    parser.add_argument("--quick", action="store_true", help="two small shapes, few repetitions")
    args = parser.parse_args(argv)
    try:
        torch = cuda_torch()
        report = {"machine": gpu_machine(torch, args.ort_dir), **measure(Path(args.run), args.ort_dir, args.quick)}
    except EdgeAEError as e:
        print(f"benchmarks.gpu: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    atomic_write_json(out / f"{args.name}.json", report)
    atomic_write_bytes(out / f"{args.name}.md", markdown(report).encode())
    print(f"wrote {out / args.name}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
