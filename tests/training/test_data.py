import pickle

import numpy as np
import pytest

from edgeae.errors import EdgeAEError
from edgeae.training import data
from edgeae.training.noise import add_noise


def test_synthetic_images_are_deterministic_rgb_uint8():
    a, b = data.synthetic_images(3, seed=5), data.synthetic_images(3, seed=5)
    assert all(x.dtype == np.uint8 and x.shape == (96, 128, 3) for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_random_crops_are_32x32_and_seeded():
    images = data.synthetic_images(4)
    c1 = data.random_crops(images, 10, 32, np.random.default_rng(1))
    c2 = data.random_crops(images, 10, 32, np.random.default_rng(1))
    assert c1.shape == (10, 32, 32, 3) and np.array_equal(c1, c2)


def test_video_source_is_sampled_as_rgb(synthetic_video):
    frames = data.load_images(str(synthetic_video), max_images=6)
    assert len(frames) == 6 and frames[0].shape == (64, 96, 3)
    # the square is drawn in BGR (30, 200, 240): RGB puts 240 first
    assert frames[0][28, 10].tolist()[0] > 200


def test_image_folder_source(tmp_path):
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((40, 50), 100 + i, np.uint8))  # grayscale on disk
    images = data.load_images(str(tmp_path))
    assert len(images) == 3 and images[0].shape == (40, 50, 3)


def test_cifar_pickle_batches_read_without_torchvision(tmp_path):
    raw = np.arange(2 * 3072, dtype=np.uint32).astype(np.uint8).reshape(2, 3072)
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"data": raw, b"labels": [0, 1]}, f)
    images = data.load_images(f"cifar:{tmp_path}")
    assert len(images) == 2 and images[0].shape == (32, 32, 3)
    assert images[0][0, 0].tolist() == [raw[0, 0], raw[0, 1024], raw[0, 2048]]


@pytest.mark.parametrize("make_source, message", [
    (lambda p: str(p / "missing"), "not found"),
    (lambda p: str(p), "has no images"),
])
def test_missing_or_empty_data_folder_is_a_clear_error(tmp_path, make_source, message):
    with pytest.raises(EdgeAEError, match=message):
        data.load_images(make_source(tmp_path))


def test_a_file_that_is_not_a_video_is_a_clear_error(tmp_path):
    bogus = tmp_path / "clip.avi"
    bogus.write_bytes(b"not a video at all" * 100)
    with pytest.raises(EdgeAEError, match="cannot be opened|no frames"):
        data.load_images(str(bogus))


@pytest.mark.parametrize("kind, level", [("gaussian", 25 / 255), ("salt_pepper", 0.05), ("poisson", 30.0)])
def test_noise_changes_images_and_stays_in_range(kind, level):
    clean = np.full((4, 8, 8, 3), 0.5, np.float32)
    noisy = add_noise(clean, kind, level, np.random.default_rng(0))
    assert noisy.shape == clean.shape and 0 <= noisy.min() and noisy.max() <= 1
    assert not np.allclose(noisy, clean)
