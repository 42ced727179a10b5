import io
import pickle
import struct

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


class _Py2Pickler(pickle._Pickler):
    """Pickles bytes and str as Python 2 strings (SHORT_BINSTRING / BINSTRING), as cPickle wrote CIFAR-10."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes | str) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_py2_str


def _cifar_10_batch_bytes(data: np.ndarray) -> bytes:
    """A batch in CIFAR-10's own format: a protocol-2 Python 2 pickle naming numpy.core.multiarray."""
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": [3, 7][:len(data)], b"data": data,
             b"filenames": [b"a.png", b"b.png"][:len(data)]}
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(batch)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def test_cifar_10_batch_in_its_original_python_2_format_loads(tmp_path):
    raw = np.random.default_rng(0).integers(0, 256, (2, 3072), dtype=np.uint8)
    (tmp_path / "data_batch_1").write_bytes(_cifar_10_batch_bytes(raw))
    images = data.load_images(str(tmp_path))
    assert len(images) == 2 and np.array_equal(images[1].transpose(2, 0, 1).reshape(3072), raw[1])


class _CreatesAFile:
    """A pickle payload: unpickling it calls open(path, "w")."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _write_hostile_batch(folder, marker) -> None:
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _CreatesAFile(marker), b"labels": []}, f)


def test_cifar_batch_that_would_run_code_is_refused_before_it_runs(tmp_path):
    _write_hostile_batch(tmp_path, tmp_path / "pwned")
    with pytest.raises(EdgeAEError, match=r"not a CIFAR-10 batch: it asks to run '[a-z_]+\.open'"):
        data.load_images(f"cifar:{tmp_path}")
    assert not (tmp_path / "pwned").exists()


def test_train_on_a_hostile_cifar_folder_exits_2_with_one_line_and_runs_nothing(tmp_path, capsys):
    from edgeae.cli import main

    (tmp_path / "data").mkdir()
    _write_hostile_batch(tmp_path / "data", tmp_path / "pwned")
    assert main(["train", "--data", str(tmp_path / "data"), "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "not a CIFAR-10 batch" in err, err
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content", [b"", b"\x80\x02}q\x00(U\x04data", pickle.dumps({b"labels": [1]}),
                                     pickle.dumps({b"data": np.zeros((2, 100), np.uint8)})],
                         ids=["empty", "truncated", "no data", "not 3072 values per image"])
def test_truncated_or_wrong_cifar_batch_is_one_line_error(tmp_path, content):
    (tmp_path / "data_batch_1").write_bytes(content)
    with pytest.raises(EdgeAEError, match="CIFAR-10 batch") as info:
        data.load_images(str(tmp_path))
    assert "\n" not in str(info.value)


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


def test_images_smaller_than_the_crop_are_skipped_with_a_count_in_the_log(caplog):
    images = [np.zeros((130, 100, 3), np.uint8), np.zeros((192, 256, 3), np.uint8), np.zeros((128, 128, 3), np.uint8)]
    with caplog.at_level("WARNING", logger="edgeae.train"):
        kept = data.drop_smaller_than(images, 128)
    assert [im.shape for im in kept] == [(192, 256, 3), (128, 128, 3)]
    assert "skipped 1 of 3 images smaller than the 128x128 training crop (the smallest is 100x130)" in caplog.text


def test_cifar_with_the_default_crop_is_one_line_naming_the_crop_size_to_use(tmp_path, capsys):
    from edgeae.cli import main

    (tmp_path / "cifar").mkdir()
    with open(tmp_path / "cifar" / "data_batch_1", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 4}, f)
    assert main(["train", "--data", f"cifar:{tmp_path / 'cifar'}", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "0 of 4 images are at least 128x128" in err and "--crop-size" in err, err
