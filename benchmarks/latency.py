"""Latency: PyTorch eager and torch.compile as references, then every runtime backend and the tuned default
(`Autoencoder.load(RUN)`: what RUN/tuning.json picked on this machine), same inputs; and every candidate the
tuner tried, re-timed at each frame size in interleaved rounds, so the pick can be checked against the best."""

from __future__ import annotations

import torch

from benchmarks.context import Context
from edgeae.runtime.autoencoder import Autoencoder
from edgeae.runtime.benchmark import TUNED, full_model, latency_shapes, open_tuned, open_variants, random_input, time_call
from edgeae.runtime.tuning import Candidate, interleaved_medians, read_sidecar, shape_key
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
    loaded[TUNED], _ = open_tuned(run)  # its own tuned threads, not ctx.threads
    tuned_form = loaded[TUNED].describe()
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
            "shapes": [list(s) for s in shapes], "backends": results, "tuned": tuned_form,
            "candidates": candidate_latency(run, [s for s in shapes if s[2] > 32], ctx)}


def candidate_latency(run, shapes: list[tuple], ctx: Context) -> dict:
    """Every candidate in RUN/tuning.json at each frame shape: interleaved medians (ms) in one set of rounds, so
    the tuned pick is compared with the best it tried under the same conditions."""
    sidecar, reason = read_sidecar(run)
    if sidecar is None:
        return {"skipped": reason}
    entries = {e["label"]: e for stage in sidecar["stages"] for e in stage["candidates"]}
    loaded, skipped = {}, {}
    for label, entry in entries.items():
        try:
            loaded[label] = Autoencoder.load(run, form=Candidate.from_dict(entry))
        except Exception as e:  # a backend that loaded at tuning time and not now is reported, not fatal
            skipped[label] = str(e)
    rounds = 3 if ctx.cfg.quick else 7
    ms: dict[str, dict[str, float]] = {label: {} for label in loaded}
    try:
        for shape in shapes:
            x = random_input(shape)
            medians = interleaved_medians({k: (lambda ae=ae: ae.reconstruct_batch(x)) for k, ae in loaded.items()}, rounds)
            for label, value in medians.items():
                ms[label][shape_key(shape)] = value
    finally:
        for ae in loaded.values():
            ae.close()
    return {"shapes": [list(s) for s in shapes], "rounds": rounds, "tuned": sidecar["winner"]["label"],
            "ms": ms, "unavailable": skipped}
