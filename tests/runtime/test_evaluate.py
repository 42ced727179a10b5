"""`edgeae eval`: the scores against scikit-learn, the DATA layouts, and each task end to end on a tiny model."""

import json
import shutil

import cv2
import numpy as np
import pytest

from edgeae.cli import main
from edgeae.errors import EdgeAEError
from edgeae.runtime.evaluate import (EvalConfig, anomaly_metrics, anomaly_samples, auroc, denoise_pairs, evaluate,
                                     results_config_path)
from edgeae.runtime.tasks.anomaly import AnomalyConfig, calibrate_run
from edgeae.runtime.visualise import write_image
from edgeae.training.data import synthetic_images


def _sklearn_auroc(scores, labels):
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn (the dev extra) is not installed")
    return metrics.roc_auc_score(labels, scores)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_equals_scikit_learns_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, 300).astype(float)  # few distinct values: many ties
    labels = rng.random(300) < 0.3
    assert auroc(scores, labels) == pytest.approx(_sklearn_auroc(scores, labels), abs=1e-12)


def test_auroc_without_both_classes_is_nan():
    assert np.isnan(auroc(np.arange(5.0), np.zeros(5, bool)))


def test_anomaly_metrics_count_decisions_at_the_threshold_and_per_defect():
    scores = [0.1, 0.2, 0.9, 0.8, 0.3, 0.15]
    kinds = ["", "", "dent", "dent", "scratch", "scratch"]
    m = anomaly_metrics(scores, kinds, threshold=0.5)
    assert m["counts"] == {"true_positive": 2, "false_positive": 0, "false_negative": 2, "true_negative": 2}
    assert (m["precision"], m["recall"], m["false_positive_rate"]) == (1.0, 0.5, 0.0)
    assert m["per_defect"]["dent"] == {"images": 2, "image_auroc": 1.0, "pixel_auroc": None, "recall": 1.0}
    assert m["per_defect"]["scratch"]["image_auroc"] == 0.75 and m["per_defect"]["scratch"]["recall"] == 0.0


# ---------------------------------------------------------------------------------------------------
# Layouts


def _touch_images(folder, names, shape=(8, 8)):
    for name in names:
        write_image(folder / name, np.zeros((*shape, 3), np.uint8))


def test_anomaly_layout_reads_kinds_and_matches_masks_by_name(tmp_path):
    _touch_images(tmp_path / "good", ["a.png", "b.png"])
    _touch_images(tmp_path / "defect" / "dent", ["c.png", "d.png"])
    _touch_images(tmp_path / "defect", ["e.png"])
    _touch_images(tmp_path / "mask" / "dent", ["c_mask.png"])
    _touch_images(tmp_path / "mask", ["e.png"])
    samples = {s.path.name: s for s in anomaly_samples(tmp_path)}
    assert [samples[n].kind for n in "a.png b.png c.png d.png e.png".split()] == ["", "", "dent", "dent", "defect"]
    assert samples["c.png"].mask.name == "c_mask.png" and samples["d.png"].mask is None
    assert samples["e.png"].mask.name == "e.png"


def test_an_mvtec_category_folder_is_read_as_it_is(tmp_path):
    _touch_images(tmp_path / "train" / "good", ["000.png"])
    _touch_images(tmp_path / "test" / "good", ["000.png"])
    _touch_images(tmp_path / "test" / "crack", ["000.png", "001.png"])
    _touch_images(tmp_path / "ground_truth" / "crack", ["000_mask.png", "001_mask.png"])
    samples = anomaly_samples(tmp_path)
    assert sorted((s.kind, s.path.relative_to(tmp_path).as_posix()) for s in samples) == [
        ("", "test/good/000.png"), ("crack", "test/crack/000.png"), ("crack", "test/crack/001.png")]
    assert all(s.mask is not None for s in samples if s.kind)


@pytest.mark.parametrize("layout, message", [({"good": ["a.png"]}, "no good/ or defect/ folder"),
                                             ({"good": ["a.png"], "defect": []}, "needs normal and defective"),
                                             ({"images": ["a.png"]}, "no good/ or defect/ folder")],
                         ids=["no defect folder", "no defective images", "a plain folder"])
