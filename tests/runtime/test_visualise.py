"""Labels on the images a person looks at: side-by-side PNGs, anomaly overlays."""

import numpy as np
import pytest

from edgeae.runtime.tasks.anomaly import overlay
from edgeae.runtime.visualise import LABEL_BANNER, side_by_side

GREEN = (0, 160, 0)


def banner_region(image: np.ndarray) -> np.ndarray:
    """The label's banner, found from the image's top-left corner (where every label starts)."""
    assert image[0, 0].tolist() == list(LABEL_BANNER), "no banner at the top-left corner"
    is_banner = np.all(image == LABEL_BANNER, axis=-1)
    width = int(np.argmin(is_banner[0])) or image.shape[1]
    height = int(np.argmin(is_banner[:, 0])) or image.shape[0]
    return image[:height, :width].astype(int)


@pytest.mark.parametrize("width", [96, 384, 1920])
def test_side_by_side_labels_are_one_white_stroke_on_a_banner(width):
    frame = np.full((width * 3 // 4, width, 3), GREEN, np.uint8)
    image, _ = side_by_side(frame, frame.copy())
    for panel in (image[:, :width], image[:, width:]):
        label = banner_region(panel)
        # One white stroke anti-aliased onto grey: every pixel grey, none darker than the banner (no outline
        # stroke under the text) and none of the frame's green showing between the letters.
        assert np.all(label[..., 0] == label[..., 1]) and np.all(label[..., 1] == label[..., 2])
        assert label.min() >= LABEL_BANNER[0] and label.max() > 200


def test_side_by_side_keeps_both_frames_size_and_reports_their_psnr():
    left = np.full((48, 64, 3), 100, np.uint8)
    image, score = side_by_side(left, left + 10)
    assert image.shape == (48, 128, 3) and score == pytest.approx(20 * np.log10(255 / 10))


def test_anomaly_overlay_score_is_one_coloured_stroke_on_a_banner():
    frame = np.full((288, 384, 3), GREEN, np.uint8)
    image = overlay(frame, np.full((72, 96), 2.0, np.float32), threshold=1.0, score=2.0, box=None, alarm=True)
    label = banner_region(image)
    # red (0, 0, 255) anti-aliased onto the grey banner: blue and green fall together, red only rises (a dark
    # outline stroke would take red below the banner's)
    blue, green, red = label[..., 0], label[..., 1], label[..., 2]
    assert np.all(blue == green) and blue.max() <= LABEL_BANNER[0]
    assert red.min() >= LABEL_BANNER[2] and red.max() > 200
