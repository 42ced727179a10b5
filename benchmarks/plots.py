"""PNG plots for the report: latency bars, rate–distortion curves, anomaly heatmaps, denoise side by side."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

from edgeae.config import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def latency_bars(latency: dict, path: Path) -> Path:
    plt = _pyplot()
    measured = {k: v["rows"] for k, v in latency["backends"].items() if "rows" in v}
    labels = ["×".join(map(str, s)) for s in latency["shapes"]]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(labels)), 4))
    width = 0.8 / len(measured)
    for i, (name, rows) in enumerate(measured.items()):
        ax.bar(np.arange(len(labels)) + i * width, [r["p50_ms"] for r in rows], width, label=name)
    ax.set(xticks=np.arange(len(labels)) + 0.4 - width / 2, yscale="log", ylabel="p50 latency, ms (log)",
           title="full model latency per backend")
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def rate_distortion(compression: dict, path: Path) -> Path:
    return _save(rate_distortion_figure(compression), path)


def rate_distortion_figure(compression: dict):
    """PSNR and SSIM against bits per pixel (log axis), one line per codec."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for codec, points in compression["curves"].items():
        points = sorted(points, key=lambda p: p["bpp"])
        for ax, key in zip(axes, ("psnr_db", "ssim")):
            ax.plot([p["bpp"] for p in points], [p[key] for p in points], "o-", label=codec)
    for ax, label in zip(axes, ("PSNR, dB", "SSIM")):
        ax.set(xlabel="bits per pixel", ylabel=label, xscale="log")
        # Plain numbers at 1-2-5 steps: matplotlib's default labels every minor tick of a short log range
        # as "2×10⁻¹", and they overlap.
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("rate–distortion on held-out frames")
    return fig


def _heat(score: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(score, [1, 99.9])
    scaled = np.clip((score - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO)


def anomaly_heatmaps(examples: list[dict], path: Path) -> Path:
    """Rows: frame with the defect outlined in green | each detector's score map, same outline."""
    rows = []
    for ex in examples:
        contours, _ = cv2.findContours(ex["mask"].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        panels = [ex["image"].copy()] + [_heat(v) for k, v in ex.items() if k not in ("image", "mask")]
        for panel in panels:
            cv2.drawContours(panel, contours, -1, (0, 255, 0), 1)
        rows.append(np.hstack(panels))
    names = ["frame + defect mask"] + [k for k in examples[0] if k not in ("image", "mask")]
    return _save_image(np.vstack(rows), names, path)


def denoise_side_by_side(examples: dict, sigma: int, methods: list[str], path: Path) -> Path:
    """clean | noisy | each method at one σ, on a crop so detail is visible."""
    clean = examples["clean"]
    h, w = clean.shape[:2]
    ch, cw = min(h, 192), min(w, 256)
    y, x = (h - ch) // 2, (w - cw) // 2
    crop = lambda img: img[y:y + ch, x:x + cw]
    panels = [crop(clean), crop(examples[f"{sigma}|noisy input"])] + [crop(examples[f"{sigma}|{m}"]) for m in methods]
    return _save_image(np.hstack(panels), ["clean", f"noisy σ {sigma}"] + methods, path)


def _save_image(image: np.ndarray, names: list[str], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(min(20, image.shape[1] / 80), min(20, image.shape[0] / 80) + 0.6))
    ax.imshow(image[..., ::-1])
    ax.set_axis_off()
    ax.set_title("   |   ".join(names), fontsize=9)
    return _save(fig, path)


def write_plots(report: dict, out: Path, name: str) -> list[Path]:
    s = report["sections"]
    paths = []
    if "skipped" not in s["latency"]:
        paths.append(latency_bars(s["latency"], out / f"{name}-latency.png"))
    if "skipped" not in s["compression"]:
        paths.append(rate_distortion(s["compression"], out / f"{name}-rate-distortion.png"))
    if "skipped" not in s.get("codec", {"skipped": ""}):
        from benchmarks.codec import plot as codec_plot

        paths.append(codec_plot(s["codec"], out / f"{name}-codec.png"))
    if "skipped" not in s["anomaly"] and s["anomaly"].get("_examples"):
        paths.append(anomaly_heatmaps(s["anomaly"]["_examples"], out / f"{name}-anomaly.png"))
    if "skipped" not in s["denoise"]:
        methods = [r["method"] for r in s["denoise"]["rows"] if r["sigma"] == 25 and r["method"] != "noisy input"]
        paths.append(denoise_side_by_side(s["denoise"]["_examples"], 25, methods, out / f"{name}-denoise.png"))
    return paths
