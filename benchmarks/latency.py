"""Latency: PyTorch eager and torch.compile as references, then every runtime backend, same inputs."""

from __future__ import annotations

import torch

from benchmarks.context import Context
from edgeae.runtime.benchmark import full_model, latency_shapes, open_variants, random_input, time_call
from edgeae.training.train import load_model

EAGER = "pytorch eager"
COMPILED = "pytorch torch.compile"


def _timing(ctx: Context) -> dict:
    quick = ctx.cfg.quick
    return {"warmup": 2 if quick else 5, "min_reps": 5 if quick else 20, "budget_s": 0.3 if quick else 2.0}


def _torch_rows(model: torch.nn.Module, shapes: list, ctx: Context) -> list[dict]:
    rows = []
    with torch.inference_mode():
        for shape in shapes:
            x = torch.from_numpy(random_input(shape))
            rows.append(time_call(lambda: model(x), **_timing(ctx)))
    return rows


def _compiled_rows(model: torch.nn.Module, shapes: list, ctx: Context) -> list[dict]:
    rows = []
    for shape in shapes:
        torch._dynamo.reset()  # one static graph per shape: the fastest kernels, not one dynamic graph
        compiled = torch.compile(model)
        x = torch.from_numpy(random_input(shape))
        with torch.inference_mode():
            compiled(x)  # compile outside the timed region
            rows.append(time_call(lambda: compiled(x), **_timing(ctx)))
    return rows


def latency(ctx: Context) -> dict:
    ctx.torch_threads()
    run = ctx.runs["seed"]
    model, _, _ = load_model(run)
    shapes = [(n, 3, h, w) for n, h, w in latency_shapes(ctx.cfg.quick)]
    results: dict[str, dict] = {EAGER: {"rows": _torch_rows(model, shapes, ctx)}}
    if ctx.cfg.quick:
        results[COMPILED] = {"skipped": "quick mode: torch.compile needs 15-40 s per shape to compile on 2 cores"}
    else:
        results[COMPILED] = {"rows": _compiled_rows(model, shapes, ctx)}
    loaded, skipped = open_variants(run, ctx.threads)
    for label, ae in loaded.items():
        results[label] = {"rows": [time_call(full_model(ae, random_input(s)), **_timing(ctx)) for s in shapes]}
        ae.close()
    results.update({label: {"skipped": reason} for label, reason in skipped.items()})
    eager = results[EAGER]["rows"]
    for result in results.values():
        for row, shape, ref in zip(result.get("rows", []), shapes, eager):
            row.update(shape=list(shape), items_per_s=shape[0] * 1000 / row["p50_ms"],
                       speedup_vs_eager=ref["p50_ms"] / row["p50_ms"])
    return {"model": "full (encoder + decoder), float32 NCHW in and out", "threads": ctx.threads,
            "shapes": [list(s) for s in shapes], "backends": results}
