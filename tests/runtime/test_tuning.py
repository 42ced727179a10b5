"""The per-device tuner: sidecar written and keyed, its pick used by Autoencoder.load, stale sidecars
ignored, int8 held to its accuracy bound, fused and two-session forms equal. Structure, never speed."""

import json
import time
import logging
import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import numpy_helper

from edgeae.cli import main
from edgeae.runtime import tuning
from edgeae.runtime.autoencoder import Autoencoder
from edgeae.runtime.benchmark import device_bench, format_device_bench
from edgeae.runtime.tuning import Candidate, CpuInfo, Measured, TuneConfig, cpu_info, int8_verdict, tune

# Tiny timing inputs and one round per stage: these tests check what is written and used, not what is fast.
QUICK = TuneConfig(budget_s=0.1, backends=("onnxruntime",), shapes=((1, 3, 32, 48),), min_rounds=1, max_rounds=1)
SHAPE = "1x3x32x48"


def _copy(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("*.pt", "tuning.json"))
    return run


@pytest.fixture(scope="module")
def tuned_run(trained_run, tmp_path_factory):
    run = _copy(trained_run, tmp_path_factory.mktemp("tuned"))
    tune(run, QUICK, progress=False)
    return run


def _sidecar(run) -> dict:
    return json.loads((run / "tuning.json").read_text())


def _force_winner(run, dst, label_part: str) -> dict:
    """A copy of `run` whose tuning.json names as winner the structure candidate whose label contains `label_part`."""
    shutil.copytree(run, dst)
    sidecar = _sidecar(dst)
    entry = next(e for e in sidecar["stages"][0]["candidates"] if label_part in e["label"])
    sidecar["winner"] = sidecar["best"]["onnxruntime fp32"] = entry
    (dst / "tuning.json").write_text(json.dumps(sidecar))
    return entry


def test_tuning_writes_a_keyed_sidecar_with_the_winner_and_every_candidate(tuned_run):
    sidecar = _sidecar(tuned_run)
    key = sidecar["key"]
    assert {"encoder.onnx", "decoder.onnx", "decoder.conv_transpose.onnx", "decoder.phase.onnx",
            "autoencoder.depth_to_space.onnx", "autoencoder.conv_transpose.onnx", "autoencoder.phase.onnx"} <= set(key["sources"])
    assert all(len(digest) == 64 for digest in key["sources"].values())
    assert key["cpu"] == cpu_info().model and key["isa"] == list(cpu_info().isa) and key["nproc"] >= 1
    assert key["runtimes"] == {"onnxruntime": onnxruntime.__version__}
    structure = sidecar["stages"][0]
    # 3 decoder forms × (two sessions spinning off; fused spinning off/on), and the untuned baseline beside them
    assert structure["stage"] == "structure" and len(structure["candidates"]) == 10
    assert not any("two sessions" in e["label"] and "spinning=on" in e["label"] for e in structure["candidates"])
    stages = [s["stage"] for s in sidecar["stages"]]
    assert stages[:3] == ["structure", "threads", "optimization"] and stages[3:] in ([], [tuning.RUNOFF_STAGE])
    labels = {e["label"] for s in sidecar["stages"] for e in s["candidates"]}
    assert sidecar["winner"]["label"] in labels and sidecar["baseline"] in labels
    assert all(set(e["ms"]) == {SHAPE} and e["score"] > 0 for s in sidecar["stages"] for e in s["candidates"])


def test_load_uses_the_sidecar_winner_form_and_settings(tuned_run, tmp_path):
    _force_winner(tuned_run, tmp_path / "run", "fused conv_transpose optimization=all spinning=on")
    with Autoencoder.load(tmp_path / "run") as ae:
        assert ae.fused is not None and ae.fused.path.name == "autoencoder.conv_transpose.onnx"
        options = ae.fused.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
        assert "one fused session" in ae.describe() and "tuned here" in ae.describe()


