"""The learned-codec section's arithmetic: JPEG at matched rates, level order, targets, markdown."""

from pathlib import Path

from benchmarks.codec import CODEC, codec_levels, jpeg_gap, markdown
from benchmarks.targets import codec_targets

JPEG = [{"bpp": 0.2, "psnr_db": 28.0}, {"bpp": 0.4, "psnr_db": 31.0}, {"bpp": 1.2, "psnr_db": 38.0}]


def test_jpeg_is_read_at_the_codecs_rate_and_points_outside_its_range_get_none():
    codec = [{"model": "q1", "bpp": 0.3, "psnr_db": 30.0}, {"model": "q2", "bpp": 0.1, "psnr_db": 27.0}]
    gap = jpeg_gap(codec, JPEG)
    assert abs(gap[0]["jpeg_psnr_db"] - 29.5) < 1e-9 and abs(gap[0]["delta_db"] - 0.5) < 1e-9
    assert gap[1]["jpeg_psnr_db"] is None and gap[1]["delta_db"] is None


def test_levels_sort_by_number_not_by_name(tmp_path: Path):
    for name in ("codec-q10", "codec-q2", "codec-q1", "codec-qx", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "decoder.onnx").write_bytes(b"")
    assert [p.name for p in codec_levels(tmp_path)] == ["codec-q1", "codec-q2", "codec-q10"]


def _section(percent_jpeg: float, delta: float, encode_ms: float) -> dict:
    rd = {"images": 2, "frame_sizes": ["768x576"],
          "curves": {CODEC: [{"model": "models/codec-q1", "bpp": 0.3, "psnr_db": 30.0, "ms_ssim": 0.95}]},
          "bd_rate_psnr": {"JPEG": {"percent": percent_jpeg}, "WebP": {"percent": None, "why": "too few points"}},
          "vs_jpeg": [{"model": "models/codec-q1", "bpp": 0.3, "codec_psnr_db": 30.0, "jpeg_psnr_db": 30.0 - delta,
                       "delta_db": delta}]}
    timing = [{"model": "models/codec-q1", "frame_size": "768x576", "encode_ms": encode_ms, "decode_ms": 90.0,
               "coder_share_encode": 0.05, "coder_share_decode": 0.04}]
    return {"levels": ["models/codec-q1"], "threads": 2, "sets": {"photos": rd}, "timing": timing}


def test_codec_targets_pass_and_fail_on_the_numbers():
    good = {t["target"]: t for t in codec_targets(_section(-20.0, 0.8, 80.0))}
    bad = {t["target"]: t for t in codec_targets(_section(12.0, -1.5, 130.0))}
    assert all(t.get("met") for name, t in good.items() if "WebP" not in name)
    assert not any(t.get("met") for name, t in bad.items() if "decode" not in name)
    assert any("skipped" in t and "too few points" in t["skipped"] for t in good.values())


def test_markdown_names_each_level_and_a_skipped_section_says_why():
    text = "\n".join(markdown(_section(-20.0, 0.8, 80.0)))
    assert "| codec-q1 | 0.300 | 30.00 |" in text and "vs JPEG -20.0 %" in text
    assert "Skipped: no models" in "\n".join(markdown({"skipped": "no models"}))


def test_each_backend_timed_gets_its_own_speed_targets_and_table():
    section = _section(-20.0, 0.8, 80.0)
    section["timing_openvino"] = [{**section["timing"][0], "encode_ms": 60.0, "decode_ms": 130.0}]
    targets = {t["target"]: t for t in codec_targets(section)}
    assert targets["learned codec: decode ≤ 100 ms per 768x576 frame, ONNX Runtime (slowest level, ms)"]["met"]
    assert not targets["learned codec: decode ≤ 100 ms per 768x576 frame, OpenVINO (slowest level, ms)"]["met"]
    text = "\n".join(markdown(section))
    assert "768x576 frame, ONNX Runtime on 2 threads" in text and "768x576 frame, OpenVINO on 2 threads" in text
    del section["timing_openvino"]
    assert not any("OpenVINO" in t["target"] for t in codec_targets(section))
