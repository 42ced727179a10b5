"""augment: seeded latent perturbation and interpolation, decoded to PNGs and a contact sheet."""

import json

import cv2
import numpy as np
import pytest

from edgeae.cli import main
from edgeae.runtime.sources import iter_frames
from edgeae.runtime.tasks.augment import AugmentConfig, Recipe, augment, contact_sheet, make_latents, plan


def test_plan_alternates_perturbation_and_interpolation_of_distinct_samples():
    recipes = plan(6, 4, "both", np.random.default_rng(0))
    assert [r.kind for r in recipes] == ["perturb", "interpolate"] * 3
    assert all(r.a != r.b and 0.25 <= r.t <= 0.75 for r in recipes if r.kind == "interpolate")


def test_one_sample_can_only_be_perturbed():
    assert {r.kind for r in plan(4, 1, "interpolate", np.random.default_rng(0))} == {"perturb"}


def test_interpolation_mixes_the_two_latents():
    latent = np.stack([np.zeros((2, 3, 3), np.float32), np.full((2, 3, 3), 4, np.float32)])
    out = make_latents(latent, [Recipe("interpolate", 0, 1, 0.25)], noise=0.5, rng=np.random.default_rng(0))
    assert np.allclose(out, 1.0)


def test_perturbation_scales_with_each_channels_spread_and_stays_non_negative():
    rng = np.random.default_rng(0)
    latent = np.stack([rng.uniform(0, 1, (2, 8, 8)), rng.uniform(0, 1, (2, 8, 8))]).astype(np.float32)
    latent[:, 1] *= 100
    out = make_latents(latent, [Recipe("perturb", 0)] * 8, noise=0.5, rng=rng)
    change = np.abs(out - latent[0]).mean(axis=(0, 2, 3))
    assert out.min() >= 0 and 30 < change[1] / change[0] < 300


def test_contact_sheet_is_a_grid_of_thumbnails():
    images = [np.full((60, 80, 3), 10 * i, np.uint8) for i in range(5)]
    sheet = contact_sheet(images, [str(i) for i in range(5)], width=40)
    assert sheet.shape == (2 * 30, 3 * 40, 3)


@pytest.fixture(scope="module")
def augmented(trained_run, synthetic_video, tmp_path_factory):
    out = tmp_path_factory.mktemp("aug") / "a"
    augment(AugmentConfig(str(trained_run), str(synthetic_video), str(out), n=5, samples=4, seed=3))
    return out


def test_augment_writes_pngs_contact_sheet_and_manifest(augmented):
    manifest = json.loads((augmented / "augment.json").read_text())
    assert [item["file"] for item in manifest["images"]] == [f"augment_{i:04d}.png" for i in range(5)]
    assert manifest["config"]["seed"] == 3
    assert cv2.imread(str(augmented / "augment_0000.png")).shape == (64, 96, 3)
    assert cv2.imread(str(augmented / "contact_sheet.png")) is not None


def test_augment_with_the_same_seed_repeats_itself(augmented, trained_run, synthetic_video, tmp_path):
    assert main(["augment", str(trained_run), "--data", str(synthetic_video), "--n", "5", "--samples", "4",
                 "--seed", "3", "--out", str(tmp_path)]) == 0
    for i in range(5):
        name = f"augment_{i:04d}.png"
        assert np.array_equal(cv2.imread(str(tmp_path / name)), cv2.imread(str(augmented / name)))


def test_augment_from_missing_data_is_one_line(trained_run, tmp_path, capsys):
    assert main(["augment", str(trained_run), "--data", str(tmp_path / "none.avi"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not found" in err


@pytest.mark.footage
def test_augment_real_photos_of_different_sizes(footage, trained_run, tmp_path):
    result = augment(AugmentConfig(str(trained_run), str(footage), str(tmp_path), n=4, samples=6, seed=0))
    assert result["images"] == 4 and (tmp_path / "contact_sheet.png").is_file()


def test_augment_refuses_to_write_into_its_data_folder(trained_run, synthetic_video, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i, frame in enumerate(iter_frames(synthetic_video, limit=2)):
        cv2.imwrite(str(data / f"f{i}.png"), frame)
    assert main(["augment", str(trained_run), "--data", str(data), "--out", str(data), "--n", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is the data: writing it would destroy the input" in err
    assert sorted(p.name for p in data.iterdir()) == ["f0.png", "f1.png"]


@pytest.mark.parametrize("option", ["--n", "--samples"])
def test_augment_counts_below_one_are_a_usage_error(trained_run, synthetic_video, tmp_path, capsys, option):
    with pytest.raises(SystemExit) as exit_:
        main(["augment", str(trained_run), "--data", str(synthetic_video), "--out", str(tmp_path / "a"), option, "0"])
    assert exit_.value.code == 2 and option in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
