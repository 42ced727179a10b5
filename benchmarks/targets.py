"""The issue's targets, read off the measured sections: reported, never asserted."""

from __future__ import annotations

from benchmarks.models import DENOISE_VARIANT

ORT, INT8, EAGER, COMPILED, TUNED = ("onnxruntime-cpu fp32", "onnxruntime-cpu int8", "pytorch eager",
                                     "pytorch torch.compile", "tuned default")


def _rows(section: dict, backend: str) -> list[dict] | None:
    result = section.get("backends", {}).get(backend, {})
    return result.get("rows")


def _is_frame(row: dict) -> bool:
    return row["shape"][2] > 32


def _target(text: str, value: float | None, threshold: float, detail: str = "", why_not: str = "") -> dict:
    if value is None:
        return {"target": text, "skipped": why_not}
    return {"target": text, "value": round(value, 3), "met": bool(value >= threshold), "detail": detail}


def latency_targets(latency: dict, parity: dict) -> list[dict]:
    if "skipped" in latency:
        return [{"target": "latency targets", "skipped": latency["skipped"]}]
    ort = _rows(latency, ORT)
    frames = [r for r in ort if _is_frame(r)]
    crop1 = [r for r in ort if r["shape"] == [1, 3, 32, 32]]
    out = [_target("ONNX Runtime fp32 ≥ 1.3× PyTorch eager on full frames (worst frame size)",
                   min((r["speedup_vs_eager"] for r in frames), default=None), 1.3,
                   ", ".join(f"{r['shape'][2]}x{r['shape'][3]}: {r['speedup_vs_eager']:.2f}×" for r in frames),
                   "no full-frame shape measured (quick mode)"),
           _target("ONNX Runtime fp32 ≥ 5× PyTorch eager at batch 1 of 32×32",
                   crop1[0]["speedup_vs_eager"] if crop1 else None, 5.0)]
    # INT8's speed target depends on the CPU (VNNI/AMX): int8_target below.
    int8_parity = parity.get("variants", {}).get(INT8, {})
    full = [r["psnr_db"] for r in int8_parity.get("rows", []) if r["part"] == "full"]
    out.append(_target("INT8 full model PSNR ≥ 35 dB against fp32 PyTorch (worst input)", min(full, default=None), 35.0,
                       why_not=int8_parity.get("skipped", parity.get("skipped", ""))))
    return out


def _frame_ratios(latency: dict, over: str, under: str) -> list[tuple[str, float]]:
    """(WxH, p50 of `over` / p50 of `under`) at every frame shape both measured."""
    a, b = _rows(latency, over) or [], _rows(latency, under) or []
    return [(f"{x['shape'][3]}x{x['shape'][2]}", x["p50_ms"] / y["p50_ms"]) for x, y in zip(a, b) if _is_frame(x)]


def _worst(text: str, ratios: list[tuple[str, float]], threshold: float, why_not: str) -> dict:
    detail = ", ".join(f"{size}: {r:.2f}×" for size, r in ratios)
    return _target(text, min((r for _, r in ratios), default=None), threshold, detail, why_not)


def tuned_targets(latency: dict, machine: dict, tuning: dict) -> list[dict]:
    """Issue 11: the tuned default against PyTorch and against every candidate the tuner tried; int8 per CPU."""
    if "skipped" in latency:
        return [{"target": "tuned default targets", "skipped": latency["skipped"]}]
    compiled_why = latency["backends"].get(COMPILED, {}).get("skipped", "")
    out = [_worst("tuned default ≥ 1.0× torch.compile at every frame size (worst)", _frame_ratios(latency, COMPILED, TUNED),
                  1.0, compiled_why or "no full-frame shape measured (quick mode)"),
           _worst("tuned default ≥ 1.3× PyTorch eager at every frame size (worst)", _frame_ratios(latency, EAGER, TUNED),
                  1.3, "no full-frame shape measured (quick mode)")]
    crop = [r for r in _rows(latency, TUNED) or [] if r["shape"] == [1, 3, 32, 32]]
    out.append(_target("tuned default ≥ 5× PyTorch eager at batch 1 of 32×32", crop[0]["speedup_vs_eager"] if crop else None, 5.0))
    out.append(behind_best_target(latency.get("candidates", {})))
    out.append(int8_target(latency, machine, tuning))
    return out


