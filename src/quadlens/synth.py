"""Synthetic models with a known explanation, stored as ordinary run directories.

Gromov's construction (arXiv 2301.02679; science.md §6): an MLP-only network on
[one-hot a; one-hot b] with the activation x^2 and no biases, where neuron n has a frequency
s_n and random phases psi1_n, psi2_n:

    W_in[a, n]     = cos(2 pi s_n a / p + psi1_n)           (token a)
    W_in[p + b, n] = cos(2 pi s_n b / p + psi2_n)           (token b)
    W_out[n, q]    = cos(-2 pi s_n q / p - psi1_n - psi2_n)

Squaring the pre-activation gives 2 cos(w a + psi1) cos(w b + psi2), whose product with the output
weights contains cos(w (a + b - q)) / 2 with no phase left, so the phases average out of every
other term as neurons are added and the logits peak at q = a + b. Here s_n is drawn uniformly
from 1..(p-1)/2 and the phases uniformly from [0, 2 pi), all from the given seed.
"""

from __future__ import annotations

import math

import torch

from quadlens.config import ModelConfig, RunConfig, derived_seed
from quadlens.errors import QuadlensError
from quadlens.model import Model


def gromov(p: int = 97, width: int = 500, seed: int = 0) -> tuple[RunConfig, Model]:
    if width < 1:
        raise QuadlensError(f"--width must be >= 1, got {width}")
    cfg = ModelConfig(p=p, d_model=p, n_heads=1, d_head=p, d_mlp=width, activation="quadratic",
                      architecture="mlp", combine="concat")  # fmt: skip
    gen = torch.Generator().manual_seed(derived_seed(seed, "gromov"))
    s = torch.randint(1, (p - 1) // 2 + 1, (width,), generator=gen).double()
    psi1 = torch.rand(width, generator=gen, dtype=torch.float64) * 2 * math.pi
    psi2 = torch.rand(width, generator=gen, dtype=torch.float64) * 2 * math.pi
    x = torch.arange(p, dtype=torch.float64)[:, None]
    w = 2 * math.pi * s / p
    model = Model(cfg)
    with torch.no_grad():
        model.W_E.copy_(torch.eye(p))
        model.W_pos.zero_()
        model.W_in.copy_(torch.cat([torch.cos(w * x + psi1), torch.cos(w * x + psi2)]))
        model.b_in.zero_()
        model.W_out.copy_(torch.cos(-w * x - psi1 - psi2).T)
        model.b_out.zero_()
        model.W_U.copy_(torch.eye(p))
    source = {"format": "synthetic", "construction": "gromov", "p": p, "width": width,
              "seed": seed}  # fmt: skip
    return RunConfig(model=cfg, train=None, preset=None, source=source), model
