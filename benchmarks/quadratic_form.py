"""Compact exact evaluation of a quadratic/bilinear MLP's logits vs brute force.

For x^2 and bilinear MLPs the logits are exactly x~^T Q_c x~ (quadlens.bilinear). Once Q is
built (p (2p+1)^2 n multiply-adds, once), all p^3 logits cost 6 table reads and adds each,
against 2 p^3 n FLOPs (plus the pre-activations) for running the MLP on every input. Measured on
Gromov's network (p = 97, width 500), side by side, with the agreement of the two.

    python -m benchmarks.quadratic_form
"""

from __future__ import annotations

import json

import torch

from benchmarks.common import timed
from quadlens.bilinear import interaction_matrices, quadratic_logits
from quadlens.data import all_pairs
from quadlens.synth import gromov


def main() -> None:
    p, width = 97, 500
    _, model = gromov(p, width)
    model = model.double()
    a, b = all_pairs(p)
    with torch.no_grad():
        brute = lambda: model(a, b)  # noqa: E731
        t_brute = timed(brute)
        t_build = timed(lambda: interaction_matrices(model), reps=2)
        Q = interaction_matrices(model)
        t_eval = timed(lambda: quadratic_logits(Q))
        err = float((quadratic_logits(Q) - brute()).abs().max())
    result = {
        "p": p, "width": width,
        "brute_force_seconds": round(t_brute, 4),
        "brute_force_flops": 2 * p**3 * width + 2 * p**2 * 2 * p * width,
        "build_Q_seconds": round(t_build, 4),
        "evaluate_from_Q_seconds": round(t_eval, 4),
        "evaluate_from_Q_flops": 6 * p**3,
        "speedup_evaluation": round(t_brute / t_eval, 1),
        "max_abs_difference": err,
    }  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
