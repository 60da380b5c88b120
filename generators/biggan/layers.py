"""BigGAN-deep building blocks, with the parameter names of the published checkpoints.

Spectral norm is written out here rather than taken from ``torch.nn.utils`` so that the
stored tensors are exactly ``weight_orig`` / ``weight_u`` / ``weight_v`` and the behaviour is
plain to read: eval mode divides by ``u . W v`` with the stored vectors, train mode first
does one power-iteration step on them.

Batch norm keeps ``n_stats`` statistics, one per truncation on a fixed grid, because images
drawn at a lower truncation have different activation statistics. In train mode (and while
``statistics_sink`` is set) it normalises with batch statistics instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from data.errors import ConfigError


class _SpectralNormed(nn.Module):
    """Holds ``weight_orig`` and the power-iteration vectors ``weight_u`` / ``weight_v``."""

    def _register_spectral_weight(self, shape: tuple[int, ...], eps: float) -> None:
        self.eps = eps
        self.weight_orig = nn.Parameter(torch.empty(shape))
        fan_in = math.prod(shape[1:])
        self.register_buffer("weight_u", torch.empty(shape[0]))
        self.register_buffer("weight_v", torch.empty(fan_in))
        self._initialise_spectral_weight()

    @torch.no_grad()
    def _initialise_spectral_weight(self, power_iterations: int = 10) -> None:
        if self.weight_orig.is_meta:  # shape-only model (e.g. to check a checkpoint layout)
            return
        nn.init.orthogonal_(self.weight_orig)  # BigGAN's initialisation
        self.weight_u.copy_(F.normalize(torch.randn_like(self.weight_u), dim=0, eps=self.eps))
        self.weight_v.copy_(F.normalize(torch.randn_like(self.weight_v), dim=0, eps=self.eps))
        # A few steps so that an untrained model already divides by roughly sigma_max.
        for _ in range(power_iterations):
            self._power_iteration()

    @torch.no_grad()
    def _power_iteration(self) -> None:
        matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        v = F.normalize(matrix.t() @ self.weight_u, dim=0, eps=self.eps)
        u = F.normalize(matrix @ v, dim=0, eps=self.eps)
        self.weight_v.copy_(v)
        self.weight_u.copy_(u)

    def normalized_weight(self) -> torch.Tensor:
        """``weight_orig / sigma`` with sigma estimated from the stored singular vectors."""
        # Always in float32, also under mixed-precision autocast: the power iteration and
        # sigma are tiny, and in bfloat16 sigma would carry a ~1% error into every weight.
        with torch.autocast(self.weight_orig.device.type, enabled=False):
            u, v = self.weight_u, self.weight_v
            if self.training:
                self._power_iteration()
                # Clones: the buffers change in place on the next forward, autograd needs these.
                u, v = u.clone(), v.clone()
            matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
            sigma = torch.dot(u, matrix @ v)
            return self.weight_orig / sigma


class SNLinear(_SpectralNormed):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, eps: float = 1e-4):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self._register_spectral_weight((out_features, in_features), eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class SNConv2d(_SpectralNormed):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        eps: float = 1e-4,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = (
            in_channels,
            out_channels,
            kernel_size,
        )
        self.padding = kernel_size // 2  # "same" size, as all BigGAN convolutions
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self._register_spectral_weight((out_channels, in_channels, kernel_size, kernel_size), eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, bias={self.bias is not None}"


Truncation = float | torch.Tensor | None


class StatisticsSink:
    """Accumulates per-channel first and second moments of a layer's inputs (float64)."""

    def __init__(self):
        self.count = 0
        self.total: torch.Tensor | float = 0.0
        self.total_squares: torch.Tensor | float = 0.0

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().double()
        self.count += x.numel() // x.shape[1]
        self.total = self.total + x.sum(dim=(0, 2, 3))
        self.total_squares = self.total_squares + x.square().sum(dim=(0, 2, 3))

    def mean_and_variance(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.count == 0:
            raise ConfigError("no activations were collected")
        mean = self.total / self.count
        # The population (biased) variance: what batch-statistics normalisation used.
        variance = (self.total_squares / self.count - mean.square()).clamp_min(0.0)
        return mean, variance


class TruncationBatchNorm(nn.Module):
    """Batch norm whose eval statistics are picked by truncation.

    ``running_means`` / ``running_vars`` [n_stats, C] hold the statistics of images drawn
    at truncations ``i / (n_stats - 1)``. A truncation between grid points blends rows i and
    i+1 with ``means[i] * f + means[i+1] * (1 - f)`` where (f, i) = modf(t / step): the
    weights look swapped, but that is what the published models were used with, so the
    reference images depend on it. (t / step is computed in floating point, so e.g. 0.6 with
    11 statistics gives 5.999..., i.e. mostly row 5; again as in the reference.)
    """

    def __init__(self, num_features: int, n_stats: int, eps: float):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.step = 1.0 / (n_stats - 1)
        self.register_buffer("running_means", torch.zeros(n_stats, num_features))
        self.register_buffer("running_vars", torch.ones(n_stats, num_features))
        self.statistics_sink: StatisticsSink | None = None

    def statistics(
        self, x: torch.Tensor, truncation: Truncation
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance broadcastable to ``x`` [B, C, H, W]."""
        if self.training or self.statistics_sink is not None:
            if self.statistics_sink is not None:
                self.statistics_sink.add(x)
            mean = x.mean(dim=(0, 2, 3), keepdim=True)
            variance = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
            return mean, variance
        if truncation is None:
            raise ConfigError("eval-mode BigGAN needs a truncation to pick batch-norm statistics")
        if isinstance(truncation, torch.Tensor) and truncation.ndim > 0:
            return self._per_sample_statistics(truncation)
        fraction, index = math.modf(float(truncation) / self.step)
        index = int(index)
        if fraction != 0.0:
            mean = self.running_means[index] * fraction + self.running_means[index + 1] * (
                1 - fraction
            )
            variance = self.running_vars[index] * fraction + self.running_vars[index + 1] * (
                1 - fraction
            )
        else:
            mean, variance = self.running_means[index], self.running_vars[index]
        return mean.view(1, -1, 1, 1), variance.view(1, -1, 1, 1)

    def _per_sample_statistics(self, truncation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The same blend as for a scalar truncation, one row per sample.
        position = truncation.detach().reshape(-1).double() / self.step
        index = position.floor()
        fraction = (position - index).to(self.running_means.dtype)[:, None]
        index = index.long()
        upper = (index + 1).clamp_max(self.running_means.shape[0] - 1)
        on_grid = fraction == 0

        def blend(table: torch.Tensor) -> torch.Tensor:
            mixed = table[index] * fraction + table[upper] * (1 - fraction)
            return torch.where(on_grid, table[index], mixed)

        return blend(self.running_means)[:, :, None, None], blend(self.running_vars)[
            :, :, None, None
        ]

    def normalize(self, x: torch.Tensor, truncation: Truncation) -> torch.Tensor:
        mean, variance = self.statistics(x, truncation)
        return (x - mean) / torch.sqrt(variance + self.eps)


class ConditionalBatchNorm(TruncationBatchNorm):
    """Gain ``1 + scale(c)`` and bias ``offset(c)`` predicted from the condition vector."""

    def __init__(self, num_features: int, condition_dim: int, n_stats: int, eps: float):
        super().__init__(num_features, n_stats, eps)
        self.scale = SNLinear(condition_dim, num_features, bias=False, eps=eps)
        self.offset = SNLinear(condition_dim, num_features, bias=False, eps=eps)

    def forward(
        self, x: torch.Tensor, condition: torch.Tensor, truncation: Truncation
    ) -> torch.Tensor:
        gain = 1 + self.scale(condition)[:, :, None, None]
        bias = self.offset(condition)[:, :, None, None]
        return self.normalize(x, truncation) * gain + bias


class AffineBatchNorm(TruncationBatchNorm):
    """The unconditional batch norm before the RGB convolution (learned weight and bias)."""

    def __init__(self, num_features: int, n_stats: int, eps: float):
        super().__init__(num_features, n_stats, eps)
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor, truncation: Truncation) -> torch.Tensor:
        return self.normalize(x, truncation) * self.weight[:, None, None] + self.bias[:, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention; keys and values are max-pooled 2x2 to save memory."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.channels = channels
        self.snconv1x1_theta = SNConv2d(channels, channels // 8, 1, bias=False, eps=eps)
        self.snconv1x1_phi = SNConv2d(channels, channels // 8, 1, bias=False, eps=eps)
        self.snconv1x1_g = SNConv2d(channels, channels // 2, 1, bias=False, eps=eps)
        self.snconv1x1_o_conv = SNConv2d(channels // 2, channels, 1, bias=False, eps=eps)
        self.gamma = nn.Parameter(torch.zeros(1))  # starts as the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        queries = self.snconv1x1_theta(x).flatten(2)  # [B, C/8, HW]
        keys = F.max_pool2d(self.snconv1x1_phi(x), 2).flatten(2)  # [B, C/8, HW/4]
        values = F.max_pool2d(self.snconv1x1_g(x), 2).flatten(2)  # [B, C/2, HW/4]
        attention = torch.softmax(queries.transpose(1, 2) @ keys, dim=-1)  # [B, HW, HW/4]
        attended = (values @ attention.transpose(1, 2)).view(batch, channels // 2, height, width)
        return x + self.gamma * self.snconv1x1_o_conv(attended)


class GenBlock(nn.Module):
    """BigGAN-deep residual block: a 1x1 -> 3x3 -> 3x3 -> 1x1 bottleneck with conditional BN.

    The shortcut keeps the first ``out_channels`` channels and is upsampled alongside.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        condition_dim: int,
        up_sample: bool,
        n_stats: int,
        eps: float,
    ):
        super().__init__()
        self.up_sample = up_sample
        self.out_channels = out_channels
        middle = in_channels // 4
        self.bn_0 = ConditionalBatchNorm(in_channels, condition_dim, n_stats, eps)
        self.conv_0 = SNConv2d(in_channels, middle, 1, eps=eps)
        self.bn_1 = ConditionalBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_1 = SNConv2d(middle, middle, 3, eps=eps)
        self.bn_2 = ConditionalBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_2 = SNConv2d(middle, middle, 3, eps=eps)
        self.bn_3 = ConditionalBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_3 = SNConv2d(middle, out_channels, 1, eps=eps)

    def forward(
        self, x: torch.Tensor, condition: torch.Tensor, truncation: Truncation
    ) -> torch.Tensor:
        h = self.conv_0(F.relu(self.bn_0(x, condition, truncation)))
        h = F.relu(self.bn_1(h, condition, truncation))
        if self.up_sample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv_1(h)
        h = self.conv_2(F.relu(self.bn_2(h, condition, truncation)))
        h = self.conv_3(F.relu(self.bn_3(h, condition, truncation)))
        shortcut = x[:, : self.out_channels]
        if self.up_sample:
            shortcut = F.interpolate(shortcut, scale_factor=2, mode="nearest")
        return h + shortcut
