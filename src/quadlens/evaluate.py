"""Scoring a model on all p^2 inputs: accuracy and the minimum correct-logit margin."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from quadlens.circuit import circuit
from quadlens.data import all_pairs, labels
from quadlens.model import Model


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
def evaluate(model: Model) -> EvalResult:
    logits = all_logits(model).cpu()
    m = margins(logits, labels(model.cfg.p))
    return EvalResult(
        accuracy=float((m > 0).double().mean()), min_margin=float(m.min()), n_inputs=len(m)
    )