def test_explicit_options_override_the_tuned_settings(tuned_run, tmp_path):
    _force_winner(tuned_run, tmp_path / "run", "fused conv_transpose optimization=all spinning=on threads=")
    with Autoencoder.load(tmp_path / "run", backend="onnxruntime", precision="fp32", threads=1) as ae:
        assert ae.fused is not None and ae.fused.session.get_session_options().intra_op_num_threads == 1


def test_without_a_sidecar_load_keeps_todays_two_sessions(trained_run, tmp_path):
    with Autoencoder.load(_copy(trained_run, tmp_path)) as ae:
        assert ae.fused is None and (ae.encoder.path.name, ae.decoder.path.name) == ("encoder.onnx", "decoder.onnx")
        assert ae.decoder.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert "untuned: no tuning.json" in ae.describe()


@pytest.mark.parametrize("field, value", [("cpu", "Some Other CPU"), ("isa", ["avx512f"]), ("nproc", 999),
                                          ("runtimes", {"onnxruntime": "0.0.1"})])
def test_a_stale_key_is_ignored_with_a_log_line(tuned_run, tmp_path, caplog, field, value):
    run = tmp_path / "run"
    _force_winner(tuned_run, run, "fused conv_transpose")
    sidecar = _sidecar(run)
    sidecar["key"][field] = value
    (run / "tuning.json").write_text(json.dumps(sidecar))
    with caplog.at_level(logging.WARNING, logger="edgeae.runtime"), Autoencoder.load(run) as ae:
        assert ae.fused is None and ae.decoder.path.name == "decoder.onnx" and "stale" in ae.describe()
    assert any("stale" in r.getMessage() and "edgeae build" in r.getMessage() for r in caplog.records)


def test_a_changed_onnx_file_makes_the_sidecar_stale(tuned_run, tmp_path):
    run = tmp_path / "run"
    _force_winner(tuned_run, run, "fused conv_transpose")
    model = onnx.load(run / "autoencoder.conv_transpose.onnx")
    model.metadata_props.add(key="edited", value="yes")
    onnx.save(model, run / "autoencoder.conv_transpose.onnx")
    with Autoencoder.load(run) as ae:
        assert ae.fused is None and "autoencoder.conv_transpose.onnx changed" in ae.describe()


@pytest.mark.parametrize("form", ["depth_to_space", "conv_transpose"])
def test_fused_output_equals_the_two_session_output(tuned_run, form):
    decoder = "decoder.onnx" if form == "depth_to_space" else "decoder.conv_transpose.onnx"
    fused = Candidate.make("onnxruntime", "fp32", form, "encoder.onnx", decoder, f"autoencoder.{form}.onnx")
    x = tuning.timing_inputs(((2, 3, 48, 80),))[0]
    with Autoencoder.load(tuned_run, form=fused) as ae:
        np.testing.assert_allclose(ae.reconstruct_batch(x), ae.decode_batch(ae.encode_batch(x)), atol=1e-5)


def _int8_files(run, bias_shift: float) -> None:
    """int8 stand-ins: the fp32 encoder, and the decoder with its last bias shifted by `bias_shift`."""
    shutil.copy(run / "encoder.onnx", run / "encoder.int8.onnx")
    model = onnx.load(run / "decoder.onnx")
    last_bias = max((t for t in model.graph.initializer if t.name.endswith("bias")), key=lambda t: int(t.name.split(".")[0]))
    last_bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(last_bias) + np.float32(bias_shift), last_bias.name))
    onnx.save(model, run / "decoder.int8.onnx")


def test_int8_outside_its_accuracy_bound_is_refused_with_the_reason(trained_run, tmp_path):
    run = _copy(trained_run, tmp_path)
    _int8_files(run, bias_shift=2.0)  # sigmoid output moves by ~0.1: ~20 dB, below 35
    sidecar = tune(run, QUICK, progress=False)
    assert not sidecar["int8"]["picked"] and "below its 35 dB bound" in sidecar["int8"]["reason"]
    assert all(e["precision"] == "fp32" for s in sidecar["stages"] for e in s["candidates"])
    assert {"encoder.int8.onnx", "decoder.int8.onnx"} <= set(sidecar["key"]["sources"])


