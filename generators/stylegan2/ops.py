"""The low-level operations of StyleGAN2 in plain PyTorch (no custom CUDA kernels).

NVIDIA's code ships fused CUDA kernels for these; here each is written with ``conv2d`` /
``conv_transpose2d`` / grouped convolutions so it runs on any device and differentiates.
Conventions follow the reference: a resampling filter is a normalised 2-D FIR kernel, images
are up-sampled by zero insertion + filtering, down-sampled by filtering + striding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Activation name -> (function, default gain); StyleGAN2 uses only these two.
_LRELU_SLOPE = 0.2
ACTIVATION_GAINS = {"linear": 1.0, "lrelu": math.sqrt(2.0)}


def make_resample_filter(taps: list[float] | tuple[float, ...] = (1, 3, 3, 1)) -> torch.Tensor:
    """1-D taps -> the separable 2-D FIR kernel [k, k], normalised to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 1:
        f = torch.outer(f, f)
    return f / f.sum()


def bias_act(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply the activation, scale by gain, then clamp."""
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2))
    if activation == "lrelu":
        x = F.leaky_relu(x, _LRELU_SLOPE)
    elif activation != "linear":
        raise ValueError(f"unknown activation {activation!r}")
    gain = ACTIVATION_GAINS[activation] if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Zero-insert by ``up``, pad (x0, x1, y0, y1; negative crops), FIR-filter, keep every ``down``-th.

    The filter is applied as a true convolution (flipped), as in the reference.
    """
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    px0, px1, py0, py1 = padding
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    kernel = (f * (gain ** (f.ndim / 2))).to(x.dtype).flip([0, 1])
    kernel = kernel[None, None].repeat(channels, 1, 1, 1)
    x = F.conv2d(x, kernel, groups=channels)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """Up-sample by ``up`` with the FIR filter, keeping the image centred."""
    k = f.shape[-1]
    pad_lo, pad_hi = (k + up - 1) // 2, (k - up) // 2
    return upfirdn2d(x, f, up=up, padding=(pad_lo, pad_hi, pad_lo, pad_hi), gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """Down-sample by ``down`` with the FIR filter, keeping the image centred."""
    k = f.shape[-1]
    pad_lo, pad_hi = (k - down + 1) // 2, (k - down) // 2
    return upfirdn2d(x, f, down=down, padding=(pad_lo, pad_hi, pad_lo, pad_hi))


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> torch.Tensor:
    """A 2-D convolution (cross-correlation with ``w``) fused with FIR up/down-sampling.

    Up-sampling uses a strided transposed convolution followed by the filter; down-sampling
    filters first and then convolves with stride ``down``. ``w`` is [out, in/groups, kh, kw].
    """
    out_channels, in_per_group, kh, kw = w.shape
    k = f.shape[-1] if f is not None else 1
    lo = hi = padding
    if up > 1:
        lo, hi = lo + (k + up - 1) // 2, hi + (k - up) // 2
    if down > 1:
        lo, hi = lo + (k - down + 1) // 2, hi + (k - down) // 2

    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)

    if up == 1:  # down-sampling only
        if kh == 1 and kw == 1:  # a 1x1 conv commutes with filtering: shrink first
            x = upfirdn2d(x, f, down=down, padding=(lo, hi, lo, hi))
            return F.conv2d(x, w, groups=groups)
        x = upfirdn2d(x, f, padding=(lo, hi, lo, hi))
        return F.conv2d(x, w, stride=down, groups=groups)

    # Up-sampling: transposed conv with stride ``up``, then the FIR filter. The transposed
    # conv wants weights [in, out/groups, kh, kw] per group.
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_channels // groups, kh, kw)
    lo_x, hi_x = lo - (kw - 1), hi - (kw - up)
    lo_y, hi_y = lo - (kh - 1), hi - (kh - up)
    crop_x = max(min(-lo_x, -hi_x), 0)
    crop_y = max(min(-lo_y, -hi_y), 0)
    x = F.conv_transpose2d(x, wt, stride=up, padding=(crop_y, crop_x), groups=groups)
    x = upfirdn2d(x, f, padding=(lo_x + crop_x, hi_x + crop_x, lo_y + crop_y, hi_y + crop_y), gain=up * up)
    if down > 1:
        x = upfirdn2d(x, f, down=down)
    return x


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    fused: bool = False,
) -> torch.Tensor:
    """StyleGAN2's style-modulated convolution: scale input channels by ``styles`` [B, in],
    convolve, and (``demodulate``) renormalise each output channel to unit expected norm.

    ``fused`` runs one grouped convolution with per-sample weights; otherwise the shared
    weight is used and the styles/demodulation are applied to the activations, which is the
    same function and faster for batches on CPU.
    """
    batch = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # Pre-normalise so half-precision products do not overflow; demodulation undoes it.
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    dcoefs = None
    if demodulate:
        w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [B, out]

    if fused:
        w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)
        if dcoefs is not None:
            w = w * dcoefs.reshape(batch, -1, 1, 1, 1)
        x = x.reshape(1, -1, *x.shape[2:])
        w = w.reshape(-1, in_channels, kh, kw)
        x = conv2d_resample(x, w.to(x.dtype), resample_filter, up=up, padding=padding, groups=batch)
        x = x.reshape(batch, -1, *x.shape[2:])
        return x + noise if noise is not None else x

    x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
    x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
    if dcoefs is not None:
        x = x * dcoefs.to(x.dtype).reshape(batch, -1, 1, 1)
    return x + noise if noise is not None else x


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()
