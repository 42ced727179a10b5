"""The convolutional autoencoder and its configuration."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgeae.errors import EdgeAEError
from edgeae.training import codec

# Named architectures. "seed" is the default and is exactly the product's reference model.
# Autoencoders: the widths of the stride-2 convs. Residual denoisers (RESIDUAL_DENOISERS): the width of each
# 3×3 conv of the body at half resolution (see ResidualDenoiser).
ARCHITECTURES: dict[str, tuple[int, ...]] = {
    "seed": (12, 24, 48, 96),
    # A wider variant for denoising, where the seed's 8x bottleneck loses detail.
    "wide": (32, 64, 128, 128),
    # Denoising without a bottleneck: two levels, 64 channels at 1/4 size (4 values per pixel), so
    # detail survives; the benchmark's stronger denoiser.
    "shallow": (32, 64),
    # FFDNet-style blind denoiser at quarter resolution: a head conv and 4 residual blocks of 64 channels, then
    # the residual conv (10 convs; models/denoiser until 2026-11-28).
    "denoiser": (64,) * 9,
    # Narrower and half-resolution siblings, for the speed/quality trade-off in models/denoiser/MODEL.md;
    # denoiser-half (8 convs at 1/2 resolution) is the shipped models/denoiser.
    "denoiser-s": (48,) * 7,
    "denoiser-half": (32,) * 7,
    # Learned codec (training/codec.py): the analysis transform's widths at 1/2, 1/4, 1/8 size, then the latent's
    # channels at 1/16; the synthesis transform mirrors them. Narrow where the resolution is high, so a
    # 768×576 frame encodes and decodes in ~100 ms on 2 cores (models/codec-q*).
    "codec": (24, 48, 96, 128),
}
# Residual denoisers: name → pixel-unshuffle factor (the body runs at 1/factor resolution).
RESIDUAL_DENOISERS: dict[str, int] = {"denoiser": 4, "denoiser-s": 4, "denoiser-half": 2}
# Learned codecs: trained on rate + distortion with an entropy model (training/codec.py).
CODECS: frozenset[str] = frozenset({"codec"})


@dataclass(frozen=True)
class ModelConfig:
    """Architecture: an autoencoder (every conv kernel 4, stride 2, padding 1) or, for the names in
    RESIDUAL_DENOISERS, a residual denoiser (ResidualDenoiser)."""

    name: str = "seed"
    in_channels: int = 3
    widths: tuple[int, ...] = ARCHITECTURES["seed"]
    unshuffle: int = 0  # > 0: a residual denoiser whose body runs at 1/unshuffle resolution

    @property
    def residual(self) -> bool:
        return self.unshuffle > 0

    @property
    def codec(self) -> bool:
        return self.name in CODECS

    @property
    def unshuffled_channels(self) -> int:
        return self.in_channels * self.unshuffle ** 2

    @property
    def latent_channels(self) -> int:
        # The residual denoiser's latent is the denoised image, pixel-unshuffled.
        return self.unshuffled_channels if self.residual else self.widths[-1]

    @property
    def downsample(self) -> int:
        """Input sides must be multiples of this (each autoencoder conv halves them)."""
        if self.residual:
            return self.unshuffle
        return 16 if self.codec else 2 ** len(self.widths)

    @classmethod
    def named(cls, name: str) -> "ModelConfig":
        if name not in ARCHITECTURES:
            raise EdgeAEError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
        return cls(name=name, widths=ARCHITECTURES[name], unshuffle=RESIDUAL_DENOISERS.get(name, 0))


def _encoder(cfg: ModelConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = cfg.in_channels
    for width in cfg.widths:
        layers += [nn.Conv2d(channels, width, kernel_size=4, stride=2, padding=1), nn.ReLU()]
        channels = width
    return nn.Sequential(*layers)


def _decoder(cfg: ModelConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    outs = list(reversed(cfg.widths[:-1])) + [cfg.in_channels]
    channels = cfg.latent_channels
    for i, width in enumerate(outs):
        layers.append(nn.ConvTranspose2d(channels, width, kernel_size=4, stride=2, padding=1))
        layers.append(nn.ReLU() if i < len(outs) - 1 else nn.Sigmoid())
        channels = width
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """x + conv(ReLU(conv(x))): the skip keeps a deep stack trainable without batch norm."""

    def __init__(self, width: int):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(width, width, kernel_size=3, padding=1), nn.ReLU(),
                                   nn.Conv2d(width, width, kernel_size=3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.convs(x)


class DenoiserEncoder(nn.Module):
    """PixelUnshuffle → 3×3 head conv + ReLU → residual blocks → a 3×3 conv predicting the residual, added to the
    unshuffled input: the latent is the denoised image in space-to-depth layout (C·f² channels at 1/f
    resolution, values ~[0, 1]). cfg.widths: the head's width, then two per block (all one width)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        width = cfg.widths[0]
        if len(cfg.widths) % 2 == 0 or set(cfg.widths) != {width}:
            raise EdgeAEError(f"denoiser widths {cfg.widths}: need one width, an odd count (head + 2 per block)")
        self.unshuffle = nn.PixelUnshuffle(cfg.unshuffle)
        self.head = nn.Sequential(nn.Conv2d(cfg.unshuffled_channels, width, kernel_size=3, padding=1), nn.ReLU())
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(len(cfg.widths) // 2)])
        self.tail = nn.Conv2d(width, cfg.unshuffled_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noisy = self.unshuffle(x)
        return noisy + self.tail(self.body(self.head(noisy - 0.5)))  # the head sees a centred input


class DenoiserDecoder(nn.Module):
    """PixelShuffle: the space-to-depth latent back to an image."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.shuffle = nn.PixelShuffle(cfg.unshuffle)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.shuffle(z)


class Autoencoder(nn.Module):
    """Encoder → latent → decoder; fully convolutional, input RGB in [0, 1].

    For the residual denoisers (FFDNet-style: Zhang et al. 2018, without the noise-level map, so blind) the
    "encoder" is the whole network at low resolution — pixel-unshuffle, the conv body, the residual conv and
    the residual add — and the "decoder" the pixel-shuffle back: the latent is no bottleneck but the denoised
    image in space-to-depth layout. That is what lets the runtime's encoder.onnx → decoder.onnx pair run a
    residual network unchanged, and keeps the latent in [0, 1], where int8 quantises it finely.
    """

    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        self.cfg = cfg
        if cfg.codec:
            self.encoder, self.decoder = codec.analysis_transform(cfg.widths), codec.synthesis_transform(cfg.widths)
            self.entropy_bottleneck = codec.EntropyBottleneck(cfg.latent_channels)
        else:
            self.encoder = DenoiserEncoder(cfg) if cfg.residual else _encoder(cfg)
            self.decoder = DenoiserDecoder(cfg) if cfg.residual else _decoder(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction; a codec's latent is rounded, as the runtime codes it."""
        latent = self.encoder(x)
        return self.decoder(torch.round(latent) if self.cfg.codec else latent)

    def rate_distortion(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A codec's (reconstruction, bits per pixel): training adds uniform noise to the latent as the
        differentiable stand-in for rounding (Ballé et al. 2017), evaluation rounds."""
        latent = self.encoder(x)
        latent = latent + torch.empty_like(latent).uniform_(-0.5, 0.5) if self.training else torch.round(latent)
        return self.decoder(latent), codec.bits_per_pixel(self.entropy_bottleneck.likelihood(latent), x)


def load_state(model: Autoencoder, state: dict, source: str) -> None:
    """Load a state dict, turning an architecture mismatch into a user-facing error."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise EdgeAEError(
            f"checkpoint {source} does not fit architecture {model.cfg.name} {model.cfg.widths} "
            f"({first}); pass the run folder that produced it"
        ) from None
