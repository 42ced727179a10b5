"""The README says what the code does and what the benchmark measured."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    return README[start:README.index("\n## ", start + 1)]


def paragraph_with(text: str) -> str:
    """The blank-line-separated paragraph of the README holding `text`, on one line."""
    return " ".join(next(p for p in README.split("\n\n") if text in p).split())


def test_nothing_points_to_documents_that_are_not_in_the_repository():
    # shared/GPU.md and FACTS.md were notes outside the repository; the README holds what they said.
    files = [ROOT / "README.md", ROOT / "Makefile", *(p for d in ("edgeae", "benchmarks", "tests", "scripts")
                                                      for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".sh", ".in"))]
    pointing = [f"{p.relative_to(ROOT)}" for p in files if p != Path(__file__).resolve() and p.is_file()
                and re.search(r"GPU\.md|FACTS\b", p.read_text(errors="replace"))]
    assert not pointing, pointing


def test_model_section_describes_the_decoder_that_export_writes():
    from edgeae.cli import _parser, _verb_parsers

    export = _verb_parsers(_parser())["export"]
    default_form = next(a.default for a in export._actions if a.dest == "decoder_form")
    text = " ".join(section("The model").split())
    assert default_form == "depth_to_space"
    assert "Conv(k=3) + DepthToSpace(2) rewrite by default (`decoder.onnx`" in text
    choices = next(a.choices for a in export._actions if a.dest == "decoder_form")
    assert f"`--decoder-form {'|'.join(c for c in choices if c != default_form)}`" in text


def test_readme_states_the_training_crop_default_of_the_cli():
    from edgeae.cli import _parser, _verb_parsers

    train = {a.dest: a.default for a in _verb_parsers(_parser())["train"]._actions}
    crop, batch, samples = train["crop_size"], train["batch_size"], train["samples_per_epoch"]
    assert f"samples {crop}×{crop} crops by default (batch {batch}, {samples} crops per epoch" in \
        " ".join(section("The model").split())


def latency_column(name: str) -> dict[str, tuple[float, float]]:
    """{input: (p50 ms, speed-up)} of one column of the README's latency table."""
    lines = section("Benchmarks").split("### Latency")[1].splitlines()
    header = next(line for line in lines if line.startswith("| input"))
    column = [c.strip() for c in header.strip("|").split("|")].index(name)
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| 1×3×") or line.startswith("| 8×3×"):
            ms, speedup = re.fullmatch(r"([\d.]+) \(([\d.]+)×\)", cells[column]).groups()
            rows[cells[0]] = (float(ms), float(speedup))
    return rows


def test_int8_paragraph_quotes_its_speed_against_onnxruntime_fp32_and_says_what_the_table_compares():
    fp32 = latency_column("onnxruntime-cpu fp32 p50 ms (speed-up)")
    int8 = latency_column("onnxruntime-cpu int8 p50 ms (speed-up)")
    frames = [shape for shape in int8 if int(shape.split("×")[2]) >= 480]  # single full frames
    vs_fp32 = [fp32[s][0] / int8[s][0] for s in frames]
    vs_torch = [int8[s][1] for s in frames]
    text = paragraph_with("The int8 files are made for TensorRT")
    expected = (f"{min(vs_fp32):.2f}–{max(vs_fp32):.2f}× ONNX Runtime fp32 on full frames (its speed-up column, "
                f"{min(vs_torch):.2f}–{max(vs_torch):.2f}×, is against PyTorch eager)")
    assert expected in text, f"the int8 paragraph should say: {expected}"


def test_compression_gap_is_stated_against_jpeg_and_webp():
    report = ROOT / "reports" / "bench.json"
    if not report.is_file():
        pytest.skip("reports/bench.json not there: 'make bench' writes it")
    matched = json.loads(report.read_text())["sections"]["compression"]["matched_bpp"]

    def gap(codec: str) -> str:
        deltas = [abs(r["delta"]) for r in matched[f"{codec} (OpenCV) psnr_db"] if r["delta"] is not None]
        return f"{round(min(deltas))}–{round(max(deltas))} dB"

    expected = f"it loses to JPEG by {gap('JPEG')} and to WebP by {gap('WebP')}"
    assert expected in " ".join(README.split()), f"the compression paragraph should say: {expected}"
