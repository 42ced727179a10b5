"""The benchmark machinery in --quick mode on a small generated video: structure, not speed."""

import json

import numpy as np
import pytest

from benchmarks.anomaly import add_defect
from benchmarks.compression import at_matched_bpp, latent_rate
from benchmarks.run import main
from edgeae.runtime import Autoencoder

SECTIONS = ("parity", "latency", "pipeline", "denoise", "anomaly", "compression", "codec")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory, synthetic_video):
    root = tmp_path_factory.mktemp("bench")
    (root / "README.md").write_text("# x\n\n<!-- bench:begin (written by make bench) -->\nold\n<!-- bench:end -->\n\n## after\n")
    code = main(["--quick", "--footage", str(synthetic_video), "--runs", str(root / "runs"), "--out", str(root / "reports"),
                 "--readme", str(root / "README.md")])
    assert code == 0
    return root / "reports"


def _skipped_entries(obj):
    if isinstance(obj, dict):
        if "skipped" in obj:
            yield obj["skipped"]
        for value in obj.values():
            yield from _skipped_entries(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _skipped_entries(value)


def test_quick_run_writes_json_markdown_and_plots(quick_report):
    report = json.loads((quick_report / "bench.json").read_text())
    assert set(report["sections"]) == set(SECTIONS)
    assert {"cpu", "torch", "onnxruntime", "opencv", "threads"} <= set(report["machine"])
    assert (quick_report / "bench.md").read_text().startswith("# edgeae benchmark")
    assert report["plots"] and all((quick_report / p).stat().st_size > 1000 for p in report["plots"])


def test_readme_block_is_replaced_with_the_new_tables(quick_report):
    readme = (quick_report.parent / "README.md").read_text()
    assert "old" not in readme and "## Targets" in readme and readme.endswith("## after\n")


def test_every_skipped_backend_or_section_says_why(quick_report):
    report = json.loads((quick_report / "bench.json").read_text())
    reasons = list(_skipped_entries(report))
    assert reasons, "without int8 files or TensorRT something must be skipped"
    assert all(isinstance(r, str) and len(r) > 10 for r in reasons)
    assert "tensorrt fp16" in report["sections"]["latency"]["backends"]


def test_latency_has_percentiles_and_speedup_for_each_measured_backend(quick_report):
    latency = json.loads((quick_report / "bench.json").read_text())["sections"]["latency"]
    measured = [b for b in latency["backends"].values() if "rows" in b]
    assert len(measured) >= 3  # eager, ONNX Runtime, OpenCV DNN
    for backend in measured:
        for row in backend["rows"]:
            assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] and row["speedup_vs_eager"] > 0


def test_opencv_dnn_agrees_with_pytorch_and_onnxruntime(quick_report):
    parity = json.loads((quick_report / "bench.json").read_text())["sections"]["parity"]["variants"]
    assert parity["onnxruntime-cpu fp32"]["passed"] and parity["opencv-dnn fp32"]["passed"]


def test_opencv_dnn_backend_matches_onnxruntime_on_a_frame(trained_run):
    frame = np.random.default_rng(0).integers(0, 256, (40, 72, 3), dtype=np.uint8)
    with Autoencoder.load(trained_run, backend="opencv-dnn") as cv, Autoencoder.load(trained_run) as ort:
        assert np.abs(cv.reconstruct([frame])[0].astype(int) - ort.reconstruct([frame])[0]).max() <= 1
        assert cv.encoder.metadata["edgeae.role"] == "encoder"


def test_defects_come_with_masks_covering_the_changed_pixels():
    frame = np.full((96, 128, 3), 90, np.uint8)
    for kind in ("patch", "scratch", "blob"):
        image, mask = add_defect(frame, kind, np.random.default_rng(1))
        changed = np.any(image != frame, axis=2)
        assert mask.any() and not (changed & ~mask).any()


def test_fewer_latent_bits_cost_fewer_bytes():
    latent = np.random.default_rng(0).gamma(2.0, 1.0, (1, 96, 8, 8)).astype(np.float32)
    sizes = [latent_rate(latent, bits)[1] for bits in (8, 5, 2)]
    assert sizes[0] > sizes[1] > sizes[2]


def test_matched_bpp_interpolates_and_leaves_out_of_range_points_empty():
    reference = [{"bpp": 1.0, "psnr_db": 30.0}, {"bpp": 2.0, "psnr_db": 40.0}]
    rows = at_matched_bpp([{"bpp": 1.5, "psnr_db": 33.0}, {"bpp": 5.0, "psnr_db": 45.0}], reference, "psnr_db")
    assert rows[0]["reference"] == 35.0 and rows[0]["delta"] == -2.0
    assert rows[1]["reference"] is None


def test_gpu_benchmark_without_cuda_exits_with_one_line(capsys):
    import torch

    from benchmarks.gpu import main as gpu_main

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the no-GPU message does not apply")
    assert gpu_main(["--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CUDA GPU" in err


def test_quick_run_tunes_first_and_times_the_tuned_default_and_every_candidate(quick_report):
    report = json.loads((quick_report / "bench.json").read_text())
    assert report["machine"]["cpu_summary"] and "isa" in report["machine"]
    (tuning,) = report["tuning"].values()  # quick mode: one model stands in for every role
    latency = report["sections"]["latency"]
    assert latency["backends"]["tuned default"]["rows"] and latency["tuned"]
    labels = {e["label"] for s in tuning["stages"] for e in s["candidates"]}
    assert set(latency["candidates"]["ms"]) | set(latency["candidates"]["unavailable"]) == labels
    confirm = latency["candidates"]["confirm"]  # the pick and each size's fastest again, head to head
    assert not confirm or latency["candidates"]["tuned"] in confirm["ms"] and set(confirm["ms"]) <= set(labels)
    text = (quick_report / "bench.md").read_text()
    assert "Results differ by CPU" in text and "Every tuner candidate" in text
    assert any(t["target"].startswith("tuned default at most 5 %") for t in report["targets"])
