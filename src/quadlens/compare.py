"""Lenses on the MLP side by side (issue: other lenses): for each, how many numbers the
explanation needs, what it costs to evaluate all p^3 logits (FLOPs, by formula), how faithful
it is on the real inputs (FVE of the MLP logits centred over c; accuracy of the whole model with
the MLP replaced by the lens), and what it proves.

FLOP formulas (p vocabulary, n neurons, |K| key frequencies; a multiply-add counts 2):
    full MLP            p^2 n (pre-activation adds + ReLU) + 2 p^3 n (neurons -> logits)
    closed forms        4 p^3 |K| + O(p^2 |K|): one matmul [p^2, 2 |K|] @ [2 |K|, p] of (a, b)
                        factors and c factors (angle addition; `lens.closed_form_flops`)
    frozen mask         as the full MLP (the same weights, one fixed mask)
    linear approximant  2 p^3 (one-hot inputs: two table reads and adds per logit)
    quadratic approx.   6 p^3 (x~^T Q_c x~ with 3 non-zeros in x~: 6 table reads)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from quadlens.approx import analyze_approximants
from quadlens.bound import BoundReport, bound
from quadlens.circuit import circuit
from quadlens.data import labels
from quadlens.errors import QuadlensError
from quadlens.evaluate import margins
from quadlens.lens import Analysis, analyze, closed_form, closed_form_flops
from quadlens.masks import analyze_masks
from quadlens.model import Model


@dataclass
class LensRow:
    lens: str
    size: int  # numbers the explanation needs
    flops: int  # to evaluate every logit
    fve: float | None
    accuracy: float | None
    proves: str


@torch.no_grad()
def compare(model: Model, an: Analysis | None = None,
            rep: BoundReport | None = None) -> list[LensRow]:  # fmt: skip
    """The lenses side by side on `model`. `an` and `rep`: the model's own `analyze` and
    `bound` results where they were already computed (`reproduce`), so as not to redo them."""
    cfg = model.cfg
    if not cfg.constant_attention or cfg.activation != "relu":
        raise QuadlensError("compare needs a ReLU model with the circuit view (constant attention "
                            "or MLP-only)")  # fmt: skip
    c = circuit(model)
    p, n = cfg.p, c.U.shape[1]
    if an is None:
        an = analyze(model)
    if an.p != p or (rep is not None and rep.p != p):
        raise QuadlensError("compare: the analysis or bound report given is not of this model")
    key = [cl for cl in an.clusters if cl.key]
    y = labels(p)
    rest = (c.D_a.double()[:, None, :] + c.D_b.double()[None, :, :]).reshape(p * p, p)
    rest = rest + c.logit_bias.double()
    mlp_acc = float((margins(c.forward_all().double(), y) > 0).double().mean())
    rows = [LensRow("full MLP (the model)", n * (3 * p + 1), p * p * n + 2 * p**3 * n, 1.0, mlp_acc,
                    "exact: it is the model")]  # fmt: skip
    if rep is None:
        rep = bound(model, check=False)
    worst = max((r.bound for r in rep.clusters), default=math.inf)
    proves = {
        "pizza": f"a compact bound (quadlens bound): each key cluster's |x|/2 half is within "
        f"{worst:.2f} C_k of its pizza term on all p^3 inputs"
        + ("" if worst < 1 else " (vacuous)"),
        "clock": "nothing (an approximation; no bound)",
        "pizza_secondary": "nothing (an approximation; no bound)",
    }
    for kind, per_k in (("pizza", 1), ("clock", 1), ("pizza_secondary", 5)):
        logits = closed_form(p, key, kind) + rest
        rows.append(LensRow(
            f"closed form: {kind.replace('_', ' + ')}", per_k * len(key),
            closed_form_flops(p, len(key), kind),
            an.fve[kind], float((margins(logits, y) > 0).double().mean()), proves[kind],
        ))  # fmt: skip
    masks = analyze_masks(model, n_reuse=1)
    big = masks.reuse[0]
    rows.append(LensRow(
        "frozen mask (largest region, reused everywhere)", n * (3 * p + 1) + n,
        p * p * n + 2 * p**3 * n, 1 - big.rel_rms_error**2, big.accuracy,
        f"exact identity on its region ({big.size} of {p * p} inputs); "
        f"{masks.n_patterns} regions in all",
    ))  # fmt: skip
    ap = analyze_approximants(model)
    rows.append(LensRow("linear approximant", (2 * p + 1) * p, 2 * p**3, ap.fve["linear"],
                        ap.accuracy["linear"], "nothing (an approximation)"))  # fmt: skip
    rows.append(LensRow("quadratic approximant", p * (2 * p + 1) * (2 * p + 2) // 2, 6 * p**3,
                        ap.fve["quadratic"], ap.accuracy["quadratic"],
                        "nothing (an approximation); readable by the bilinear tools"))  # fmt: skip
    return rows


def to_dicts(rows: list[LensRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def format_table(rows: list[LensRow]) -> str:
    def f(x: float | None, spec: str) -> str:
        return "-" if x is None or not math.isfinite(x) else format(x, spec)

    lines = [f"{'lens':48s} {'numbers':>9s} {'FLOPs':>10s} {'FVE':>7s} {'accuracy':>9s}  proves"]
    for r in rows:
        lines.append(f"{r.lens:48s} {r.size:9,d} {r.flops:10.2e} {f(r.fve, '.3f'):>7s} "
                     f"{f(r.accuracy, '.1%'):>9s}  {r.proves}")  # fmt: skip
    return "\n".join(lines)
