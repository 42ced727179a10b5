"""reports/NAME.json (every number), reports/NAME.md (tables) and the PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from benchmarks.codec import markdown as codec_markdown
from edgeae.config import atomic_write_bytes, atomic_write_json
from edgeae.runtime.tuning import stage_name, throughput_text


def strip_private(obj):
    """Drop "_" keys (images kept for plots) and make non-finite floats JSON-safe strings."""
    if isinstance(obj, dict):
        return {k: strip_private(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [strip_private(v) for v in obj]
    if isinstance(obj, np.generic):  # numpy scalars (np.bool_ from comparisons of np.float64) → Python
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def write_reports(report: dict, out: Path, name: str = "bench") -> list[Path]:
    from benchmarks import plots

    out.mkdir(parents=True, exist_ok=True)
    images = plots.write_plots(report, out, name)
    report["plots"] = [p.name for p in images]
    atomic_write_json(out / f"{name}.json", strip_private(report))
    atomic_write_bytes(out / f"{name}.md", markdown(strip_private(report)).encode())
    return [out / f"{name}.json", out / f"{name}.md", *images]


def _f(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _skipped(label: str, result: dict) -> str:
    return f"- **{label}**: not measured — {result['skipped']}"


def _shape(shape: list[int]) -> str:
    return "×".join(map(str, shape))


def md_targets(targets: list[dict]) -> list[str]:
    rows = []
    for t in targets:
        if "skipped" in t:
            rows.append([t["target"], "–", "not measured: " + t["skipped"]])
            continue
        met = {True: "**met**", False: "not met", None: "reported"}[t.get("met")]
        value = t.get("value", "")
        detail = t.get("detail") or "; ".join(f"{v['model']}: {v['psnr_gain_db']:+.2f} dB, {v['speedup']}× faster"
                                              for v in t.get("per_model", []))
        rows.append([t["target"], f"{json.dumps(value) if isinstance(value, dict) else value}", f"{met}. {detail}"])
    return ["## Targets", ""] + _table(["target", "measured", "verdict"], rows)


def md_parity(parity: dict) -> list[str]:
    lines = ["## Parity against " + parity.get("reference", "PyTorch"), ""]
    if "skipped" in parity:
        return lines + [_skipped("parity", parity), ""]
    rows, skipped = [], []
    for label, result in parity["variants"].items():
        if "skipped" in result:
            skipped.append(_skipped(label, result))
            continue
        for r in result["rows"]:
            rows.append([label, r["input"], _shape(r["shape"]), r["part"], f"{r['max_abs']:.2e}", f"{r['mean_abs']:.2e}",
                         _f(r["psnr_db"], 1), "pass" if r["passed"] else "**FAIL**"])
    tol = "; ".join(f"{p}: {', '.join(f'{k} {v}' for k, v in rule.items())}" for p, rule in
                    {"fp32": {"max |err| / range ≤": 1e-4}, "fp16": {"PSNR ≥": "45 dB"}, "int8": {"PSNR ≥": "35 dB"}}.items())
    return lines + [f"Tolerance per precision — {tol}. PSNR peak: 1 for images, the reference's range for latents.", ""] + \
        _table(["backend", "input", "shape", "part", "max abs", "mean abs", "PSNR dB", ""], rows) + skipped + [""]


def md_latency(latency: dict) -> list[str]:
    lines = ["## Latency (full model, float32 NCHW in and out)", ""]
    if "skipped" in latency:
        return lines + [_skipped("latency", latency), ""]
    measured = {k: v for k, v in latency["backends"].items() if "rows" in v}
    header = ["input"] + [f"{k} p50 ms (speed-up)" for k in measured]
    rows = []
    for i, shape in enumerate(latency["shapes"]):
        rows.append([_shape(shape)] + [f"{r['rows'][i]['p50_ms']:.3f} ({r['rows'][i]['speedup_vs_eager']:.2f}×)"
                                       for r in measured.values()])
    detail = [[k, _shape(r["shape"]), _f(r["p50_ms"], 3), _f(r["p90_ms"], 3), _f(r["p99_ms"], 3), _f(r["items_per_s"], 1),
               r["reps"]] for k, v in measured.items() for r in v["rows"]]
    skipped = [_skipped(k, v) for k, v in latency["backends"].items() if "skipped" in v]
    tuned = f" *tuned default*: {latency['tuned']}." if latency.get("tuned") else ""
    side = latency.get("side_by_side")
    side = f" {', '.join(side)}: timed in the same interleaved rounds (the targets' ratios); the others one after another." \
        if side else ""
    return lines + [f"{latency['threads']} threads; speed-up = PyTorch eager p50 / backend p50.{tuned}{side}", ""] + \
        _table(header, rows) + skipped + ["", "<details><summary>p50 / p90 / p99 and throughput</summary>", ""] + \
        _table(["backend", "input", "p50 ms", "p90 ms", "p99 ms", "items/s", "reps"], detail) + ["</details>", ""] + \
        md_candidates(latency.get("candidates", {}))


def _rows(ms_by_label: dict[str, dict[str, float]], shapes: list[str], tuned: str) -> list[list[str]]:
    """One row per candidate, fastest overall first: ms per shape and how far behind that shape's fastest."""
    best = {s: min(v[s] for v in ms_by_label.values()) for s in shapes}
    return [[("**" + label + "** (tuned pick)") if label == tuned else label]
            + [f"{ms[s]:.2f}" + (" (best)" if ms[s] == best[s] else f" (+{100 * (ms[s] / best[s] - 1):.0f} %)") for s in shapes]
            for label, ms in sorted(ms_by_label.items(), key=lambda kv: sum(kv[1].values()))]


