"""The issue's targets, read off the measured sections: reported, never asserted."""

from __future__ import annotations

from benchmarks.models import DENOISE_VARIANT

ORT, INT8, EAGER = "onnxruntime-cpu fp32", "onnxruntime-cpu int8", "pytorch eager"


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
    ort, int8 = _rows(latency, ORT), _rows(latency, INT8)
    frames = [r for r in ort if _is_frame(r)]
    crop1 = [r for r in ort if r["shape"] == [1, 3, 32, 32]]
    out = [_target("ONNX Runtime fp32 ≥ 1.3× PyTorch eager on full frames (worst frame size)",
                   min((r["speedup_vs_eager"] for r in frames), default=None), 1.3,
                   ", ".join(f"{r['shape'][2]}x{r['shape'][3]}: {r['speedup_vs_eager']:.2f}×" for r in frames),
                   "no full-frame shape measured (quick mode)"),
           _target("ONNX Runtime fp32 ≥ 5× PyTorch eager at batch 1 of 32×32",
                   crop1[0]["speedup_vs_eager"] if crop1 else None, 5.0)]
    why = latency["backends"].get(INT8, {}).get("skipped", "")
    if int8:
        ratios = [f["p50_ms"] / i["p50_ms"] for f, i in zip(ort, int8) if _is_frame(f)]
        out.append(_target("INT8 ≥ 1.8× ONNX Runtime fp32 on full frames (worst frame size)",
                           min(ratios, default=None), 1.8, why_not="no full-frame shape measured"))
    else:
        out.append({"target": "INT8 ≥ 1.8× ONNX Runtime fp32 on full frames", "skipped": why})
    int8_parity = parity.get("variants", {}).get(INT8, {})
    full = [r["psnr_db"] for r in int8_parity.get("rows", []) if r["part"] == "full"]
    out.append(_target("INT8 full model PSNR ≥ 35 dB against fp32 PyTorch (worst input)", min(full, default=None), 35.0,
                       why_not=int8_parity.get("skipped", parity.get("skipped", ""))))
    return out


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


def targets(sections: dict) -> list[dict]:
    return [*latency_targets(sections["latency"], sections["parity"]), denoise_target(sections["denoise"]),
            anomaly_target(sections["anomaly"]), compression_summary(sections["compression"])]
