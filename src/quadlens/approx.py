"""Closed-form polynomial approximants of the ReLU MLP (Belrose & Rigg, arXiv 2502.01032;
science.md §6).

Moment-match a Gaussian to the real MLP inputs: each neuron's pre-activation z_i over the p^2
inputs then has mean m_i and standard deviation s_i (exactly the empirical ones). Under that
Gaussian the least-squares-optimal polynomial of degree <= 2 in the input, for a function of
z_i alone, is the Hermite truncation in u = (z - m) / s (alpha = m / s, Phi/phi the normal
cdf/pdf):

    ReLU(z) ~ E[ReLU] + Phi(alpha) (z - m)                                     (linear)
            + phi(alpha) / (2 s) ((z - m)^2 - s^2)                             (+ quadratic)
    E[ReLU] = m Phi(alpha) + s phi(alpha)

(the coefficients are E[ReLU'(z)] = Phi(alpha) and E[ReLU''(z)] / 2 = phi(alpha) / (2 s) by
Stein's lemma). Replacing each neuron by its polynomial gives the approximant MLP; it is scored
on the real inputs. The quadratic approximant is an x^2-type MLP, so its token-space
interaction matrices (`quadratic_form`) can be read with the bilinear tools.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from quadlens.circuit import Circuit, circuit
from quadlens.data import labels
from quadlens.errors import QuadlensError
from quadlens.evaluate import margins
from quadlens.model import Model


def _normal(alpha: Tensor) -> tuple[Tensor, Tensor]:
    cdf = 0.5 * (1 + torch.erf(alpha / math.sqrt(2)))
    pdf = torch.exp(-0.5 * alpha**2) / math.sqrt(2 * math.pi)
    return cdf, pdf


@dataclass
class Coefficients:
    m: Tensor  # [neuron] mean of the pre-activation over the real inputs
    s: Tensor  # [neuron] its standard deviation
    c0: Tensor  # E[ReLU(z)]
    c1: Tensor  # Phi(alpha): the linear coefficient, per unit of (z - m)
    c2: Tensor  # phi(alpha) / (2 s): the quadratic coefficient, per unit of (z - m)^2 - s^2


def coefficients(pre: Tensor) -> Coefficients:
    """Per-neuron coefficients from the pre-activations [input, neuron] (float64)."""
    m = pre.mean(0)
    s = pre.std(0, correction=0).clamp_min(1e-12)
    alpha = m / s
    cdf, pdf = _normal(alpha)
    return Coefficients(m, s, m * cdf + s * pdf, cdf, pdf / (2 * s))


def _pre(c: Circuit) -> Tensor:
    p = c.cfg.p
    d = lambda t: t.detach().double()  # noqa: E731
    return (d(c.U)[:, None, :] + d(c.V)[None, :, :] + d(c.b_in)).reshape(p * p, -1)


def approximate_hidden(pre: Tensor, k: Coefficients, degree: int) -> Tensor:
    z = pre - k.m
    out = k.c0 + k.c1 * z
    if degree == 2:
        out = out + k.c2 * (z**2 - k.s**2)
    return out


@dataclass
class ApproxReport:
    fve: dict[str, float]  # of the MLP logits (centred over c), by degree
    accuracy: dict[str, float]  # of the whole model with its MLP replaced, by degree
    model_accuracy: float
    mean_alpha: float  # mean of m / s: how far neurons sit from their kink on average

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def analyze_approximants(obj: Model | Circuit) -> ApproxReport:
    c = circuit(obj) if isinstance(obj, Model) else obj
    if c.cfg.activation != "relu":
        raise QuadlensError(f"activation is {c.cfg.activation}: these approximants are for ReLU")
    p = c.cfg.p
    pre = _pre(c)
    k = coefficients(pre)
    O = c.O.detach().double()
    rest = (c.D_a.double()[:, None, :] + c.D_b.double()[None, :, :]).reshape(p * p, p)
    rest = rest + c.logit_bias.double()
    mlp = torch.relu(pre) @ O
    y = labels(p)
    centred = mlp - mlp.mean(1, keepdim=True)
    norm = float((centred**2).sum())
    if not norm > 0:
        raise QuadlensError(
            "the MLP's logits do not vary over the inputs (every neuron dead or every output "
            "weight zero): there is nothing for an approximant to explain"
        )
    fve, acc = {}, {}
    for name, degree in (("linear", 1), ("quadratic", 2)):
        approx = approximate_hidden(pre, k, degree) @ O
        err = approx - mlp
        err = err - err.mean(1, keepdim=True)
        fve[name] = 1 - float((err**2).sum()) / norm
        acc[name] = float((margins(approx + rest, y) > 0).double().mean())
    return ApproxReport(fve, acc, float((margins(mlp + rest, y) > 0).double().mean()),
                        float((k.m / k.s).mean()))  # fmt: skip


@torch.no_grad()
def quadratic_form(obj: Model | Circuit) -> Tensor:
    """Token-space interaction matrices Q [c, 2p+1, 2p+1] of the quadratic approximant:
    logit_c ~ x~^T Q_c x~ with x~ = [one-hot a; one-hot b; 1] (readable by quadlens.bilinear)."""
    c = circuit(obj) if isinstance(obj, Model) else obj
    k = coefficients(_pre(c))
    d = lambda t: t.detach().double()  # noqa: E731
    L = torch.cat([d(c.U), d(c.V), d(c.b_in)[None]])  # z = L^T x~
    n = L.shape[0]
    last = torch.zeros(n, dtype=torch.float64)
    last[-1] = 1
    # q(z) = c2 z^2 + (c1 - 2 c2 m) z + (c0 - c1 m + c2 (m^2 - s^2))
    A = k.c2
    B = k.c1 - 2 * k.c2 * k.m
    C = k.c0 - k.c1 * k.m + k.c2 * (k.m**2 - k.s**2)
    O = d(c.O)
    Q = torch.einsum("hc,ih,jh->cij", O * A[:, None], L, L)
    lin = torch.einsum("hc,ih->ci", O * B[:, None], L)  # [c, n]
    const = (O * C[:, None]).sum(0)  # [c]
    lin = lin + torch.cat([d(c.D_a), d(c.D_b), d(c.logit_bias)[None]]).T
    Q[:, :, -1] += lin
    Q[:, -1, -1] += const
    return (Q + Q.transpose(1, 2)) / 2


@torch.no_grad()
def logit_samples(obj: Model | Circuit) -> tuple[Tensor, dict[str, Tensor]]:
    """Actual MLP logits and both approximants', centred over c, [a * p + b, c] (for plots)."""
    c = circuit(obj) if isinstance(obj, Model) else obj
    pre = _pre(c)
    k = coefficients(pre)
    O = c.O.detach().double()

    def centred(x: Tensor) -> Tensor:
        return x - x.mean(1, keepdim=True)

    approx = {name: centred(approximate_hidden(pre, k, deg) @ O)
              for name, deg in (("linear", 1), ("quadratic", 2))}  # fmt: skip
    return centred(torch.relu(pre) @ O), approx
