import pytest
import torch

from edgeae.errors import EdgeAEError
from torch import nn

from edgeae.training.model import Autoencoder, ModelConfig, load_state


def test_seed_architecture_is_exactly_the_reference():
    model = Autoencoder()
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    deconvs = [m for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 12), (12, 24), (24, 48), (48, 96)]
    assert [(c.in_channels, c.out_channels) for c in deconvs] == [(96, 48), (48, 24), (24, 12), (12, 3)]
    for c in convs + deconvs:
        assert (c.kernel_size, c.stride, c.padding) == ((4, 4), (2, 2), (1, 1))
    assert [type(m).__name__ for m in model.encoder] == ["Conv2d", "ReLU"] * 4
    assert [type(m).__name__ for m in model.decoder] == ["ConvTranspose2d", "ReLU"] * 3 + ["ConvTranspose2d", "Sigmoid"]


def test_latent_is_96x2x2_for_32x32_and_output_matches_input():
    model = Autoencoder()
    x = torch.rand(5, 3, 32, 32)
    assert model.encoder(x).shape == (5, 96, 2, 2)
    y = model(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1


def test_fully_convolutional_on_frames_with_sides_multiple_of_16():
    assert Autoencoder()(torch.rand(1, 3, 48, 80)).shape == (1, 3, 48, 80)


def test_widths_are_configurable_without_changing_the_default():
    wide = Autoencoder(ModelConfig.named("wide"))
    assert wide.encoder(torch.rand(1, 3, 32, 32)).shape[1] == 128
    assert ModelConfig().widths == (12, 24, 48, 96)


def test_checkpoint_from_another_architecture_is_a_clear_error():
    wide_state = Autoencoder(ModelConfig.named("wide")).state_dict()
    with pytest.raises(EdgeAEError, match="does not fit architecture seed"):
        load_state(Autoencoder(), wide_state, "wide.pt")


def test_denoiser_latent_is_the_denoised_image_unshuffled():
    cfg = ModelConfig.named("denoiser")
    model = Autoencoder(cfg).eval()
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        z = model.encoder(x)
        assert cfg.downsample == 4 and z.shape == (2, 48, 8, 12) and cfg.latent_channels == 48
        assert torch.equal(model.decoder(z), nn.PixelShuffle(4)(z)) and model(x).shape == x.shape


def test_denoiser_predicts_a_residual_on_its_input():
    model = Autoencoder(ModelConfig.named("denoiser-half")).eval()
    nn.init.zeros_(model.encoder.tail.weight)
    nn.init.zeros_(model.encoder.tail.bias)
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert (model(x) - x).abs().max() <= 1e-6  # zero residual: the noisy input comes back exactly


def test_denoiser_config_survives_a_json_round_trip():
    from edgeae.config import from_dict, to_dict

    cfg = ModelConfig.named("denoiser-s")
    assert from_dict(ModelConfig, to_dict(cfg)) == cfg and cfg.residual and not ModelConfig().residual


def test_denoiser_widths_of_mixed_sizes_are_refused():
    with pytest.raises(EdgeAEError, match="need one width"):
        Autoencoder(ModelConfig("denoiser", widths=(32, 64, 64), unshuffle=2))
