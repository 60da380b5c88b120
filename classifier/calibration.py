"""Calibration: temperature scaling (Guo et al. 2017) and the expected calibration error.

The temperature divides every logit by one positive number. It leaves each prediction's
argmax unchanged and only makes the probabilities more or less confident, so it is fitted on
held-out logits (the validation split) by minimising their negative log-likelihood.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from data.errors import ConfigError

DEFAULT_BINS = 15


def negative_log_likelihood(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    return float(F.cross_entropy(logits.double() / temperature, labels.long()))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """The temperature T > 0 minimising the NLL of ``softmax(logits / T)`` on these labels."""
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ConfigError(f"logits [N, C] and labels [N] expected, got {list(logits.shape)} and {list(labels.shape)}")
    if len(labels) == 0:
        raise ConfigError("cannot fit a temperature on zero examples")
    logits, labels = logits.detach().double(), labels.detach().long()
    # Optimise log T so that T stays positive without constraints.
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimiser.step(closure)
    temperature = float(log_t.detach().exp())
    if not math.isfinite(temperature):
        return 1.0
    # Perfectly separated data drives T toward 0 (or infinity); keep it in a sane range.
    temperature = min(max(temperature, 0.05), 20.0)
    # LBFGS is a local method: never return a temperature worse than doing nothing.
    if negative_log_likelihood(logits, labels, temperature) > negative_log_likelihood(logits, labels):
        return 1.0
    return temperature


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = DEFAULT_BINS) -> float:
    """ECE: confidence-vs-accuracy gap averaged over equal-width confidence bins, weighted by size."""
    if len(labels) == 0:
        return 0.0
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    # Bin k holds confidences in (edges[k], edges[k+1]]; confidence is always > 0.
    index = torch.clamp(torch.bucketize(confidence.double(), edges, right=False) - 1, 0, bins - 1)
    error = 0.0
    for k in range(bins):
        members = index == k
        count = int(members.sum())
        if count:
            gap = abs(float(correct[members].mean()) - float(confidence[members].double().mean()))
            error += count / len(labels) * gap
    return error
