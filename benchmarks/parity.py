"""Parity: every backend and precision this machine can run against PyTorch fp32 on the same inputs."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from benchmarks.context import Context
from edgeae.runtime.benchmark import TOLERANCES, compare_parts, open_variants
from edgeae.runtime.preprocess import frames_to_batch
from edgeae.training.train import load_model


def parity_inputs(ctx: Context, downsample: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(ctx.cfg.seed)
    shapes = [(1, 32, 32), (2, 64, 96)] if ctx.cfg.quick else [(1, 32, 32), (8, 32, 32), (2, 64, 96), (1, 576, 768)]
    inputs = [("random", rng.random((n, 3, h, w), dtype=np.float32)) for n, h, w in shapes]
    frame = ctx.heldout_frames[0]
    inputs.append(("real frame", frames_to_batch([frame], downsample)[0]))
    h, w = frame.shape[:2]
    crops = [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)[y:y + 32, x:x + 32]
             for y, x in zip(rng.integers(0, h - 31, 16), rng.integers(0, w - 31, 16))]
    inputs.append(("real crops", np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2), np.float32) / 255))
    return inputs


def parity(ctx: Context) -> dict:
    run = ctx.runs["seed"]
    model, _, _ = load_model(run)
    loaded, skipped = open_variants(run, ctx.threads)
    inputs = parity_inputs(ctx, model.cfg.downsample)
    results: dict[str, dict] = {label: {"skipped": reason} for label, reason in skipped.items()}
    with torch.inference_mode():
        references = [(kind, x, model.encoder(torch.from_numpy(x))) for kind, x in inputs]
        references = [(kind, x, z.numpy(), model.decoder(z).numpy()) for kind, x, z in references]
    for label, ae in loaded.items():
        precision = label.split()[-1]
        rows = []
        for kind, x, z_ref, y_ref in references:
            for row in compare_parts(ae, x, z_ref, y_ref, precision):
                rows.append({"input": kind, "shape": list(x.shape), **row})
        results[label] = {"precision": precision, "tolerance": TOLERANCES[precision],
                          "passed": all(r["passed"] for r in rows), "rows": rows}
        ae.close()
    return {"reference": "PyTorch fp32 eager (CPU)", "run": str(run), "variants": results}