def behind_best_target(candidates: dict) -> dict:
    """Best candidate / tuned pick, per frame shape, from one set of interleaved rounds: ≥ 1/1.05 means the pick
    is at most 5 % behind the best it tried. Read from the head-to-head pass of the pick and each shape's fastest
    where the bench ran one (latency.candidate_latency: the pass that finds the fastest overstates its lead)."""
    text = "tuned default at most 5 % behind the best candidate it tried, at every frame size (worst)"
    if "skipped" in candidates or not candidates.get("ms") or candidates.get("tuned") not in candidates["ms"]:
        return {"target": text, "skipped": candidates.get("skipped", "no candidate timings")}
    ms, tuned, ratios = (candidates.get("confirm") or candidates)["ms"], candidates["tuned"], []
    for shape in map(lambda s: "x".join(map(str, s)), candidates["shapes"]):
        best = min(ms, key=lambda k: ms[k][shape])
        ratios.append((f"{shape} (best: {best if best != tuned else 'the pick'})", ms[best][shape] / ms[tuned][shape]))
    return _worst(text, ratios, 1 / 1.05, "no frame shape measured")


def int8_target(latency: dict, machine: dict, tuning: dict) -> dict:
    """Where the CPU has VNNI/AMX: int8 ≥ 1.5× fp32. Elsewhere: the tuner must not pick int8, and say why."""
    if machine.get("int8_fast_path"):
        ratios = _frame_ratios(latency, ORT, INT8)
        why = latency["backends"].get(INT8, {}).get("skipped", "no full-frame shape measured")
        return _worst("INT8 ≥ 1.5× fp32 on a CPU with VNNI/AMX, every frame size (worst)", ratios, 1.5, why)
    text = f"no VNNI/AMX on {machine.get('cpu', 'this CPU')}: the tuner does not pick int8 and says why"
    if "int8" not in tuning:
        return {"target": text, "skipped": "the seed model was not tuned"}
    return {"target": text, "met": not tuning["int8"]["picked"], "value": "int8 not picked" if not tuning["int8"]["picked"]
            else "int8 picked", "detail": tuning["int8"]["reason"]}


def pipeline_target(pipeline: dict) -> dict:
    text = "anomaly pipeline on the footage ≥ 40 frames/s end to end (tuned default)"
    if "skipped" in pipeline:
        return {"target": text, "skipped": pipeline["skipped"]}
    anomaly = next((r for k, r in pipeline["tasks"].items() if k.startswith("anomaly")), None)
    return _target(text, anomaly["fps"] if anomaly else None, 40.0, pipeline.get("model", ""), "no anomaly run")


def denoise_target(denoise: dict) -> dict:
    text = "denoising σ 25: PSNR above fastNlMeansDenoisingColored at ≥ 10× its speed"
    if "skipped" in denoise:
        return {"target": text, "skipped": denoise["skipped"]}
    rows = {r["method"]: r for r in denoise["rows"] if r["sigma"] == 25}
    nlm = rows["fastNlMeansDenoisingColored"]
    verdicts = []
    for name in ("seed", DENOISE_VARIANT):
        ae = rows[f"autoencoder {name}"]
        gain, speed = ae["psnr_db"] - nlm["psnr_db"], nlm["ms_per_frame"] / ae["ms_per_frame"]
        verdicts.append({"model": name, "psnr_gain_db": round(gain, 2), "speedup": round(speed, 1),
                         "met": bool(gain > 0 and speed >= 10)})
    return {"target": text, "met": any(v["met"] for v in verdicts), "per_model": verdicts}


