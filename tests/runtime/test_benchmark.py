import numpy as np
import pytest

from edgeae.cli import main
from edgeae.runtime.benchmark import (candidate_variants, error_stats, interleaved_rows, open_variants, skip_reason,
                                      time_call, within_tolerance)


def test_time_call_reports_ordered_percentiles_over_at_least_min_reps():
    calls = []
    result = time_call(lambda: calls.append(1), warmup=2, min_reps=7, max_reps=7, budget_s=0)
    assert result["reps"] == 7 and len(calls) == 9
    assert 0 <= result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"]


def test_interleaved_rows_time_every_callable_in_blocks_in_rotating_order():
    order = []
    fns = {name: (lambda name=name: order.append(name)) for name in "abc"}
    rows = interleaved_rows(fns, warmup=1, min_reps=4, max_reps=4, budget_s=0, block=2)
    assert {name: row["reps"] for name, row in rows.items()} == {"a": 4, "b": 4, "c": 4}
    turns = order[3 + 3:]  # after one warm-up call each and the round that sizes the budget
    # each turn: one untimed call, then 2 timed ones; two rounds, the second starting one callable later
    assert "".join(turns) == "aaabbbccc" + "bbbcccaaa"
    assert all(0 <= r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] for r in rows.values())


def test_missing_int8_files_are_skipped_with_the_command_that_makes_them(trained_run):
    int8 = next(v for v in candidate_variants(1) if v.label == "onnxruntime-cpu int8")
    assert "make engines" in skip_reason(int8, trained_run)


def test_every_candidate_is_either_loaded_or_skipped_with_a_reason(trained_run):
    loaded, skipped = open_variants(trained_run, threads=1)
    assert {"onnxruntime-cpu fp32", "opencv-dnn fp32"} <= set(loaded)
    assert set(loaded) | set(skipped) == {v.label for v in candidate_variants(1)}
    assert all(reason for reason in skipped.values())
    for ae in loaded.values():
        ae.close()


def test_tolerance_is_relative_for_fp32_and_psnr_for_int8():
    ref = np.linspace(0, 1, 1000, dtype=np.float32)
    assert within_tolerance(error_stats(ref + 1e-6, ref), "fp32")
    assert not within_tolerance(error_stats(ref + 1e-3, ref), "fp32")
    assert within_tolerance(error_stats(ref + 1e-3, ref), "int8")  # 60 dB


def test_bench_of_a_missing_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["bench", str(tmp_path / "nothing")]) == 2
    assert "encoder.onnx" in capsys.readouterr().err
