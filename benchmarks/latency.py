"""Latency: PyTorch eager and torch.compile as references and the tuned default (`Autoencoder.load(RUN)`: what
RUN/tuning.json picked on this machine), timed side by side in interleaved rounds; then every runtime backend,
same inputs; and every candidate the tuner tried, re-timed at each frame size in interleaved rounds, so the pick
can be checked against the best."""

from __future__ import annotations

import torch

from benchmarks.context import Context
from edgeae.runtime.autoencoder import Autoencoder
from edgeae.runtime.benchmark import (TUNED, full_model, interleaved_rows, latency_shapes, open_tuned, open_variants,
                                      random_input, time_call)
from edgeae.runtime.tuning import NEW_SIZE_WARMUP, TIMING_BLOCK, Candidate, lower_quartiles, read_sidecar, shape_key
from edgeae.training.train import load_model

EAGER = "pytorch eager"
COMPILED = "pytorch torch.compile"


def _timing(ctx: Context) -> dict:
    quick = ctx.cfg.quick
    return {"warmup": 2 if quick else 5, "min_reps": 5 if quick else 20, "budget_s": 0.3 if quick else 2.0}


def _side_by_side(model: torch.nn.Module, tuned: Autoencoder, shapes: list, ctx: Context,
                  compile_too: bool) -> dict[str, list[dict]]:
    """PyTorch eager, torch.compile and the tuned default, the three the issue's targets compare, timed in the
    same interleaved rounds at each shape (benchmark.interleaved_rows): timed one after another, a change of load
    on a shared machine between them moved a ratio by up to 20 % (make bench, 2026-11-28)."""
    rows: dict[str, list[dict]] = {EAGER: []} | ({COMPILED: []} if compile_too else {}) | {TUNED: []}
    with torch.inference_mode():
        for shape in shapes:
            x = random_input(shape)
            xt = torch.from_numpy(x)
            fns = {EAGER: lambda: model(xt), TUNED: full_model(tuned, x)}
            if compile_too:
                torch._dynamo.reset()  # one static graph per shape: the fastest kernels, not one dynamic graph
                compiled = torch.compile(model)
                compiled(xt)  # compile outside the timed region
                fns[COMPILED] = lambda: compiled(xt)
            for label, row in interleaved_rows(fns, **_timing(ctx)).items():
                rows[label].append(row)
    return rows


def latency(ctx: Context) -> dict:
    ctx.torch_threads()
    run = ctx.runs["seed"]
    model, _, _ = load_model(run)
    shapes = [(n, 3, h, w) for n, h, w in latency_shapes(ctx.cfg.quick)]
    tuned, _ = open_tuned(run)  # its own tuned threads, not ctx.threads
    tuned_form = tuned.describe()
    side = _side_by_side(model, tuned, shapes, ctx, compile_too=not ctx.cfg.quick)
    tuned.close()
    results: dict[str, dict] = {label: {"rows": rows} for label, rows in side.items()}
    if ctx.cfg.quick:
        results = {EAGER: results[EAGER], COMPILED: {"skipped": "quick mode: torch.compile needs 15-40 s per shape "
                                                                "to compile on 2 cores"}, TUNED: results[TUNED]}
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
            "shapes": [list(s) for s in shapes], "backends": results, "tuned": tuned_form,
            "side_by_side": [EAGER, COMPILED, TUNED] if not ctx.cfg.quick else [EAGER, TUNED],
            "candidates": candidate_latency(run, [s for s in shapes if s[2] > 32], ctx)}


CONFIRM_ROUNDS = 8  # the head-to-head pass: 16 timed calls per contender and shape


def candidate_latency(run, shapes: list[tuple], ctx: Context) -> dict:
    """Every candidate in RUN/tuning.json at each frame shape: lower-quartile ms of interleaved rounds, the tuner's
    own statistic, so the tuned pick is compared with the best it tried under the same conditions. Medians of 3
    rounds put the pick 33 % behind at 480×640 in one make bench, where the tuner had timed it fastest: a few
    slow turns on a shared machine decide a median of 6 calls (2026-11-28).

    Then a second, head-to-head pass ("confirm") of the pick and each shape's fastest: the fastest of two dozen
    estimates of 8 calls each is biased fast (a winner's curse), so the pass that finds the best cannot also say by
    how much it beats the pick. The target is read from the confirming pass."""
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
    # Each turn an untimed call, then TIMING_BLOCK timed ones, as the tuner times them: a candidate is not timed
    # while the previous one's threads still spin. 4 rounds × 2: 8 calls per candidate and shape.
    rounds = 2 if ctx.cfg.quick else 4
    confirm_rounds = 2 if ctx.cfg.quick else CONFIRM_ROUNDS
    tuned = sidecar["winner"]["label"]
    try:
        ms = _lower_quartiles(loaded, shapes, rounds)
        contenders = {tuned, *(min(ms, key=lambda k: ms[k][shape_key(s)]) for s in shapes)} if tuned in ms else set()
        confirm = _lower_quartiles({k: loaded[k] for k in contenders}, shapes, confirm_rounds) if len(contenders) > 1 else {}
    finally:
        for ae in loaded.values():
            ae.close()
    return {"shapes": [list(s) for s in shapes], "rounds": rounds, "block": TIMING_BLOCK, "tuned": tuned,
            "ms": ms, "confirm": {"rounds": confirm_rounds, "ms": confirm} if confirm else {}, "unavailable": skipped}


def _lower_quartiles(loaded: dict[str, Autoencoder], shapes: list[tuple], rounds: int) -> dict[str, dict[str, float]]:
    """label → shape → lower-quartile ms of `rounds` interleaved rounds (an untimed call, then TIMING_BLOCK timed)."""
    ms: dict[str, dict[str, float]] = {label: {} for label in loaded}
    for shape in shapes:
        x = random_input(shape)
        quartiles = lower_quartiles({k: (lambda ae=ae: ae.reconstruct_batch(x)) for k, ae in loaded.items()}, rounds,
                                    warmup=NEW_SIZE_WARMUP, block=TIMING_BLOCK)
        for label, value in quartiles.items():
            ms[label][shape_key(shape)] = value
    return ms
