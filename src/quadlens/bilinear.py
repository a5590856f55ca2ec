"""Bilinear layers read from the weights (Pearce et al., arXiv 2410.08417; science.md §6).

For the bilinear activation, hidden_h = (x W_in + b_in)_h (x W_gate + b_gate)_h. On the circuit
view the MLP input is the token-space vector x~ = [one-hot a; one-hot b; 1] (length 2p + 1), so

    pre_in = L^T x~,  L = [U; V; b_in],      pre_gate = R^T x~,  R = [U_gate; V_gate; b_gate]
    logit_c(a, b) = x~^T Q_c x~   exactly, with
    Q_c = sym( sum_h O[h, c] L[:, h] R[:, h]^T ) + sym( l_c e_last^T ),
    l_c = [D_a[:, c]; D_b[:, c]; logit_bias[c]]   (the direct path is linear; x~_last = 1)

B[c, i, j] = Q_c[i, j] is the symmetrised third-order tensor with embeddings and unembedding
folded in. Each Q_c is read by its eigendecomposition: an ideal model computing
cos(w_k (a + b - c)) has 4 eigenvalues +-(p/4) x amplitude per key frequency, with eigenvectors
of frequency k; equal eigenvalues make individual eigenvectors arbitrary within their
eigenspace, so Fourier content is reported per eigenspace.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from quadlens import fourier
from quadlens.circuit import Circuit, circuit
from quadlens.data import labels
from quadlens.errors import QuadlensError
from quadlens.evaluate import margins
from quadlens.model import Model


def _bilinear_circuit(obj: Model | Circuit) -> Circuit:
    c = circuit(obj) if isinstance(obj, Model) else obj
    if c.cfg.activation not in ("bilinear", "quadratic"):
        raise QuadlensError(
            f"activation is {c.cfg.activation}: the interaction-matrix reading is exact only for "
            "bilinear (and x^2) MLPs"
        )
    return c


@torch.no_grad()
def interaction_matrices(obj: Model | Circuit) -> Tensor:
    """Q [c, 2p+1, 2p+1] (float64) with logit_c(a, b) = x~^T Q_c x~ exactly."""
    c = _bilinear_circuit(obj)
    d = lambda t: t.detach().double()  # noqa: E731
    L = torch.cat([d(c.U), d(c.V), d(c.b_in)[None]])  # [2p+1, neuron]
    if c.cfg.activation == "bilinear":
        R = torch.cat([d(c.U_gate), d(c.V_gate), d(c.b_gate)[None]])
    else:  # x^2 = x * x
        R = L
    O = d(c.O)
    Q = torch.einsum("hc,ih,jh->cij", O, L, R)  # [c, 2p+1, 2p+1]
    lin = torch.cat([d(c.D_a), d(c.D_b), d(c.logit_bias)[None]]).T  # [c, 2p+1]
    Q[:, :, -1] += lin
    return (Q + Q.transpose(1, 2)) / 2


def token_vectors(p: int) -> Tensor:
    """x~ for every input, [a * p + b, 2p + 1]."""
    x = torch.zeros(p * p, 2 * p + 1, dtype=torch.float64)
    idx = torch.arange(p * p)
    x[idx, idx // p] = 1
    x[idx, p + idx % p] = 1
    x[:, -1] = 1
    return x


def quadratic_logits(Q: Tensor) -> Tensor:
    """x~^T Q_c x~ for every input and class, [a * p + b, c], using that x~ has three ones:
    Q[a,a] + Q[b',b'] + Q[1,1] + 2 (Q[a,b'] + Q[a,1] + Q[b',1]) with b' = p + b — six table
    reads per logit (6 p^3 in all) instead of a dense (2p+1)^2 contraction."""
    p = Q.shape[0]
    a = torch.arange(p)
    A = a[:, None].expand(p, p).reshape(-1)  # [p*p]
    Bp = (p + a)[None, :].expand(p, p).reshape(-1)
    last = 2 * p
    Qt = Q.permute(1, 2, 0)  # [i, j, c]
    return Qt[A, A] + Qt[Bp, Bp] + Qt[last, last] + 2 * (Qt[A, Bp] + Qt[A, last] + Qt[Bp, last])


@dataclass
class Eigenspace:
    eigenvalue: float  # (mean of the group)
    multiplicity: int
    freq: int  # dominant Fourier frequency of the eigenspace's token components
    freq_share: float  # share of the eigenspace's token power at that frequency


@dataclass
class BilinearReport:
    p: int
    exact_max_error: float  # |x~^T Q x~ - model logits|, max over inputs and classes
    eigenvalues_top: list[list[float]]  # per class, the 12 largest by |value|
    effective_rank: list[float]  # per class, (|l|_1 / |l|_2)^2
    effective_rank_centred: list[float]  # same for Q_c - mean_c Q (logit differences)
    topk_accuracy: list[float]  # accuracy when every class keeps its top-k eigenvectors
    eigenspaces_class0: list[Eigenspace]  # the largest eigenspaces of Q_0
    predicted_quarter_p: list[dict[str, float]]  # per key frequency: |eigenvalue| / (p/4)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _eigenspaces(vals: Tensor, vecs: Tensor, p: int, top: int = 12) -> list[Eigenspace]:
    scale = float(vals.abs().max()) or 1.0
    # by |value|, largest first, equal values adjacent (so +v and -v pairs do not interleave)
    key = [(-round(abs(float(v)) / scale, 9), float(v)) for v in vals]
    order = torch.tensor(sorted(range(len(vals)), key=key.__getitem__))
    vals, vecs = vals[order], vecs[:, order]
    out: list[Eigenspace] = []
    i = 0
    while i < len(vals) and len(out) < top:
        j = i + 1
        while j < len(vals) and abs(float(vals[j] - vals[i])) < 1e-6 * scale:
            j += 1
        block = vecs[:, i:j]  # the eigenspace
        tok = torch.cat([block[:p], block[p : 2 * p]], 1)  # token components, [p, 2m]
        power = fourier.power(tok - tok.mean(0), dim=0).sum(1)
        k = int(power.argmax()) + 1
        share = float(power.max() / power.sum()) if float(power.sum()) > 0 else 0.0
        out.append(Eigenspace(float(vals[i:j].mean()), j - i, k, share))
        i = j
    return out


def smallest_k(topk_accuracy: list[float], accuracy: float) -> int | None:
    """The fewest top eigenvectors per class whose truncation is as accurate as the model
    itself (`accuracy`, on all inputs), or None within the k computed."""
    return next((k for k, a in enumerate(topk_accuracy) if a >= accuracy), None)


@torch.no_grad()
def analyze_bilinear(obj: Model | Circuit, max_k: int = 30) -> BilinearReport:
    c = _bilinear_circuit(obj)
    p = c.cfg.p
    if max_k < 0:
        raise QuadlensError(f"--max-k must be >= 0, got {max_k}")
    Q = interaction_matrices(c)
    y = labels(p)
    with torch.no_grad():
        plain = c.forward_all().double()
    exact = float((quadratic_logits(Q) - plain).abs().max())
    vals, vecs = torch.linalg.eigh(Q)  # [c, n], [c, n, n]
    order = torch.argsort(vals.abs(), dim=1, descending=True)
    vals_sorted = vals.gather(1, order)
    vecs_sorted = vecs.gather(2, order[:, None, :].expand_as(vecs))
    l1, l2 = vals.abs().sum(1), vals.pow(2).sum(1).sqrt()
    Qc = Q - Q.mean(0, keepdim=True)
    vc = torch.linalg.eigvalsh(Qc)
    x = token_vectors(p)
    proj = torch.einsum("ni,cik->cnk", x, vecs_sorted) ** 2  # [c, input, k]
    contrib = proj * vals_sorted[:, None, :]  # each eigenvector's share of x~^T Q x~
    cum = torch.cumsum(contrib, 2)  # [c, input, k]
    acc = []
    for k in range(min(max_k, vals.shape[1]) + 1):  # (past every eigenvector: all of them)
        logits = torch.zeros(p, p * p, dtype=torch.float64) if k == 0 else cum[:, :, k - 1]
        acc.append(float((margins(logits.T, y) > 0).double().mean()))
    spaces = _eigenspaces(vals[0], vecs[0], p)
    # the ideal structure: alpha_k cos(w_k (a + b - c)) gives eigenvalues +-(p/4) alpha_k, with
    # alpha_k = 2 |sum_{a,b,c} logit e^{-i w_k (a + b - c)}| / p^3 measured from the logits
    L3 = plain.reshape(p, p, p).to(torch.complex128)
    pred = []
    for sp in spaces[:4]:
        e = torch.exp(-2j * math.pi * sp.freq * torch.arange(p, dtype=torch.float64) / p)
        alpha = 2 * abs(complex(torch.einsum("abc,a,b,c->", L3, e, e, e.conj()))) / p**3
        ratio = abs(sp.eigenvalue) / (p / 4 * alpha) if alpha > 0 else math.nan
        pred.append({"freq": sp.freq, "eigenvalue": sp.eigenvalue, "alpha": alpha,
                     "ratio_to_p_over_4_alpha": ratio})  # fmt: skip
    return BilinearReport(
        p=p, exact_max_error=exact, eigenvalues_top=vals_sorted[:, :12].tolist(),
        effective_rank=((l1 / l2) ** 2).tolist(),
        effective_rank_centred=((vc.abs().sum(1) / vc.pow(2).sum(1).sqrt()) ** 2).tolist(),
        topk_accuracy=acc, eigenspaces_class0=spaces, predicted_quarter_p=pred,
    )  # fmt: skip