def test_int8_within_its_bound_is_timed_against_the_best_fp32(trained_run, tmp_path):
    run = _copy(trained_run, tmp_path)
    _int8_files(run, bias_shift=0.0)
    sidecar = tune(run, QUICK, progress=False)
    int8_stage = next(s for s in sidecar["stages"] if s["stage"] == "int8")
    assert {e["precision"] for e in int8_stage["candidates"]} == {"fp32", "int8"}
    assert "int8" in sidecar["int8"]["reason"] and "fp32" in sidecar["int8"]["reason"]


def _measured(precision: str, ms: float) -> Measured:
    return Measured(Candidate.make("onnxruntime", precision, "depth_to_space", "e", "d"), "int8", {SHAPE: ms}, ms)


def test_int8_that_is_not_clearly_faster_is_not_picked_and_a_cpu_without_vnni_is_named():
    no_vnni = CpuInfo("AMD EPYC", ("avx2", "fma"))
    verdict = int8_verdict(_measured("int8", 30.0), _measured("fp32", 28.0), "int8 PSNR 40 dB", no_vnni)
    assert not verdict["picked"] and "no VNNI/AMX" in verdict["reason"] and "not 1.1× faster" in verdict["reason"]
    assert not int8_verdict(_measured("int8", 27.0), _measured("fp32", 28.0), "int8 PSNR 40 dB", no_vnni)["picked"]
    vnni = CpuInfo("Intel Xeon", ("avx2", "avx512f", "avx512_vnni"))
    assert int8_verdict(_measured("int8", 15.0), _measured("fp32", 28.0), "int8 PSNR 40 dB", vnni)["picked"]


def test_cpu_model_and_isa_flags_are_read_from_proc_cpuinfo():
    x86 = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni amx_int8 amx_tile\n"
    info = cpu_info(x86)
    assert info.model == "Intel(R) Xeon(R) Platinum 8480+" and info.int8_fast_path
    assert info.isa == ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile", "amx_int8")
    arm = cpu_info("processor\t: 0\nFeatures\t: fp asimd asimddp\nHardware\t: NVIDIA Jetson Orin\n")
    assert arm.model == "NVIDIA Jetson Orin" and arm.int8_fast_path
    assert "no VNNI/AMX" in cpu_info("model name\t: AMD EPYC\nflags\t: avx2 fma\n").describe()


def test_build_with_a_cpu_backend_runs_the_tuner_not_tensorrt(monkeypatch, tmp_path):
    calls = []
    from edgeae.export import openvino_parity

    monkeypatch.setattr(tuning, "tune", lambda run, cfg: calls.append((run, cfg)))
    monkeypatch.setattr(openvino_parity, "record_openvino_parity", lambda run: calls.append((run, "parity")) or {})
    monkeypatch.setattr(openvino_parity, "format_openvino_parity", lambda section: "parity table")
    assert main(["build", str(tmp_path), "--backend", "onnxruntime", "--tune-seconds", "5"]) == 0
    assert main(["build", str(tmp_path), "--backend", "openvino"]) == 0  # also records OpenVINO's parity
    assert calls[2] == (str(tmp_path), "parity")
    calls.pop()
    assert [cfg.backends for _, cfg in calls] == [("onnxruntime",), ("onnxruntime", "openvino")]
    assert calls[0][1].budget_s == 5


def test_tuning_a_folder_without_onnx_files_is_a_one_line_error(tmp_path, capsys):
    assert main(["build", str(tmp_path), "--backend", "onnxruntime"]) == 2
    assert "edgeae export" in capsys.readouterr().err