def anomaly_target(anomaly: dict) -> dict:
    text = "anomaly: image AUROC ≥ 0.95 and pixel AUROC ≥ 0.90, above MOG2"
    if "skipped" in anomaly:
        return {"target": text, "skipped": anomaly["skipped"]}
    scorers = anomaly["scorers"]
    mog = next(v for k, v in scorers.items() if "MOG2" in k)
    name, ae = max(((k, v) for k, v in scorers.items() if k.startswith("autoencoder")),
                   key=lambda kv: kv[1]["image_auroc"] + kv[1]["pixel_auroc"])
    met = (ae["image_auroc"] >= 0.95 and ae["pixel_auroc"] >= 0.90 and ae["image_auroc"] > mog["image_auroc"]
           and ae["pixel_auroc"] > mog["pixel_auroc"])
    return {"target": text, "met": bool(met), "value": {"image": round(ae["image_auroc"], 3),
                                                         "pixel": round(ae["pixel_auroc"], 3)},
            "detail": f"best autoencoder scorer: {name}; MOG2 image {mog['image_auroc']:.3f}, pixel {mog['pixel_auroc']:.3f}"}


def compression_summary(compression: dict) -> dict:
    text = "compression: where the autoencoder loses to JPEG at matched bpp, by how much"
    if "skipped" in compression:
        return {"target": text, "skipped": compression["skipped"]}
    rows = [r for r in compression["matched_bpp"]["JPEG (OpenCV) psnr_db"] if r["delta"] is not None]
    if not rows:
        return {"target": text, "skipped": "no autoencoder point inside JPEG's bpp range"}
    worst = min(rows, key=lambda r: r["delta"])
    best = max(rows, key=lambda r: r["delta"])
    return {"target": text, "met": None, "value": round(worst["delta"], 2),
            "detail": f"PSNR vs JPEG from {worst['delta']:+.2f} dB (at {worst['bpp']:.3f} bpp) "
                      f"to {best['delta']:+.2f} dB (at {best['bpp']:.3f} bpp)"}


def codec_targets(codec: dict) -> list[dict]:
    """Issue 12: per held-out set, BD-rate vs JPEG < −15 % (moonshot: vs WebP < 0), above JPEG at every codec point
    from 0.15 to 1.0 bpp; encode and decode ≤ 100 ms per 768×576 frame (the slowest level)."""
    if "skipped" in codec:
        return [{"target": "learned codec targets", "skipped": codec["skipped"]}]
    from benchmarks.codec import MATCHED_RANGE

    out = []
    for name, rd in codec["sets"].items():
        for ref, limit in (("JPEG", -15.0), ("WebP", 0.0)):
            bd = rd["bd_rate_psnr"][ref]
            text = f"learned codec, {name}: BD-rate vs {ref} < {limit:g} %" + (" (moonshot)" if ref == "WebP" else "")
            out.append({"target": text, "skipped": bd["why"]} if bd["percent"] is None else
                       {"target": text, "value": round(bd["percent"], 1), "met": bool(bd["percent"] < limit)})
        lo, hi = MATCHED_RANGE
        gaps = [g for g in rd["vs_jpeg"] if g["delta_db"] is not None and lo <= g["bpp"] <= hi]
        worst = min(gaps, key=lambda g: g["delta_db"], default=None)
        out.append(_target(f"learned codec, {name}: PSNR above JPEG at every level from {lo} to {hi} bpp (worst, dB)",
                           worst and worst["delta_db"], 0.0,
                           ", ".join(f"{g['bpp']:.2f} bpp: {g['delta_db']:+.2f}" for g in gaps),
                           f"no codec level between {lo} and {hi} bpp"))
    from benchmarks.codec import TIMING_BACKENDS

    for section_key, (_, backend) in TIMING_BACKENDS.items():
        for key, what in (("encode_ms", "encode"), ("decode_ms", "decode")):
            if section_key not in codec:
                continue
            slowest = max(codec[section_key], key=lambda t: t[key])
            out.append({"target": f"learned codec: {what} ≤ 100 ms per {slowest['frame_size']} frame, {backend} "
                                  "(slowest level, ms)", "value": round(slowest[key], 1), "met": bool(slowest[key] <= 100)})
    return out


def targets(sections: dict, machine: dict | None = None, tuning: dict | None = None) -> list[dict]:
    return [*latency_targets(sections["latency"], sections["parity"]),
            *tuned_targets(sections["latency"], machine or {}, tuning or {}), pipeline_target(sections["pipeline"]),
            denoise_target(sections["denoise"]), anomaly_target(sections["anomaly"]),
            compression_summary(sections["compression"]),
            *codec_targets(sections.get("codec", {"skipped": "not run"}))]