def md_candidates(candidates: dict) -> list[str]:
    """Every candidate the tuner tried, re-timed at each frame size in one set of interleaved rounds."""
    lines = ["### Every tuner candidate at frame sizes", ""]
    if "skipped" in candidates or not candidates.get("ms"):
        return lines + [_skipped("candidates", candidates if "skipped" in candidates else {"skipped": "none timed"}), ""]
    shapes = ["x".join(map(str, s)) for s in candidates["shapes"]]
    header = ["candidate"] + [f"{s} ms" for s in shapes]
    rows = _rows(candidates["ms"], shapes, candidates["tuned"])
    unavailable = [f"- {k}: {v}" for k, v in candidates.get("unavailable", {}).items()]
    block = candidates.get("block", 1)
    turn = f" (each turn an untimed call, then {block} timed)" if block > 1 else ""
    stat = "Lower-quartile" if block > 1 else "Median"
    lines += [f"{stat} ms of {candidates['rounds']} interleaved rounds per size{turn}; + % behind the fastest.", ""] + \
        _table(header, rows) + unavailable + [""]
    confirm = candidates.get("confirm")
    if confirm:
        rows = _rows(confirm["ms"], shapes, candidates["tuned"])
        lines += [f"Head to head: the tuned pick and each size's fastest above, timed again in {confirm['rounds']} "
                  "interleaved rounds (the fastest of two dozen estimates is biased fast; the target reads this "
                  "pass).", ""] + _table(header, rows) + [""]
    return lines


def md_tuning(tuning: dict) -> list[str]:
    """What the tuner picked for each model on this machine, why int8 was (not) picked, every stage's timings."""
    lines = ["## Tuning on this machine (`edgeae build RUN --backend onnxruntime`, RUN/tuning.json)", ""]
    for run, t in tuning.items():
        shapes = ["x".join(map(str, s)) for s in t["shapes"]]
        lines += [f"**{run}**: picked `{t['winner']['label']}`, {t['speedup_vs_baseline']:.2f}× the untuned default "
                  f"(`{t['baseline']}`) in {t['seconds']} s. int8 {'picked' if t['int8']['picked'] else 'not picked'}: "
                  f"{t['int8']['reason']}.", ""]
        if t.get("throughput"):
            lines += [f"Throughput stage: {throughput_text(t['throughput'])}.", ""]
        rows = [[stage_name(stage), stage["rounds"], e["label"]] + [_f(e["ms"].get(s)) for s in shapes]
                for stage in t["stages"] for e in stage["candidates"]]
        lines += ["<details><summary>every candidate, lower-quartile ms of interleaved rounds</summary>", ""] + \
            _table(["stage", "rounds", "candidate"] + [f"{s} ms" for s in shapes], rows) + ["</details>", ""]
        lines += [f"- {k}: {v}" for k, v in t.get("unavailable", {}).items()]
    return lines


