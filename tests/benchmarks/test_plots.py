"""The report's plots: readable axes."""

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="matplotlib (the dev and train extras) is not installed")

from benchmarks.plots import rate_distortion_figure  # noqa: E402


def curve(low: float, high: float, n: int = 8) -> list[dict]:
    return [{"bpp": float(b), "psnr_db": 20 + 5 * np.log2(b / low), "ssim": 0.8} for b in np.geomspace(low, high, n)]


@pytest.mark.parametrize("low, high", [(0.19, 2.7), (0.02, 12.0), (0.4, 0.9)])
def test_rate_distortion_bpp_tick_labels_do_not_overlap(low, high):
    fig = rate_distortion_figure({"curves": {"autoencoder": curve(low, high), "JPEG": curve(low * 0.9, high * 1.1)}})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        ticks = ax.xaxis.get_major_ticks() + ax.xaxis.get_minor_ticks()
        labels = [t.label1 for t in ticks if t.label1.get_visible() and t.label1.get_text()
                  and low * 0.9 <= t.get_loc() <= high * 1.1]
        assert labels, "no bpp is labelled"
        boxes = sorted((lb.get_window_extent(renderer) for lb in labels), key=lambda b: b.x0)
        for left, right in zip(boxes, boxes[1:]):
            assert left.x1 <= right.x0, f"tick labels overlap: {[lb.get_text() for lb in labels]}"
