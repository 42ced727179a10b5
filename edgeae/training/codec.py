"""A learned image codec: Ballé et al. 2017 ("End-to-end optimized image compression", ICLR), factorized prior.

analysis g_a:  conv5/2 → GDN → conv5/2 → GDN → conv5/2 → GDN → conv5/2          3 → w1 → w2 → w3 → M, 1/16 size
synthesis g_s: deconv5/2 → IGDN → deconv5/2 → IGDN → deconv5/2 → IGDN → deconv5/2  M → w3 → w2 → w1 → 3
(Ballé uses one width N throughout; here the widths taper towards full resolution, where a layer costs most,
so a 768×576 frame codes in ~100 ms on 2 CPU cores.)

Training replaces rounding by additive uniform noise and minimises λ·255²·MSE + bits per pixel, the bits
being −log2 of the latent's likelihood under a learned, per-channel factorized density (EntropyBottleneck,
§6.1 of Ballé et al. 2018 "Variational image compression with a scale hyperprior"). Following CompressAI (read,
not depended on: it pins numpy < 2), GDN's β and γ are reparameterised to stay positive, which keeps
training stable on a CPU budget (a first try with plain β, γ parameters diverged after ~4,400 steps).

At export the density becomes integer probability tables (`entropy_tables`) that the torch-free runtime codes
with `constriction`; rounding there is plain `rint(y)`, so the learned density is evaluated at integers, as in
training's evaluation mode (no per-channel median offset: one fewer thing to keep in sync between devices).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# Per-channel probability tables: integer counts summing to TABLE_TOTAL, each at least 1, so every symbol in
# a channel's range can be coded; values beyond the range are clipped to its ends (counted by the runtime).
TABLE_TOTAL = 1 << 20
TAIL_MASS = 1e-7  # the probability mass each table may leave beyond either end
MAX_TABLE_HALF_WIDTH = 255


class NonNegative(nn.Module):
    """Stores sqrt(value + pedestal) and returns max(stored, bound)² − pedestal: gradients stay alive near the
    lower bound and the value never goes below `minimum` (CompressAI's NonNegativeParametrizer)."""

    def __init__(self, minimum: float = 0.0, offset: float = 2 ** -18):
        super().__init__()
        self.pedestal = offset ** 2
        self.bound = (minimum + self.pedestal) ** 0.5

    def init(self, value: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.clamp(value + self.pedestal, min=self.pedestal))

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return torch.clamp(stored, min=self.bound) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalized divisive normalisation y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²); inverse=True multiplies (IGDN)."""

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta_param = NonNegative(minimum=1e-6)
        self.gamma_param = NonNegative()
        self.beta = nn.Parameter(self.beta_param.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_param.init(0.1 * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        gamma = self.gamma_param(self.gamma).reshape(channels, channels, 1, 1)
        norm = F.conv2d(x * x, gamma, self.beta_param(self.beta))
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


def analysis_transform(widths: tuple[int, ...]) -> nn.Sequential:
    """Conv 5×5 stride 2 to each width, GDN between: the last width is the latent's channels."""
    layers: list[nn.Module] = []
    channels = 3
    for i, width in enumerate(widths):
        layers.append(nn.Conv2d(channels, width, kernel_size=5, stride=2, padding=2))
        if i < len(widths) - 1:
            layers.append(GDN(width))
        channels = width
    return nn.Sequential(*layers)


def synthesis_transform(widths: tuple[int, ...]) -> nn.Sequential:
    """The mirror of analysis_transform: ConvTranspose 5×5 stride 2 (exactly doubling), IGDN between."""
    layers: list[nn.Module] = []
    outs = [*reversed(widths[:-1]), 3]
    channels = widths[-1]
    for i, width in enumerate(outs):
        layers.append(nn.ConvTranspose2d(channels, width, kernel_size=5, stride=2, padding=2, output_padding=1))
        if i < len(outs) - 1:
            layers.append(GDN(width, inverse=True))
        channels = width
    return nn.Sequential(*layers)