def md_pipeline(pipeline: dict) -> list[str]:
    lines = ["## Pipeline on " + pipeline.get("source", "the footage"), ""]
    if "skipped" in pipeline:
        return lines + [_skipped("pipeline", pipeline), ""]
    rows = [[task, r["frames"], _f(r["fps"], 1), r.get("steps_ahead", "–")] + [_f(r["ms_per_frame"][s], 2) for s in pipeline["stages"]]
            for task, r in pipeline["tasks"].items()]
    model = f" Model form: {pipeline['model']}." if pipeline.get("model") else ""
    return lines + [f"{pipeline['backend']}; {pipeline['implementation']}.{model} *In flight*: inference calls at "
                    "once (the tuned streams); with more than one, 'infer' is the wait for the earliest frame's result.", ""] + \
        _table(["task", "frames", "FPS", "in flight"] + [f"{s} ms" for s in pipeline["stages"]], rows)


def md_denoise(denoise: dict) -> list[str]:
    lines = ["## Denoising (gaussian noise, held-out frames)", ""]
    if "skipped" in denoise:
        return lines + [_skipped("denoise", denoise), ""]
    rows = [[r["sigma"], r["method"], _f(r["psnr_db"]), _f(r["ssim"], 3), _f(r["ms_per_frame"], 1)] for r in denoise["rows"]]
    size = "×".join(map(str, denoise["frame_size"][::-1]))
    from benchmarks.denoise import photos_markdown

    return lines + [f"{denoise['frames']} frames of {size}; {denoise['note']}.", ""] + \
        _table(["σ", "method", "PSNR dB", "SSIM", "ms/frame"], rows) + \
        (photos_markdown(denoise["photos"]) if "photos" in denoise else [])


def md_anomaly(anomaly: dict) -> list[str]:
    lines = ["## Anomaly detection (synthetic defects on held-out frames)", ""]
    if "skipped" in anomaly:
        return lines + [_skipped("anomaly", anomaly), ""]
    rows = [[k, _f(r["image_auroc"], 3), _f(r["pixel_auroc"], 3)]
            + [_f(r["image_auroc_per_defect"].get(d), 3) for d in anomaly["defects"]] + [_f(r["ms_per_frame"], 1)]
            for k, r in anomaly["scorers"].items()]
    return lines + [f"{anomaly['test_frames']} test frames, {anomaly['defect_frames']} with one defect "
                    f"({', '.join(anomaly['defects'])}); normal model from {anomaly['normal_frames']} earlier frames. "
                    "Image score: the smoothed map's maximum (edgeae's task: its own top-k mean).", ""] + \
        _table(["detector", "image AUROC", "pixel AUROC"] + [f"image AUROC, {d}" for d in anomaly["defects"]]
               + ["ms/frame"], rows)


def md_compression(compression: dict) -> list[str]:
    lines = ["## Compression: rate–distortion", ""]
    if "skipped" in compression:
        return lines + [_skipped("compression", compression), ""]
    rows = [[codec, p.get("bits", p.get("quality")), _f(p["bpp"], 3), _f(p["psnr_db"]), _f(p["ssim"], 3)]
            for codec, points in compression["curves"].items() for p in points]
    matched = [[k, _f(r["bpp"], 3), _f(r["autoencoder"], 3), _f(r["reference"], 3), _f(r["delta"], 3)]
               for k, v in compression["matched_bpp"].items() for r in v]
    return lines + [f"{compression['frames']} held-out frames; autoencoder rate: {compression['rate_method']}.", ""] + \
        _table(["codec", "bits / quality", "bpp", "PSNR dB", "SSIM"], rows) + \
        ["At matched bits per pixel (reference interpolated; – where outside its range):", ""] + \
        _table(["comparison", "bpp", "autoencoder", "reference", "Δ"], matched)


