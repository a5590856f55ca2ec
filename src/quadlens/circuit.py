"""The circuit view of a constant-attention model (science.md §1).

With constant attention each neuron's pre-activation separates exactly:

    pre[a, b, neuron] = U[a, neuron] + V[b, neuron] + b_in[neuron]
    logits[a, b, c]   = sum_neuron act(pre[a, b, neuron]) O[neuron, c]
                        + D_a[a, c] + D_b[b, c] + logit_bias[c]

    U, V  [vocab, neuron]   O [neuron, vocab] = W_out @ W_U   D_a, D_b [vocab, vocab] direct path
    logit_bias [vocab] = b_out @ W_U

U, V, O are "the circuit": O(p * d_mlp) numbers. For the bilinear activation the gate branch
separates the same way (U_gate, V_gate, b_gate). The forward over all p^2 inputs built on them
costs O(p^2 d_mlp p) instead of running the transformer on every pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from quadlens.config import ModelConfig
from quadlens.errors import QuadlensError
from quadlens.model import Model, activate, checked_model


@dataclass
class Circuit:
    cfg: ModelConfig
    U: Tensor  # [vocab, neuron]   contribution of token a to the pre-activation
    V: Tensor  # [vocab, neuron]   contribution of token b
    b_in: Tensor  # [neuron]
    O: Tensor  # [neuron, vocab]   neuron -> logit
    D_a: Tensor  # [vocab, vocab]  direct path from a (not through the MLP)
    D_b: Tensor  # [vocab, vocab]  direct path from b
    logit_bias: Tensor  # [vocab]  b_out @ W_U
    U_gate: Tensor | None = None  # bilinear only
    V_gate: Tensor | None = None
    b_gate: Tensor | None = None

    def pre(self, a: Tensor, b: Tensor) -> Tensor:
        """Pre-activations [batch, neuron] for pairs (a, b)."""
        return self.U[a] + self.V[b] + self.b_in

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """Logits [batch, vocab] for pairs (a, b), from the circuit alone."""
        gate = None
        if self.U_gate is not None:
            gate = self.U_gate[a] + self.V_gate[b] + self.b_gate
        hidden = activate(self.cfg, self.pre(a, b), gate)
        return hidden @ self.O + self.D_a[a] + self.D_b[b] + self.logit_bias

    def forward_all(self) -> Tensor:
        """Logits [a * p + b, vocab] over all p^2 inputs, built by broadcasting U[a] + V[b]."""
        p = self.cfg.p
        pre = (self.U[:, None, :] + self.V[None, :, :] + self.b_in).reshape(p * p, -1)
        gate = None
        if self.U_gate is not None:
            gate = (self.U_gate[:, None, :] + self.V_gate[None, :, :] + self.b_gate).reshape(
                p * p, -1
            )
        direct = (self.D_a[:, None, :] + self.D_b[None, :, :]).reshape(p * p, -1)
        return activate(self.cfg, pre, gate) @ self.O + direct + self.logit_bias


def _embed_maps(model: Model, W_in: Tensor) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """(R_a @ W_in, R_b @ W_in, R_a, R_b): how tokens a and b reach the MLP input."""
    cfg = model.cfg
    E0 = model.W_E + model.W_pos[0]  # [vocab, d_model], token a at position 0
    E1 = model.W_E + model.W_pos[1]  # token b at position 1
    if cfg.architecture == "mlp":
        if cfg.combine == "concat":
            d = cfg.d_model
            return E0 @ W_in[:d], E1 @ W_in[d:], None, None
        return E0 @ W_in, E1 @ W_in, None, None
    W_OV = torch.einsum("hde,hef->df", model.W_V, model.W_O)  # [d_model, d_model]
    R_a = 0.5 * (E0 @ W_OV)  # residual at position 1 due to a: half the attention on a
    R_b = E1 + 0.5 * (E1 @ W_OV)  # the token itself plus half the attention on b
    return R_a @ W_in, R_b @ W_in, R_a, R_b


def circuit(model: Model) -> Circuit:
    """U, V, O and the direct path of a constant-attention model. Differentiable."""
    if not isinstance(model, Model):
        checked_model(model, "circuit")  # (raises: what to pass instead)
    cfg = model.cfg
    if not cfg.constant_attention:
        raise QuadlensError(
            f"attention is not constant (attention_rate = {cfg.attention_rate}): the "
            "pre-activation does not separate into U[a] + V[b], so there is no circuit view"
        )
    U, V, R_a, R_b = _embed_maps(model, model.W_in)
    O = model.W_out @ model.W_U
    p = cfg.p
    if R_a is None:
        zeros = torch.zeros(p, p, dtype=U.dtype, device=U.device)
        D_a, D_b = zeros, zeros
    else:
        D_a, D_b = R_a @ model.W_U, R_b @ model.W_U
    gates: tuple[Tensor | None, Tensor | None, Tensor | None] = (None, None, None)
    if cfg.activation == "bilinear":
        U_g, V_g, _, _ = _embed_maps(model, model.W_gate)
        gates = (U_g, V_g, model.b_gate)
    return Circuit(cfg, U, V, model.b_in, O, D_a, D_b, model.b_out @ model.W_U, *gates)
