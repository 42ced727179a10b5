"""`edgeae bench RUN --backends triton --server URL`: the served model's latency and agreement, measured from here.

The same table as `edgeae bench` (runtime/benchmark.py: its timing, parity and formatting), with one row set:
the server's encoder, decoder and one-request reconstruction, each request timed end to end (transfer,
queueing, inference). The reference is ONNX Runtime fp32 run here; a server running the same fp32 files on
the same ONNX Runtime build agrees to the bit (PSNR inf).
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeae.errors import EdgeAEError
from edgeae.runtime.backends.triton import DEFAULT_SERVER


def remote_bench(run_dir: str | os.PathLike, server: str = DEFAULT_SERVER, quick: bool = False, threads: int = 0,
                 backends: tuple[str, ...] | None = None, shapes: list[tuple[int, int, int, int]] | None = None,
                 warmup: int | None = None, iterations: int | None = None, progress: bool = False) -> dict:
    """device_bench's report for the models `server` serves for `run_dir` (backends: must name triton only)."""
    from tqdm import tqdm

    from edgeae.runtime import benchmark as b
    from edgeae.runtime.autoencoder import Autoencoder

    others = [name for name in backends or () if name != "triton"]
    if others:
        raise EdgeAEError(f"measure triton on its own: 'edgeae bench RUN --backends triton --server URL', then "
                          f"'--backends {','.join(others)}' without --server")
    run_dir = Path(run_dir)
    threads = threads or b.machine_threads()
    b.pin_threads(threads)
    loaded, skipped = b.open_variants(run_dir, threads, lambda v: v.label == b.REFERENCE)
    if b.REFERENCE not in loaded:
        raise EdgeAEError(f"{run_dir} has no runnable encoder.onnx/decoder.onnx ({skipped.get(b.REFERENCE)})")
    reference = loaded[b.REFERENCE]
    shapes = shapes or [(n, 3, h, w) for n, h, w in b.latency_shapes(quick)]
    b.check_shapes(shapes, reference.info, run_dir)
    options = {"warmup": (2 if quick else 5) if warmup is None else warmup, "min_reps": iterations or (5 if quick else 10),
               "max_reps": iterations or 300, "budget_s": 0.0 if iterations else (0.3 if quick else 2.0)}
    label = f"triton {server}"
    rows = []
    with Autoencoder.load(run_dir, backend="triton", server=server) as remote, \
            tqdm(total=len(shapes), desc="bench", unit="run", disable=not progress) as bar:
        for shape in shapes:
            x = b.random_input(shape)
            ref_latent = reference.encode_batch(x)
            parity = b.compare_parts(remote, x, ref_latent, reference.decode_batch(ref_latent), "fp32")
            timing = b.time_call(b.full_model(remote, x), **options)
            rows.append({"shape": list(x.shape), **timing, "items_per_s": shape[0] * 1000 / timing["p50_ms"],
                         "parity": parity})
            bar.update()
        form = f"{remote.fused.model} v{remote.fused.version} on {server} (one request per batch)"
    reference.close()
    return {"run": str(run_dir), "threads": threads, "cpu": b.cpu_info().describe(), "reference": b.REFERENCE,
            "tuned": "(the server's)", "tuning": {"skipped": "the server picks its own form"},
            "variants": {label: {"precision": "fp32", "form": form, "rows": rows}}}