def markdown(report: dict) -> str:
    m, s = report["machine"], report["sections"]
    lines = ["# edgeae benchmark", "",
             f"{m['date']} on {m.get('cpu_summary', m['cpu'])} ({m['cores_usable']} usable cores, {m['threads']} threads), {m['os']}; "
             f"Python {m['python']}, torch {m['torch']}, onnxruntime {m['onnxruntime']}, OpenCV {m['opencv']}, "
             f"edgeae {m['edgeae']} ({m['git_commit']}). "
             + ("**Quick mode: one tiny, barely trained model stands in for every role; the numbers check the "
                "machinery only.** " if report['config']['quick'] else "")
             + f"Models: {', '.join(f'{k} = {v}' for k, v in report['runs'].items())}. "
             f"Training {report['train_seconds']} s, total {report['total_seconds']} s.", ""]
    lines += [DIFFERS_BY_CPU, ""]
    lines += md_targets(report["targets"]) + md_tuning(report.get("tuning", {})) + md_parity(s["parity"])
    lines += md_latency(s["latency"]) + md_pipeline(s["pipeline"])
    lines += md_denoise(s["denoise"]) + md_anomaly(s["anomaly"]) + md_compression(s["compression"])
    lines += codec_markdown(s.get("codec", {"skipped": "not run"}))
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in report.get("plots", [])] + [""]
    return "\n".join(lines)


DIFFERS_BY_CPU = ("Results differ by CPU: which decoder form, session layout, thread count and precision is fastest "
                  "changes with the CPU's ISA (AVX2, AVX-512, VNNI, AMX), so edgeae tunes on each device "
                  "(`edgeae build RUN --backend onnxruntime`, run by `make engines` and the deploy bundle's install.sh) "
                  "and these tables are for the CPU named above only.")
README_BEGIN, README_END = "<!-- bench:begin (written by make bench) -->", "<!-- bench:end -->"


def readme_block(report: dict, command: str) -> str:
    """The README's benchmark summary: the same tables as bench.md, less the long ones."""
    m, s = report["machine"], report["sections"]
    lines = [README_BEGIN, f"`{command}` — {m['date']}, made on {m.get('cpu_summary', m['cpu'])}, {m['threads']} threads, "
             f"edgeae {m['git_commit']}, {report['total_seconds']:.0f} s in all. Every number: "
             "[reports/bench.md](reports/bench.md), [reports/bench.json](reports/bench.json).", "", DIFFERS_BY_CPU, ""]
    lines += md_targets(report["targets"]) + md_tuning(report.get("tuning", {})) + md_latency(s["latency"]) + md_pipeline(s["pipeline"])
    lines += md_denoise(s["denoise"]) + md_anomaly(s["anomaly"]) + codec_markdown(s.get("codec", {"skipped": "not run"}))
    lines += [f"![{p}](reports/{p})" for p in report.get("plots", [])] + ["", README_END]
    # Inside the README's "## Benchmarks" section the tables' headings sit one level lower.
    return "\n".join("#" + line if line.startswith(("## ", "### ")) else line for line in lines)


def update_readme(path: Path, report: dict, command: str) -> None:
    """Replace the marked block in README (appended once if the markers are missing)."""
    text = path.read_text()
    block = readme_block(strip_private(report), command)
    if README_BEGIN in text and README_END in text:
        head, rest = text.split(README_BEGIN, 1)
        text = head + block + rest.split(README_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_bytes(path, text.encode())