def test_openvino_is_timed_on_every_core_too_where_onnxruntime_picked_fewer_threads(trained_run):
    default_form = tuning.baseline_candidate(trained_run).decoder_form
    incumbent = tuning.Candidate.make("onnxruntime", "fp32", "conv_transpose", "encoder.onnx", "decoder.onnx", threads=1)
    forms = tuning.structure_candidates(trained_run, "openvino", default_form, threads=4)
    both = tuning.openvino_candidates(trained_run, default_form, incumbent, None, nproc=4)
    assert sorted({c.options["threads"] for c in both}) == [1, 4] and len(both) == 2 * len(forms)
    on_all = tuning.openvino_candidates(trained_run, default_form, incumbent.with_options(threads=4), incumbent, 4)
    assert {c.options["threads"] for c in on_all} == {4} and len(on_all) == len(forms) + 1  # + int8, same threads
    assert on_all[-1].precision == "int8" and on_all[-1].backend == "openvino"


def test_openvino_candidates_are_timed_when_openvino_is_installed(trained_run, tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO not installed: its candidates are skipped with that reason")
    run = _copy(trained_run, tmp_path)
    sidecar = tune(run, TuneConfig(budget_s=0.1, backends=("onnxruntime", "openvino"), shapes=((1, 3, 32, 48),),
                                   min_rounds=1, max_rounds=1), progress=False)
    stage = next(s for s in sidecar["stages"] if s["stage"] == "openvino")
    assert {e["backend"] for e in stage["candidates"]} == {"onnxruntime", "openvino"}
    assert "openvino" in sidecar["key"]["runtimes"] and "openvino fp32" in sidecar["best"]


def test_bench_reports_the_cpu_the_tuned_default_and_every_candidate(tuned_run):
    report = device_bench(tuned_run, quick=True, threads=1)
    assert report["cpu"] == cpu_info().describe() and "tuned here" in report["tuned"]
    assert report["variants"]["tuned default"]["rows"] and report["tuning"]["stages"]
    text = format_device_bench(report)
    assert "tuned default" in text and _sidecar(tuned_run)["stages"][0]["candidates"][-1]["label"] in text


def test_run_profile_names_the_form_it_runs(tuned_run, synthetic_video, tmp_path, capsys):
    _force_winner(tuned_run, tmp_path / "run", "fused conv_transpose")
    code = main(["run", str(tmp_path / "run"), "--task", "reconstruct", "--source", str(synthetic_video),
                 "--max-frames", "2", "--profile"])
    assert code == 0 and "model: onnxruntime fp32, one fused session, ConvTranspose decoder" in capsys.readouterr().out


def test_the_device_entry_point_does_nothing_while_the_sidecar_matches(tuned_run, capsys):
    before = (tuned_run / "tuning.json").read_bytes()
    assert tuning.main([str(tuned_run), "--if-stale"]) == 0
    assert "nothing to tune" in capsys.readouterr().out and (tuned_run / "tuning.json").read_bytes() == before


def test_the_tuned_pick_loads_where_torch_and_onnx_cannot_be_imported(tuned_run, run_without_torch):
    result = run_without_torch(f"""
        from edgeae.runtime.autoencoder import Autoencoder
        with Autoencoder.load({str(tuned_run)!r}) as ae:
            assert "tuned here" in ae.describe(), ae.describe()
        assert not {{"torch", "onnx", "edgeae.training", "edgeae.export"}} & set(sys.modules)
    """)
    assert result.returncode == 0, result.stderr


def test_scores_weigh_frames_and_a_crop_only_where_no_frame_is_timed():
    from edgeae.runtime.tuning import scored_shapes

    crop, frame = np.zeros((1, 3, 32, 32), np.float32), np.zeros((1, 3, 480, 640), np.float32)
    assert scored_shapes([crop, frame]) == ["1x3x480x640"]
    assert scored_shapes([crop]) == ["1x3x32x32"]


def test_the_tuners_statistic_ignores_rounds_slowed_by_other_load():
    from edgeae.runtime.tuning import interleaved_medians, lower_quartiles

    # A candidate that another process slows in half of its rounds (here: every other call sleeps longer).
    calls = {"n": 0}

    def sometimes_slowed():
        calls["n"] += 1
        time.sleep(0.030 if calls["n"] % 2 else 0.001)

    steady = lambda: time.sleep(0.010)
    quartile = lower_quartiles({"slowed": sometimes_slowed, "steady": steady}, rounds=8, warmup=0)
    median = interleaved_medians({"slowed": sometimes_slowed, "steady": steady}, rounds=8, warmup=0)
    assert quartile["slowed"] < quartile["steady"]  # its unloaded cost is the lower one
    assert median["slowed"] > quartile["slowed"]


def test_a_small_input_pick_runs_small_batches_and_frames_run_the_winner(trained_run, tmp_path):
    run = _copy(trained_run, tmp_path)
    sidecar = tune(run, TuneConfig(budget_s=0.1, backends=("onnxruntime",), shapes=((1, 3, 32, 32), (1, 3, 64, 96)),
                                   min_rounds=1, max_rounds=1), progress=False)
    assert sidecar["winner_small"]["shapes"] == ["1x3x32x32"]
    # Force a small pick other than the winner (timings on 1 round decide nothing): fused vs two sessions.
    entries = [e for e in sidecar["stages"][0]["candidates"] if bool(e["fused"]) != bool(sidecar["winner"]["fused"])]
    sidecar["winner_small"] = {**entries[0], "shapes": ["1x3x32x32"]}
    (run / "tuning.json").write_text(json.dumps(sidecar))
    crop, frame = tuning.timing_inputs(((1, 3, 32, 32), (1, 3, 64, 96)))
    with Autoencoder.load(run) as ae:
        assert ae.small is not None and "under 4096 pixels" in ae.describe()
        assert (ae.small.fused is not None) == bool(entries[0]["fused"])
        calls = []
        original = ae.small.reconstruct_batch
        ae.small.reconstruct_batch = lambda x: calls.append(x.shape) or original(x)
        ae.reconstruct_batch(crop), ae.reconstruct_batch(frame)
        assert calls == [crop.shape]
    with Autoencoder.load(run, backend="onnxruntime") as ae:  # a named backend: its best form, no small pick
        assert ae.small is None


def test_a_tuned_runtime_missing_here_only_takes_its_candidates_out(tuned_run, tmp_path, monkeypatch):
    # Tuned with OpenVINO installed, loaded where it is not (a Triton server's venv): the best ONNX Runtime form runs.
    shutil.copytree(tuned_run, tmp_path / "run")
    run = tmp_path / "run"
    sidecar = _sidecar(run)
    ort_best = sidecar["best"]["onnxruntime fp32"]
    openvino = {**ort_best, "backend": "openvino", "label": "openvino fp32 fused", "score": ort_best["score"] / 2,
                "options": {"threads": 2}}
    sidecar["key"]["runtimes"]["openvino"] = "2026.4.0"
    sidecar["best"]["openvino fp32"] = sidecar["winner"] = openvino
    (run / "tuning.json").write_text(json.dumps(sidecar))
    installed = tuning.runtime_version
    monkeypatch.setattr(tuning, "runtime_version", lambda b: None if b == "openvino" else installed(b))
    form, note = tuning.tuned_candidate(run)
    assert form is not None and form.backend == "onnxruntime" and form.label == ort_best["label"] and "tuned here" in note
    monkeypatch.setattr(tuning, "runtime_version", lambda b: None)
    assert tuning.tuned_candidate(run)[0] is None
    assert "none of the tuned runtimes" in tuning.read_sidecar(run)[1]


def test_small_inputs_get_a_stage_of_their_own_that_no_frame_pick_comes_from(trained_run, tmp_path):
    run = _copy(trained_run, tmp_path)
    sidecar = tune(run, TuneConfig(budget_s=0.1, backends=("onnxruntime",), shapes=((1, 3, 32, 32), (1, 3, 64, 96)),
                                   min_rounds=1, max_rounds=1), progress=False)
    small = next(s for s in sidecar["stages"] if s["stage"] == tuning.SMALL_STAGE)
    assert small["rounds"] == tuning.SMALL_ROUNDS and small["shapes"] == ["1x3x32x32"]
    assert all(set(e["ms"]) == {"1x3x32x32"} for e in small["candidates"])
    assert {e["options"]["threads"] for e in small["candidates"] if e["options"]} >= {1}
    assert sidecar["winner_small"]["label"] == small["candidates"][0]["label"]  # the fastest there
    assert "1x3x64x96" in sidecar["winner"]["ms"]  # the frame pick comes from the frame stages
    assert "–" in tuning.format_tuning(sidecar)  # the small stage shows no frame times


def test_streams_are_picked_only_where_they_beat_one_call_at_a_time_clearly():
    assert tuning.pick_streams({1: 1.0, 2: 1.2}) == 2
    assert tuning.pick_streams({1: 1.0, 2: 1.01}) == 1  # 1 %: within a paired median's timing noise
    assert tuning.pick_streams({1: 1.0, 2: 0.9}) == 1
    assert tuning.pick_streams({1: 1.0, 2: 1.1, 4: 1.3, 8: 1.2}) == 4


def test_stream_gains_are_paired_by_round_so_a_machine_slowing_down_moves_both_alike():
    # 2 streams faster in every round, while the machine slowed down 3× over the rounds
    times = {1: [30.0, 60.0, 90.0], 2: [25.0, 50.0, 75.0]}
    assert tuning.stream_gains(times) == {1: 1.0, 2: pytest.approx(1.2)}
    # unpaired, the slow rounds of one side could meet the fast rounds of the other: paired, they cannot
    assert tuning.pick_streams(tuning.stream_gains({1: [30.0, 90.0, 60.0], 2: [31.0, 92.0, 61.0]})) == 1
    assert tuning.stream_counts(1) == [1] and tuning.stream_counts(2) == [1, 2] and tuning.stream_counts(16) == [1, 2, 8, 16]


def test_the_throughput_stage_times_the_winner_and_files_load_with_its_streams(tuned_run, tmp_path, monkeypatch):
    sidecar = _sidecar(tuned_run)
    winner = Candidate.from_dict(sidecar["winner"])
    monkeypatch.setattr(tuning, "machine_threads", lambda: 2)
    measured = tuning.throughput_stage(tuned_run, winner, tuning.timing_inputs(QUICK.shapes))
    assert measured["label"] == winner.label and set(measured["frames_per_s"]) == {"1", "2"}
    assert measured["streams"] == tuning.pick_streams({int(n): g for n, g in measured["gain"].items()})
    run = tmp_path / "run"
    shutil.copytree(tuned_run, run)
    (run / "tuning.json").write_text(json.dumps({**sidecar, "throughput": {**measured, "streams": 2}}))
    with Autoencoder.load(run, streams=0) as files, Autoencoder.load(run) as camera, \
            Autoencoder.load(run, backend="onnxruntime", precision="fp32", form=None, streams=0) as named:
        assert files.streams == 2 and "streams 2" in files.describe()
        assert camera.streams == 1  # latency: every core on each call
        # a form the throughput stage did not time keeps 1 stream; the winner named by its backend gets its streams
        named_form, _ = tuning.tuned_candidate(run, "onnxruntime", "fp32")
        assert named.streams == (2 if named_form.label == winner.label else 1)
    assert "frames in flight" in tuning.format_tuning({**sidecar, "throughput": measured})


def test_onnxruntime_streams_split_the_threads_between_calls(trained_run):
    from edgeae.errors import EdgeAEError
    from edgeae.runtime.backends.onnxruntime import OnnxRuntimeBackend

    for threads, streams, per_call in ((4, 2, 2), (1, 2, 1), (3, 1, 3)):
        with OnnxRuntimeBackend.load(trained_run / "encoder.onnx", threads=threads, streams=streams) as backend:
            assert backend.streams == streams
            assert backend.session.get_session_options().intra_op_num_threads == per_call
    with pytest.raises(EdgeAEError, match="streams must be 1 or more"):
        OnnxRuntimeBackend.load(trained_run / "encoder.onnx", streams=0)


def _scored(label: str, score: float, stage: str = "structure", precision: str = "fp32") -> Measured:
    return Measured(Candidate.make("onnxruntime", precision, label, "e", "d"), stage, {SHAPE: score}, score)


def test_the_runoff_takes_the_candidates_close_to_the_fastest_by_their_latest_score():
    measured = [_scored("a", 0.50), _scored("b", 0.54), _scored("c", 0.56), _scored("i", 0.40, precision="int8"),
                _scored("s", 0.10, stage=tuning.SMALL_STAGE), _scored("b", 0.70, stage="threads")]
    # b's latest stage re-timed it at 0.70: out; int8 only where picked; the small-input stage never counts
    assert [c.decoder_form for c in tuning.finalists(measured, int8_picked=False)] == ["a"]
    assert [c.decoder_form for c in tuning.finalists(measured, int8_picked=True)] == ["i"]
    many = [_scored(str(i), 0.5 + i / 1000) for i in range(10)]
    assert len(tuning.finalists(many, False)) == tuning.RUNOFF_MAX and tuning.finalists([], False) == []


def test_the_pick_comes_from_a_runoff_of_the_close_candidates_timed_afresh(trained_run, tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "RUNOFF_MARGIN", float("inf"))  # every candidate is close: the runoff always runs
    sidecar = tune(_copy(trained_run, tmp_path), QUICK, progress=False)
    final = sidecar["stages"][-1]
    assert final["stage"] == tuning.RUNOFF_STAGE and final["rounds"] == tuning.RUNOFF_ROUNDS
    assert len(final["finalists"]) == tuning.RUNOFF_MAX
    in_runoff = [e for e in final["candidates"] if e["label"] in final["finalists"]]  # fastest first
    assert sidecar["winner"]["label"] == in_runoff[0]["label"] and sidecar["winner"]["stage"] == tuning.RUNOFF_STAGE
    assert "runoff" in tuning.format_tuning(sidecar)


def test_a_stage_timed_while_the_machine_was_busy_is_timed_again(trained_run, tmp_path, monkeypatch):
    # The baseline is the load gauge: every stage times it. Here the threads stage's first timing (the second call of
    # lower_quartiles: one frame shape per stage) finds it 100× its time in the structure stage (beyond any timing
    # noise of sub-millisecond calls), as a burst of other work would, so that stage is recorded busy and timed again.
    run = _copy(trained_run, tmp_path)
    real, calls, baseline = tuning.lower_quartiles, [], tuning.baseline_candidate(run)

    def timed(fns, rounds, warmup=1, block=1):
        calls.append(1)
        out = real(fns, rounds, warmup, block)
        return {c: 100 * v if c == baseline and len(calls) == 2 else v for c, v in out.items()}

    monkeypatch.setattr(tuning, "lower_quartiles", timed)
    cfg = TuneConfig(budget_s=0.1, backends=("onnxruntime",), shapes=((1, 3, 64, 96),), min_rounds=1, max_rounds=1)
    sidecar = tune(run, cfg, progress=False)
    names = [tuning.stage_name(s) for s in sidecar["stages"]]
    assert names[:3] == ["structure", "threads busy", "threads"]
    assert "timed again" in sidecar["stages"][1]["busy"] and "threads busy:" in tuning.format_tuning(sidecar)
    assert not sidecar["stages"][2].get("busy")  # timed again once at most, kept whatever it found
