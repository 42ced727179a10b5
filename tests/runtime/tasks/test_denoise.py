"""Denoise/reconstruct task: output frames, side-by-side, on real footage."""

import cv2
import numpy as np

from edgeae.runtime.pipeline import RunConfig, run
from edgeae.runtime.preprocess import batch_to_frames
from edgeae.runtime.sources import Frame
from edgeae.runtime.tasks.denoise import DenoiseTask


def test_the_output_frame_is_the_models_output_saturated_and_cropped():
    recon = np.random.default_rng(0).random((1, 3, 32, 48), np.float32)
    recon[0, 0, :2, :2] = -0.1  # an overshoot below 0 (int8, fp16) is black, not its absolute value
    frame = Frame(np.zeros((30, 40, 3), np.uint8), 0, 0.0, "cam")
    (result,) = DenoiseTask().process([frame], None, recon, draw=True)
    np.testing.assert_array_equal(result.image, batch_to_frames(recon, (30, 40))[0])
    assert result.image.shape == (30, 40, 3) and (result.image[:2, :2, 2] == 0).all()


def test_denoise_on_vtest_writes_side_by_side_video(vtest_run, footage, tmp_path):
    out = tmp_path / "denoise.avi"
    summary = run(RunConfig(run=str(vtest_run), task="denoise", sources=(str(footage / "vtest.avi"),),
                            out_video=str(out), side_by_side=True, max_frames=6, threads=1), progress=False)
    cap = cv2.VideoCapture(str(out))
    assert summary["frames"] == 6 and summary["events"]["frame"] == 6
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (2 * 768, 576)


def test_reconstruct_on_vtest_writes_frames(vtest_run, footage, tmp_path):
    run(RunConfig(run=str(vtest_run), task="reconstruct", sources=(str(footage / "vtest.avi"),),
                  out_frames=str(tmp_path / "frames"), max_frames=3, threads=1), progress=False)
    images = sorted((tmp_path / "frames").glob("[!.]*"))  # not the hidden .edgeae.lock
    assert [p.name for p in images] == ["000000.jpg", "000001.jpg", "000002.jpg"]
    assert cv2.imread(str(images[0])).shape == (576, 768, 3)
