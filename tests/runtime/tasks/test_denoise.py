"""Denoise/reconstruct task: output frames, side-by-side, on real footage."""

import cv2
import numpy as np

from edgeae.runtime.pipeline import RunConfig, run
from edgeae.runtime.preprocess import batch_to_frames
from edgeae.runtime.tasks.denoise import recon_to_bgr


def test_recon_to_bgr_matches_batch_to_frames():
    recon = np.random.default_rng(0).random((1, 3, 32, 48), np.float32)
    np.testing.assert_array_equal(recon_to_bgr(recon[0], 30, 40), batch_to_frames(recon, (30, 40))[0])


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