class EntropyBottleneck(nn.Module):
    """A learned cumulative c(x) per channel: a monotone MLP 1 → 3 → 3 → 3 → 1 (softplus-positive matrices,
    tanh gates with |factor| < 1, sigmoid at the end). Likelihood of the noisy or rounded latent:
    c(x + ½) − c(x − ½), computed on the side of the median where the sigmoid is not saturated."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(dims) - 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def logits_cumulative(self, values: torch.Tensor) -> torch.Tensor:
        """values: C × 1 × K → the logit of c(value) per channel, C × 1 × K."""
        logits = values
        for i, matrix in enumerate(self.matrices):
            logits = torch.matmul(F.softplus(matrix), logits) + self.biases[i]
            if i < len(self.factors):
                logits = logits + torch.tanh(self.factors[i]) * torch.tanh(logits)
        return logits

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        channels = y.shape[1]
        values = y.transpose(0, 1).reshape(channels, 1, -1)
        lower = self.logits_cumulative(values - 0.5)
        upper = self.logits_cumulative(values + 0.5)
        sign = -torch.sign(lower + upper).detach()
        likelihood = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return likelihood.clamp_min(1e-9).reshape(channels, y.shape[0], *y.shape[2:]).transpose(0, 1)

    @torch.no_grad()
    def tables(self) -> dict[str, np.ndarray]:
        """Integer probability tables for the runtime's coder: per channel the smallest integer range [lo, hi]
        leaving ≤ TAIL_MASS beyond each end (at most ±MAX_TABLE_HALF_WIDTH), the tails folded into the end
        bins, scaled to counts ≥ 1 summing to TABLE_TOTAL. Returns {"lo": int32 C, "counts": uint32 C × K}
        (rows padded with zeros past each channel's hi)."""
        channels = self.matrices[0].shape[0]
        grid = torch.arange(-MAX_TABLE_HALF_WIDTH, MAX_TABLE_HALF_WIDTH + 1, dtype=torch.float64)
        edges = torch.cat([grid - 0.5, grid[-1:] + 0.5]).float().expand(channels, 1, -1)
        cdf = torch.sigmoid(self.logits_cumulative(edges).double())[:, 0, :]  # C × (K + 1), c at each bin edge
        lows, rows = [], []
        for c in range(channels):
            first = int(torch.nonzero(cdf[c, 1:] > TAIL_MASS)[0]) if bool((cdf[c, 1:] > TAIL_MASS).any()) else 0
            last = int(torch.nonzero(cdf[c, :-1] < 1 - TAIL_MASS)[-1]) if bool((cdf[c, :-1] < 1 - TAIL_MASS).any()) else len(grid) - 1
            last = max(last, first)
            pmf = (cdf[c, first + 1:last + 2] - cdf[c, first:last + 1]).clone()
            pmf[0] += cdf[c, first]  # the mass below the range codes as its lowest symbol
            pmf[-1] += 1 - cdf[c, last + 1]
            lows.append(int(grid[first]))
            rows.append(quantised_counts(pmf.numpy()))
        width = max(len(r) for r in rows)
        counts = np.zeros((channels, width), np.uint32)
        for c, row in enumerate(rows):
            counts[c, :len(row)] = row
        return {"lo": np.array(lows, np.int32), "counts": counts}


def quantised_counts(pmf: np.ndarray, total: int = TABLE_TOTAL) -> np.ndarray:
    """Probabilities → integer counts ≥ 1 summing exactly to `total` (the largest bin absorbs the rounding)."""
    pmf = np.clip(pmf.astype(np.float64), 0, None)
    pmf = pmf / pmf.sum() if pmf.sum() > 0 else np.full(len(pmf), 1 / len(pmf))
    counts = np.maximum(1, np.floor(pmf * (total - len(pmf)))).astype(np.int64)
    counts[np.argmax(counts)] += total - counts.sum()
    if counts.min() < 1:
        raise ValueError("probability table has too many bins for its total")
    return counts.astype(np.uint32)


def bits_per_pixel(likelihood: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return -torch.log2(likelihood).sum() / (image.shape[0] * image.shape[2] * image.shape[3])
