"""Discrete Fourier views over the token axis (science.md §3).

For a real signal x[t], t = 0..p-1, the DFT is X[k] = sum_t x[t] exp(-2 pi i k t / p). A pure
cosine x[t] = A cos(w_k t + phi) + const (w_k = 2 pi k / p, 1 <= k <= (p-1)/2) has
X[k] = (p / 2) A exp(i phi), so amplitude = 2 |X[k]| / p and phase = arg X[k]. By Parseval the
centred signal's energy is (2 / p) sum_{k=1}^{(p-1)/2} |X[k]|^2, so |X[k]|^2 / sum |X|^2 is the
fraction of its variance carried by frequency k.

Axis names: `tok` (0..p-1), `freq` (1..(p-1)/2, stored at index freq - 1), `neuron`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def n_freqs(p: int) -> int:
    return (p - 1) // 2


def coefficients(x: Tensor, dim: int = 0) -> Tensor:
    """Complex DFT coefficients X[k] for k = 1..(p-1)/2 along `dim` (float64 in, complex out).

    Returned with the frequency axis at `dim` (index k - 1)."""
    X = torch.fft.fft(x.double(), dim=dim)
    return X.narrow(dim, 1, n_freqs(x.shape[dim]))


def coefficient_at(x: Tensor, k: Tensor, dim: int = 0) -> Tensor:
    """X[k mod p] along `dim` for one (possibly > (p-1)/2, e.g. doubled) frequency per column.

    `k` has the shape of x without `dim`. For k beyond (p-1)/2 this is the coefficient of
    exp(-i w_k t) itself, so amplitude/phase still describe A cos(w_k t + phase)."""
    X = torch.fft.fft(x.double(), dim=dim)
    p = x.shape[dim]
    return torch.gather(X.movedim(dim, -1), -1, (k % p)[..., None]).squeeze(-1)


def amplitude_phase(X: Tensor, p: int) -> tuple[Tensor, Tensor]:
    """(A, phi) with x[t] ~ A cos(w t + phi) from a DFT coefficient."""
    return 2.0 * X.abs() / p, torch.angle(X)


def power(x: Tensor, dim: int = 0) -> Tensor:
    """|X[k]|^2 for k = 1..(p-1)/2 along `dim`."""
    return coefficients(x, dim).abs() ** 2


def explicit_dft(x: Tensor, k: int) -> complex:
    """X[k] of a 1-D signal by the definition (the reference the tests check the FFT against)."""
    p = x.shape[0]
    return complex(
        sum(float(x[t]) * complex(math.cos(-2 * math.pi * k * t / p),
                                  math.sin(-2 * math.pi * k * t / p)) for t in range(p))
    )  # fmt: skip


def wrap(angle: Tensor) -> Tensor:
    """Angles wrapped into (-pi, pi]."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi
