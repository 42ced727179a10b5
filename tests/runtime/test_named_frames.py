"""--out-frames from an image folder: each output named after its source file, written losslessly."""

import cv2
import numpy as np

from edgeae.cli import main
from edgeae.runtime.sinks import ImageFolderSink, output_name


def test_frames_from_files_are_named_after_them_and_lossless():
    assert output_name("holiday.jpg", 3, ".jpg") == "holiday.png"  # JPEG source: PNG, never a second JPEG pass
    assert output_name("scan.TIFF", 3, ".jpg") == "scan.TIFF"  # lossless source keeps its format
    assert output_name("", 3, ".jpg") == "000003.jpg"  # video frames stay numbered, as before


def test_image_folder_sink_writes_the_exact_pixels_under_the_source_name(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    ImageFolderSink(tmp_path).write(image, 0, "cat.jpg")
    assert np.array_equal(cv2.imread(str(tmp_path / "cat.png")), image)


def test_run_over_a_folder_names_each_output_after_its_source(trained_run, tmp_path):
    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    rng = np.random.default_rng(1)
    for name in ("beach.jpg", "forest.png"):
        cv2.imwrite(str(src / name), rng.integers(0, 256, (48, 80, 3), dtype=np.uint8))
    assert main(["run", str(trained_run), "--task", "denoise", "--source", str(src), "--out-frames", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["beach.png", "forest.png"]
    assert cv2.imread(str(out / "forest.png")).shape == (48, 80, 3)