def test_a_bad_anomaly_layout_is_one_line_naming_the_expected_one(tmp_path, trained_run, layout, message, capsys):
    for folder, names in layout.items():
        (tmp_path / folder).mkdir()
        _touch_images(tmp_path / folder, names)
    assert main(["eval", str(trained_run), "--task", "anomaly", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "DATA/good/" in err, err


def test_denoise_pairs_without_a_partner_are_refused_by_name(tmp_path):
    _touch_images(tmp_path / "noisy", ["a.png", "b.png"])
    _touch_images(tmp_path / "clean", ["a.png", "c.png"])
    with pytest.raises(EdgeAEError, match="2 image.* without a partner .*b, c"):
        denoise_pairs(tmp_path)


def test_a_mask_of_another_size_than_its_image_is_refused(calibrated_run, tmp_path):
    data = tmp_path / "data"
    _touch_images(data / "good", ["a.png"], shape=(64, 96))
    _touch_images(data / "defect", ["b.png"], shape=(64, 96))
    _touch_images(data / "mask", ["b_mask.png"], shape=(32, 48))
    with pytest.raises(EdgeAEError, match="b_mask.png is 48x32, its image 96x64"):
        evaluate(EvalConfig(run=str(calibrated_run), task="anomaly", data=str(data)), progress=False)


# ---------------------------------------------------------------------------------------------------
# End to end on the session's tiny model


def _bgr(images):
    return [cv2.cvtColor(i, cv2.COLOR_RGB2BGR) for i in images]


@pytest.fixture(scope="module")
def calibrated_run(trained_run, tmp_path_factory):
    """A copy of the tiny model calibrated on 8 synthetic 64×96 scenes."""
    root = tmp_path_factory.mktemp("eval")
    run = shutil.copytree(trained_run, root / "run", ignore=shutil.ignore_patterns("anomaly*"))
    for i, image in enumerate(_bgr(synthetic_images(8, size=(64, 96), seed=11))):
        write_image(root / "normal" / f"{i}.png", image)
    calibrate_run(run, str(root / "normal"), AnomalyConfig(top_k=16), progress=False, threads=1)
    return run


@pytest.fixture(scope="module")
def anomaly_set(tmp_path_factory):
    """4 normal scenes, 3 with a flat square and 3 with a thick line pasted in, each with its mask."""
    root = tmp_path_factory.mktemp("anomaly_set")
    scenes = _bgr(synthetic_images(10, size=(64, 96), seed=12))
    for i, image in enumerate(scenes[:4]):
        write_image(root / "good" / f"{i}.png", image)
    for i, image in enumerate(scenes[4:], start=4):
        kind = "square" if i < 7 else "line"
        mask = np.zeros(image.shape[:2], np.uint8)
        if kind == "square":
            mask[10 + i:30 + i, 20 + 5 * i:40 + 5 * i] = 255
        else:
            cv2.line(mask, (5, 5 + i), (90, 50), 255, 4)
        image = image.copy()
        image[mask > 0] = (255, 0, 255)
        write_image(root / "defect" / kind / f"{i}.png", image)
        write_image(root / "mask" / kind / f"{i}_mask.png", mask)
    return root


def test_anomaly_eval_writes_json_in_range_with_auroc_equal_to_sklearns(calibrated_run, anomaly_set, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", str(calibrated_run), "--task", "anomaly", "--data", str(anomaly_set), "--json", str(out),
                 "--threads", "1"]) == 0
    result = json.loads(out.read_text())
    assert (result["images"], result["normal_images"], result["defect_images"]) == (10, 4, 6)
    assert set(result["per_defect"]) == {"square", "line"} and result["pixel_auroc_images"] == 10
    for key in ("image_auroc", "pixel_auroc", "precision", "recall", "f1", "false_positive_rate"):
        assert 0 <= result[key] <= 1, key
    rows = result["per_image"]
    assert result["image_auroc"] == pytest.approx(_sklearn_auroc([r["score"] for r in rows], [r["kind"] != "" for r in rows]))
    assert result["threshold_from"].startswith("anomaly.json")
    assert json.loads(results_config_path(out).read_text())["task"] == "anomaly"
    table = capsys.readouterr().out
    assert "image AUROC" in table and "square" in table and f"wrote {out}" in table


def test_anomaly_eval_threshold_overrides_the_calibrated_one(calibrated_run, anomaly_set):
    cfg = EvalConfig(run=str(calibrated_run), task="anomaly", data=str(anomaly_set), threads=1)
    calibrated = evaluate(cfg, progress=False)
    lowest = min(r["score"] for r in calibrated["per_image"])
    flagged_all = evaluate(EvalConfig(**{**cfg.__dict__, "threshold": lowest / 2}), progress=False)
    assert flagged_all["threshold"] == lowest / 2 and flagged_all["threshold_from"] == "--threshold"
    assert flagged_all["recall"] == 1.0 and flagged_all["false_positive_rate"] == 1.0
    assert flagged_all["image_auroc"] == calibrated["image_auroc"]  # the ranking does not depend on it


def _clean_folder(root, n=3, size=(64, 96)):
    for i, image in enumerate(_bgr(synthetic_images(n, size=size, seed=13))):
        write_image(root / f"{i}.png", image)
    return root


def test_denoise_eval_adds_seeded_noise_per_sigma(trained_run, tmp_path):
    cfg = EvalConfig(run=str(trained_run), task="denoise", data=str(_clean_folder(tmp_path / "clean")),
                     sigmas=(10, 40), seed=3, threads=1)
    first, again = evaluate(cfg, progress=False), evaluate(cfg, progress=False)
    assert [r["sigma"] for r in first["rows"]] == [10, 40] and all(r["images"] == 3 for r in first["rows"])
    assert first["rows"] == again["rows"]  # the same seed, the same noise, the same numbers
    low, high = first["rows"]
    assert low["input_psnr_db"] > high["input_psnr_db"] and 0 < high["input_ssim"] < low["input_ssim"] < 1
    assert all(np.isfinite(r["psnr_db"]) and 0 < r["ssim"] <= 1 for r in first["rows"])


def test_denoise_eval_scores_noisy_clean_pairs_as_given(trained_run, tmp_path):
    clean = _clean_folder(tmp_path / "data" / "clean")
    (tmp_path / "data" / "noisy").mkdir()
    for path in clean.iterdir():
        write_image(tmp_path / "data" / "noisy" / path.name, cv2.GaussianBlur(cv2.imread(str(path)), (5, 5), 0))
    result = evaluate(EvalConfig(run=str(trained_run), task="denoise", data=str(tmp_path / "data"), threads=1),
                      progress=False)
    assert result["pairs"] and [r["sigma"] for r in result["rows"]] == [None]
    assert result["rows"][0]["images"] == 3 and 0 < result["rows"][0]["input_ssim"] < 1


def test_compress_eval_gives_rate_distortion_curves_and_bd_rate(trained_run, tmp_path, capsys):
    data = _clean_folder(tmp_path / "frames", n=2, size=(176, 192))
    out = tmp_path / "rd.json"
    assert main(["eval", str(trained_run), "--task", "compress", "--data", str(data), "--bits", "3", "8",
                 "--quality", "10", "50", "90", "--json", str(out), "--threads", "1"]) == 0
    result = json.loads(out.read_text())
    assert set(result["curves"]) == {"autoencoder", "JPEG", "WebP"}
    assert [p["bits"] for p in result["curves"]["autoencoder"]] == [3, 8]
    for points in result["curves"].values():
        assert points[0]["bpp"] < points[-1]["bpp"]
        assert all(0 < p["ms_ssim"] <= 1 and 0 < p["ssim"] <= 1 and p["psnr_db"] > 5 for p in points)
    for bd in result["bd_rate_psnr"].values():  # a number, or none and why (curves of a 2-epoch model may not overlap)
        assert isinstance(bd["percent"], float) or (bd["percent"] is None and bd["why"])
    assert "BD-rate (PSNR) of the autoencoder against JPEG" in capsys.readouterr().out


def test_eval_refuses_to_write_its_json_over_the_data(trained_run, tmp_path, capsys):
    image = tmp_path / "one.png"
    write_image(image, np.zeros((32, 32, 3), np.uint8))
    assert main(["eval", str(trained_run), "--task", "compress", "--data", str(image), "--json", str(image)]) == 2
    assert "--json" in capsys.readouterr().err


def test_eval_runs_on_a_device_without_torch(trained_run, tmp_path, run_without_torch):
    data = _clean_folder(tmp_path / "frames", n=1)
    result = run_without_torch(f"""
        from edgeae.cli import main
        assert main(["eval", {str(trained_run)!r}, "--task", "denoise", "--data", {str(data)!r}, "--threads", "1"]) == 0
        assert not {{"torch", "edgeae.training", "edgeae.export"}} & set(sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    assert "PSNR dB" in result.stdout
