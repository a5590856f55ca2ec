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

from quadlens.circuit import Circuit
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


def pizza_circuit(p: int, d_mlp: int, freqs: list[int] | None = None, noise: float = 0.05,
                  secondary: float = 0.1, bias: float = 0.2, seed: int = 0,
                  stratified: bool = False) -> Circuit:  # fmt: skip
    """An idealised-plus-noise pizza circuit (science.md §3-4): the bound's scaling workload.

    Neuron i serves frequency k_i (the given ones in turn; default three spread frequencies) at
    a uniformly random phase phi_i (with `stratified`: the neurons of a frequency spread evenly
    over the circle, each at a uniformly random place in its own slot of width 2 pi / n_k, from
    a random offset per frequency: a quadrature rule instead of Monte Carlo, whose error is
    small enough for the model to be right on every input), with amplitudes
    A_i, B_i ~ U(0.5, 1.5):

        U[x, i] = A_i (cos(w x + phi_i) + secondary cos(2 w x + 2 phi_i + pi)) + noise N(0, 1)
        V[x, i] = the same with its own noise,   b_in[i] = bias A_i N(0, 1)
        O[i, c] = B_i cos(w c + 2 phi_i) + noise N(0, 1)

    Only the circuit is built (no embedding): at p = 1009 and d_mlp = 4096 that is what the
    bound reads, and a full model would not add anything it uses."""
    if p < 5 or d_mlp < 1:
        raise QuadlensError(f"need p >= 5 and d_mlp >= 1, got p = {p}, d_mlp = {d_mlp}")
    half = (p - 1) // 2
    freqs = freqs or sorted({max(1, half // 5), max(1, half // 2), max(1, (4 * half) // 5)})
    if any(not 1 <= k <= half for k in freqs):
        raise QuadlensError(f"frequencies must lie in 1..{half}, got {freqs}")
    gen = torch.Generator().manual_seed(derived_seed(seed, "pizza-circuit"))
    d = torch.float64
    k = torch.tensor([freqs[i % len(freqs)] for i in range(d_mlp)], dtype=d)
    w = 2 * math.pi * k / p
    phi = torch.rand(d_mlp, generator=gen, dtype=d) * 2 * math.pi
    if stratified:  # neuron i is member i // F of frequency i % F's n_k neurons
        F = len(freqs)
        j = torch.arange(d_mlp) % F
        n_k = torch.bincount(j, minlength=F).to(d)[j]
        offset = torch.rand(F, generator=gen, dtype=d)[j]
        phi = 2 * math.pi * ((torch.arange(d_mlp) // F + phi / (2 * math.pi)) / n_k + offset)
    A = 0.5 + torch.rand(d_mlp, generator=gen, dtype=d)
    B = 0.5 + torch.rand(d_mlp, generator=gen, dtype=d)
    x = torch.arange(p, dtype=d)[:, None]
    wave = A * (torch.cos(w * x + phi) + secondary * torch.cos(2 * w * x + 2 * phi + math.pi))
    U = wave + noise * torch.randn(p, d_mlp, generator=gen, dtype=d)
    V = wave + noise * torch.randn(p, d_mlp, generator=gen, dtype=d)
    b_in = bias * A * torch.randn(d_mlp, generator=gen, dtype=d)
    O = (B * torch.cos(w * x + 2 * phi)).T + noise * torch.randn(d_mlp, p, generator=gen, dtype=d)
    cfg = ModelConfig(p=p, d_model=1, n_heads=1, d_head=1, d_mlp=d_mlp, architecture="mlp",
                      combine="sum")  # fmt: skip
    zeros = torch.zeros(p, p, dtype=d)
    return Circuit(cfg, U, V, b_in, O, zeros, zeros, torch.zeros(p, dtype=d))


def circuit_model(c: Circuit) -> Model:
    """The MLP-only ReLU model on [one-hot a; one-hot b] whose circuit view is c (up to float32
    weights; c's direct path and logit bias are dropped): W_E = W_U = identity, W_in = [U; V],
    b_in, W_out = O, no W_pos, b_out = 0."""
    p, width = c.U.shape
    cfg = ModelConfig(p=p, d_model=p, n_heads=1, d_head=p, d_mlp=width, activation="relu",
                      architecture="mlp", combine="concat")  # fmt: skip
    model = Model(cfg)
    with torch.no_grad():
        model.W_E.copy_(torch.eye(p))
        model.W_pos.zero_()
        model.W_in.copy_(torch.cat([c.U, c.V]))
        model.b_in.copy_(c.b_in)
        model.W_out.copy_(c.O)
        model.b_out.zero_()
        model.W_U.copy_(torch.eye(p))
    return model


PIZZA_FREQUENCIES = 5  # key frequencies of `pizza` models (trained p = 59 models have 4-6)


def pizza(p: int = 59, width: int = 512, seed: int = 0, n_freqs: int | None = None,
          noise: float = 0.01, secondary: float = 0.1, bias: float = 0.2
          ) -> tuple[RunConfig, Model]:  # fmt: skip
    """A synthetic pizza model at any size: `pizza_circuit` (stratified phases, `n_freqs` key
    frequencies drawn from the seed) as an MLP-only ReLU model on [one-hot a; one-hot b]:
    W_E = W_U = identity, W_in = [U; V], W_out = O, no W_pos, b_out = 0. Its circuit view is
    exactly that circuit (up to the float32 weights), so every lens, bound and certificate for
    the circuit view reads it; it stands in for trained pizza models at p where training them
    is out of reach on a CPU (the certificates' scaling benchmark)."""
    if p < 5 or width < 1:
        raise QuadlensError(f"need --p >= 5 and --width >= 1, got p = {p}, width = {width}")
    half = (p - 1) // 2
    n_freqs = PIZZA_FREQUENCIES if n_freqs is None else n_freqs
    if not math.isfinite(noise) or noise < 0:
        raise QuadlensError(f"--noise must be a finite number >= 0, got {noise}")
    if not 1 <= n_freqs <= min(half, width):
        raise QuadlensError(
            f"--freqs must lie in 1..{min(half, width)} for p = {p} and width = {width}, got "
            f"{n_freqs}"
        )
    gen = torch.Generator().manual_seed(derived_seed(seed, "pizza-frequencies"))
    freqs = sorted((torch.randperm(half, generator=gen)[:n_freqs] + 1).tolist())
    c = pizza_circuit(p, width, freqs, noise, secondary, bias, seed, stratified=True)
    model = circuit_model(c)
    source = {"format": "synthetic", "construction": "pizza", "p": p, "width": width,
              "seed": seed, "freqs": freqs, "noise": noise, "secondary": secondary,
              "bias": bias}  # fmt: skip
    return RunConfig(model=model.cfg, train=None, preset=None, source=source), model
