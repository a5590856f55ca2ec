"""The models: the paper's one-layer transformer and an MLP-only model (science.md §1, §6).

Parameter names and shapes follow TransformerLens (row vectors, weights kept per head):

    W_E   [vocab, d_model]        W_pos [pos, d_model]      (pos = 2: tokens a, b)
    W_Q, W_K, W_V [head, d_model, d_head]                   W_O [head, d_head, d_model]
    W_in  [d_in, neuron]          b_in  [neuron]            (d_in = d_model, or 2 d_model for
    W_out [neuron, d_model]       b_out [d_model]            the MLP-only model with concat)
    W_U   [d_model, vocab]
    W_gate [d_in, neuron], b_gate [neuron]                  (bilinear activation only)

Attention, embedding and unembedding biases are fixed at zero and therefore not stored. Logits
are read at position 1 (token b); since the model has one layer, only that position's residual
stream matters, so the forward computes it alone (exactly).
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor, nn

from quadlens.config import ModelConfig, derived_seed
from quadlens.errors import QuadlensError

# Parameters that exist in a model of this config, in a fixed order (the init order).
_ATTN = ("W_Q", "W_K", "W_V", "W_O")


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter of a model with this config."""
    p, d, h, dh, n = cfg.p, cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    d_in = 2 * d if (cfg.architecture == "mlp" and cfg.combine == "concat") else d
    shapes: dict[str, tuple[int, ...]] = {"W_E": (p, d), "W_pos": (2, d)}
    if cfg.architecture == "transformer":
        shapes.update(W_Q=(h, d, dh), W_K=(h, d, dh), W_V=(h, d, dh), W_O=(h, dh, d))
    shapes.update(W_in=(d_in, n), b_in=(n,))
    if cfg.activation == "bilinear":
        shapes.update(W_gate=(d_in, n), b_gate=(n,))
    shapes.update(W_out=(n, d), b_out=(d,), W_U=(d, p))
    return shapes


def activate(cfg: ModelConfig, pre: Tensor, gate: Tensor | None = None) -> Tensor:
    """The MLP nonlinearity; for bilinear, the product of the two linear branches."""
    if cfg.activation == "relu":
        return torch.relu(pre)
    if cfg.activation == "gelu":
        return nn.functional.gelu(pre)
    if cfg.activation == "quadratic":
        return pre * pre
    assert gate is not None, "bilinear activation needs the gate pre-activation"
    return pre * gate


class Model(nn.Module):
    """The one-layer transformer (or MLP-only model) of `cfg`, initialised from `seed`.

    Weight matrices ~ N(0, init_scale^2 / d_model) (the paper's 0.64 / d_model); biases 0.
    Randomness comes only from an explicit generator seeded from `seed`.
    """

    def __init__(self, cfg: ModelConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(derived_seed(seed, "init"))
        std = cfg.init_scale / math.sqrt(cfg.d_model)
        for name, shape in param_shapes(cfg).items():
            if name.startswith("b_"):
                value = torch.zeros(shape)
            else:
                value = torch.randn(shape, generator=gen) * std
            self.register_parameter(name, nn.Parameter(value))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """Logits [batch, vocab] for the inputs (a, b) — the plain forward of science.md §1."""
        if self.cfg.architecture == "mlp":
            return self._forward_mlp_only(a, b)
        resid = self.resid_mid(a, b)
        return (resid + self.mlp_out(resid)) @ self.W_U

    def resid_mid(self, a: Tensor, b: Tensor) -> Tensor:
        """The residual stream at position 1 after attention, [batch, d_model]."""
        cfg = self.cfg
        h0 = self.W_E[a] + self.W_pos[0]  # [batch, d_model]
        h1 = self.W_E[b] + self.W_pos[1]
        v0 = torch.einsum("bd,hde->bhe", h0, self.W_V)  # [batch, head, d_head]
        v1 = torch.einsum("bd,hde->bhe", h1, self.W_V)
        rate = cfg.attention_rate
        if rate == 1.0:
            z = 0.5 * (v0 + v1)
        else:
            # position 1 attends to positions 0 and 1 (causal); scores scaled by 1/sqrt(d_head)
            q1 = torch.einsum("bd,hde->bhe", h1, self.W_Q)
            k0 = torch.einsum("bd,hde->bhe", h0, self.W_K)
            k1 = torch.einsum("bd,hde->bhe", h1, self.W_K)
            scores = torch.stack([(q1 * k0).sum(-1), (q1 * k1).sum(-1)], -1)  # [batch, head, 2]
            pattern = torch.softmax(scores / math.sqrt(cfg.d_head), dim=-1)
            pattern = rate * 0.5 + (1.0 - rate) * pattern
            z = pattern[..., 0:1] * v0 + pattern[..., 1:2] * v1
        return h1 + torch.einsum("bhe,hed->bd", z, self.W_O)

    def mlp_out(self, x: Tensor) -> Tensor:
        """The MLP's output [batch, d_model] for inputs x [batch, d_in]."""
        pre = x @ self.W_in + self.b_in
        gate = x @ self.W_gate + self.b_gate if self.cfg.activation == "bilinear" else None
        return activate(self.cfg, pre, gate) @ self.W_out + self.b_out

    def mlp_input(self, a: Tensor, b: Tensor) -> Tensor:
        """What the MLP reads: the residual stream at position 1 (transformer), or the combined
        embeddings of a and b (MLP-only model)."""
        if self.cfg.architecture == "transformer":
            return self.resid_mid(a, b)
        x0 = self.W_E[a] + self.W_pos[0]
        x1 = self.W_E[b] + self.W_pos[1]
        return torch.cat([x0, x1], -1) if self.cfg.combine == "concat" else x0 + x1

    def _forward_mlp_only(self, a: Tensor, b: Tensor) -> Tensor:
        return self.mlp_out(self.mlp_input(a, b)) @ self.W_U

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        """Parameters that receive gradients. With constant attention W_Q and W_K do not enter
        the computation, so (as in a TransformerLens loop with a constant-pattern hook) they get
        no gradient and AdamW leaves them untouched."""
        frozen = {"W_Q", "W_K"} if self.cfg.constant_attention else set()
        return [(n, p) for n, p in self.named_parameters() if n not in frozen]

    def weight_norm(self) -> float:
        with torch.no_grad():
            return math.sqrt(sum(float((p.double() ** 2).sum()) for p in self.parameters()))


def checked_model(obj: object, who: str) -> Model:
    """`obj` if it is a Model with finite parameters; otherwise a QuadlensError that says what
    to pass instead (the API's analyses take a model, not the path of its run)."""
    if isinstance(obj, Model):
        bad = [n for n, p in obj.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise QuadlensError(f"{who}: the model's {', '.join(bad)} "
                                f"{'are' if len(bad) > 1 else 'is'} not finite (NaN or infinity)")
        return obj
    if isinstance(obj, str | os.PathLike):
        got = f"the path {str(obj)!r}: load the run first, quadlens.load_run(path)[1]"
    elif isinstance(obj, tuple) and any(isinstance(x, Model) for x in obj):
        got = "a tuple: quadlens.load_run returns (config, model); pass its [1]"
    else:
        got = f"a {type(obj).__name__}"
    raise QuadlensError(f"{who}: expected a quadlens Model, got {got}")
