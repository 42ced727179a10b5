import numpy as np

from benchmarks.metrics import auroc, psnr, ssim


def test_auroc_is_one_for_perfect_separation_and_half_for_ties():
    labels = np.array([0, 0, 1, 1])
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert auroc(np.ones(4), labels) == 0.5


def test_auroc_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(0, 5, 200).astype(float), rng.random(200) < 0.3
    pos, neg = scores[labels], scores[~labels]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert np.isclose(auroc(scores, labels), pairwise)


def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    img = np.broadcast_to(np.linspace(0, 255, 64)[None, :, None], (48, 64, 3)).astype(np.uint8)
    noisy = np.clip(img + np.random.default_rng(1).normal(0, 25, img.shape), 0, 255).astype(np.uint8)
    assert np.isclose(ssim(img, img), 1.0)
    assert ssim(img, noisy) < 0.9
    assert psnr(img, noisy.astype(np.uint8)) < psnr(img, img)
