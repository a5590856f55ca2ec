"""Scoring a model on all p^2 inputs: accuracy and the minimum correct-logit margin."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from quadlens.circuit import circuit
from quadlens.data import all_pairs, labels
from quadlens.model import Model, checked_model


@dataclass(frozen=True)
class EvalResult:
    accuracy: float  # fraction of the p^2 inputs whose argmax logit is (a + b) mod p
    min_margin: float  # min over inputs of (correct logit - largest other logit); > 0 iff 100%
    n_inputs: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@torch.no_grad()
def all_logits(model: Model) -> Tensor:
    """Logits [a * p + b, vocab] for every input, via the circuit view where it applies."""
    if model.cfg.constant_attention:
        return circuit(model).forward_all()
    a, b = all_pairs(model.cfg.p)
    dev = model.W_E.device
    return model(a.to(dev), b.to(dev))


def margins(logits: Tensor, y: Tensor) -> Tensor:
    """Correct logit minus the largest other logit, per input (float64)."""
    logits = logits.double()
    correct = logits.gather(-1, y[..., None])[..., 0]
    others = logits.scatter(-1, y[..., None], float("-inf"))
    return correct - others.max(-1).values


@torch.no_grad()
def finite_model(model: Model) -> Model:
    """`model`, or where its float32 forward overflows (weights far too large: logits that are
    not finite) the same function of the same weights in float64, as the certificates' truth
    is computed; the analyses read this one."""
    if model.W_E.dtype == torch.float64 or torch.isfinite(all_logits(model)).all():
        return model
    return copy.deepcopy(model).double()


@torch.no_grad()
def evaluate(model: Model) -> EvalResult:
    """Scores of `model` (`finite_model`'s) on every input."""
    logits = all_logits(checked_model(model, "evaluate"))
    if not torch.isfinite(logits).all():
        logits = all_logits(finite_model(model))
    logits = logits.cpu()
    m = margins(logits, labels(model.cfg.p))
    return EvalResult(
        accuracy=float((m > 0).double().mean()), min_margin=float(m.min()), n_inputs=len(m)
    )
