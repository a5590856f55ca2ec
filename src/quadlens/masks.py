"""Frozen activation masks: the ReLU MLP as a piecewise-affine map (science.md §6).

For one input, D = diag(1[pre > 0]) and the MLP equals W_out D (W_in x + b_in) + b_out exactly;
freezing D gives an affine map that is exact on the whole region of inputs sharing that pattern.
On the circuit (constant attention or the MLP-only model) every logit splits exactly into paths:

    logit[a, b, c] =   sum_i D_i(a, b) U[a, i] O[i, c]                 (path through a)
                     + sum_i D_i(a, b) V[b, i] O[i, c]                 (path through b)
                     + sum_i D_i(a, b) b_in[i] O[i, c] + logit_bias[c] (biases)
                     + D_a[a, c] + D_b[b, c]                           (direct, not the MLP)

and into neurons: neuron i contributes D_i(a, b) pre[a, b, i] O[i, c].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from quadlens.circuit import Circuit, circuit
from quadlens.data import labels
from quadlens.errors import QuadlensError
from quadlens.evaluate import margins
from quadlens.model import Model


@dataclass
class RegionReuse:
    region: int  # rank of the region by size (0 = largest)
    size: int
    example: list[int]  # one (a, b) in the region
    max_abs_error: float  # over all inputs, of the frozen map's logits
    rel_rms_error: float  # rms error / rms of the true logits (centred over c)
    accuracy: float  # of the frozen map used as the model on every input


@dataclass
class MaskReport:
    p: int
    n_neurons: int
    n_inputs: int
    n_patterns: int  # distinct activation patterns over the p^2 inputs
    region_sizes: list[int]  # sorted, largest first
    frac_active: float  # mean share of neurons active per input
    always_on: int  # neurons active on every input (linear there)
    never_on: int  # dead neurons
    path_share: dict[str, float]  # share of the correct logit's sum of |contributions| per path
    reconstruction_max_error: float  # |sum of paths - logits|, max over inputs and outputs
    reuse: list[RegionReuse]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _relu_circuit(obj: Model | Circuit) -> Circuit:
    c = circuit(obj) if isinstance(obj, Model) else obj
    if c.cfg.activation != "relu":
        raise QuadlensError(
            f"activation is {c.cfg.activation}: frozen masks describe piecewise-linear (ReLU) "
            "MLPs only"
        )
    return c


@torch.no_grad()
def paths(obj: Model | Circuit) -> dict[str, Tensor]:
    """The four path contributions to every logit, each [a * p + b, c] (float64)."""
    c = _relu_circuit(obj)
    p = c.cfg.p
    U, V, b_in, O = (t.detach().double() for t in (c.U, c.V, c.b_in, c.O))
    pre = U[:, None, :] + V[None, :, :] + b_in  # [a, b, neuron]
    D = (pre > 0).double().reshape(p * p, -1)
    Ua = U[:, None, :].expand(p, p, -1).reshape(p * p, -1)
    Vb = V[None, :, :].expand(p, p, -1).reshape(p * p, -1)
    direct = (c.D_a.double()[:, None, :] + c.D_b.double()[None, :, :]).reshape(p * p, p)
    return {
        "a": (D * Ua) @ O,
        "b": (D * Vb) @ O,
        "bias": (D * b_in) @ O + c.logit_bias.double(),
        "direct": direct,
    }


@torch.no_grad()
def neuron_contributions(obj: Model | Circuit, a: int, b: int) -> Tensor:
    """Per-neuron contributions [neuron, c] to the logits of one input (a, b)."""
    c = _relu_circuit(obj)
    pre = (c.U[a] + c.V[b] + c.b_in).double()
    return torch.relu(pre)[:, None] * c.O.double()


@torch.no_grad()
def analyze_masks(obj: Model | Circuit, n_reuse: int = 5) -> MaskReport:
    if n_reuse < 0:
        raise QuadlensError(f"--regions must be >= 0, got {n_reuse}")
    c = _relu_circuit(obj)
    p = c.cfg.p
    U, V, b_in, O = (t.detach().double() for t in (c.U, c.V, c.b_in, c.O))
    pre = (U[:, None, :] + V[None, :, :] + b_in).reshape(p * p, -1)
    on = pre > 0
    patterns, inverse, counts = torch.unique(on, dim=0, return_inverse=True, return_counts=True)
    order = torch.argsort(counts, descending=True, stable=True)
    parts = paths(c)
    logits = sum(parts.values())
    plain = torch.relu(pre) @ O + parts["direct"] + c.logit_bias.double()
    y = labels(p)
    share = {k: float(v.gather(1, y[:, None]).abs().sum()) for k, v in parts.items()}
    total = sum(share.values()) or 1.0
    centred = logits - logits.mean(1, keepdim=True)
    rms = float(centred.pow(2).mean().sqrt())
    Ua = U[:, None, :].expand(p, p, -1).reshape(p * p, -1)
    Vb = V[None, :, :].expand(p, p, -1).reshape(p * p, -1)
    reuse = []
    for rank, r in enumerate(order[:n_reuse].tolist()):
        mask = patterns[r].double()
        frozen = ((Ua + Vb + b_in) * mask) @ O + parts["direct"] + c.logit_bias.double()
        err = frozen - logits
        err_c = err - err.mean(1, keepdim=True)
        example = int(torch.nonzero(inverse == r)[0])
        reuse.append(RegionReuse(
            region=rank, size=int(counts[r]), example=[example // p, example % p],
            max_abs_error=float(err.abs().max()),
            rel_rms_error=float(err_c.pow(2).mean().sqrt()) / rms if rms else float("nan"),
            accuracy=float((margins(frozen, y) > 0).double().mean()),
        ))  # fmt: skip
    return MaskReport(
        p=p, n_neurons=pre.shape[1], n_inputs=p * p, n_patterns=len(patterns),
        region_sizes=counts[order].tolist(), frac_active=float(on.double().mean()),
        always_on=int(on.all(0).sum()), never_on=int((~on).all(0).sum()),
        path_share={k: v / total for k, v in share.items()},
        reconstruction_max_error=float((logits - plain).abs().max()), reuse=reuse,
    )  # fmt: skip


@torch.no_grad()
def region_map(model: Model, a: int, b: int) -> tuple[Tensor, Tensor]:
    """The exact affine map of the region of input (a, b), in the MLP's input coordinates x
    (the residual stream at position 1; for the MLP-only model, the combined embeddings):
    logits = x @ M + bias for every input sharing (a, b)'s activation pattern. [d_in, p], [p]."""
    cfg = model.cfg
    if cfg.activation != "relu":
        raise QuadlensError(f"activation is {cfg.activation}: no piecewise-affine map")
    m = model.double()
    at, bt = torch.tensor([a]), torch.tensor([b])
    x = m.mlp_input(at, bt)[0]
    D = ((x @ m.W_in + m.b_in) > 0).double()
    W_in, W_out, W_U = m.W_in.detach(), m.W_out.detach(), m.W_U.detach()
    M = (W_in * D) @ W_out @ W_U
    bias = ((m.b_in.detach() * D) @ W_out + m.b_out.detach()) @ W_U
    if cfg.architecture == "transformer":
        M = M + W_U  # the residual stream also reaches the unembedding directly
    return M, bias
