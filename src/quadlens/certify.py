"""Accuracy certificates: proofs that a model outputs (a + b) mod p on given inputs, at a counted
cost (science.md §5, Gross et al.'s compact proofs).

**What is certified.** "The model" is the exact real-arithmetic function of its stored weights
(the circuit view: logits(a, b, c) = sum_i ReLU(U[a, i] + V[b, i] + b_in[i]) O[i, c] + D_a[a, c]
+ D_b[b, c] + bias[c]; constant-attention or MLP-only ReLU models). An input (a, b) is
certified when a proved lower bound on its margin, logit[(a + b) mod p] - max_{c != (a+b) mod p}
logit[c], is > 0: then the model's argmax is right there. The certified accuracy is the share of
the p^2 inputs certified: a lower bound on the true accuracy. It is never more than the truth,
for any weights, including models that are not 100% accurate (the tests check this).

**Rounding.** Everything runs in float64 from the (float32 or float64) weights. M bounds every
magnitude the evaluation forms: with ||X|| the largest row sum of |X|, |X @ Y| <= ||X|| max|Y|
entrywise, chained through the circuit (U, V from the embeddings, W_OV and W_in; O from W_out
and W_U; the direct path; d_mlp neurons each at most (max|U| + max|V| + max|b_in|) max|O|):
O(parameters). Every computed margin is within
16 gamma_K M of its exact value (K = d_model + n_heads d_head + d_mlp + p + 64 terms per sum,
gamma_K = K u / (1 - K u), u = 2^-53; 16 stages of rounding cover the circuit's products, the
pre-activations, the MLP, the direct path and each strategy's own sums), and the certificates
subtract twice that.

**Strategies** (the ladder; each documents what it assumes and proves):

- `brute`: every logit of every input, exactly, through the circuit view. Cost ~2 p^3 d_mlp,
  plus building the circuit. This is itself a compression: running the transformer on every
  input (Gross et al.'s brute-force proof; `forward_flops`, counted by torch's FlopCounterMode
  on the model's own forward) costs p^2 (2 d_model (2 n_heads d_head + n_heads d_head)
  + 4 d_model d_mlp + 2 d_model p) + 2 p^3, ~5x more at the paper's sizes. Both ratios are
  reported.
- `subcubic`: exact activations A_i(a, b) for every input, but the logit map is split: each
  output row O[i, :] = mean + its waves at the key frequencies (a rank-(2|K| + 1) part,
  evaluated as sum_K Re(Z_K(a, b) exp(i w_K c)) with Z_K = sum_i A_i z_iK) + a remainder r_i
  whose range rho_i = max_c r_i - min_c r_i enters the margin as -sum_i A_i rho_i (A_i >= 0).
  Exact direct path. Assumes nothing; proves a lower bound per input. Cost
  ~p^2 d_mlp (4 |K| + 5) + p^3 (4 |K| + 4).
- `cluster`: as `subcubic`, but each neuron keeps only its WAVES_PER_NEURON = 2 strongest
  key-frequency waves (its own and its main cross-talk): 8 p^2 d_mlp instead of 4 |K| p^2
  d_mlp. The rest of its output goes into its remainder.
- `quadrature`: the lens and the compact bounds (`quadlens.bound`), no per-neuron work per
  input for the |x|/2 half: logits = the exact x/2 half (separable: U O / 2 and V O / 2, plus the
  direct path) + sum_K P_K (the pizza closed forms) + deviations + output remainders. Each key
  cluster's deviation is a sum of output waves Re(z_j exp(2 pi i f_j c / p)), |z_j| bounded by
  the bound's lines at the input's own cell (its theta, delta interval and tokens a, b), so
  against competitor c the margin loses at most 2 |sin(pi f_j (s - c) / p)| |z_j| per wave
  (s = (a + b) mod p): near competitors, whose pizza margin is small, are charged little. The
  output remainders (the clusters' rows after their waves, the non-key live neurons' whole rows)
  enter with weights 0 <= |h_i| / 2 <= H_i / 2, so the logit of c moves within [-n(c), r(c)]
  and the margin against c loses at most n(s) + r(c); the rounding terms come off every margin
  twice. Closed forms and wave charges depend on c only through s - c. Cost: the bounds (linear
  in p d_mlp) + 2 p^2 d_mlp (the x/2 half) + one [p^2, waves] x [waves, p] product.
- `interpolation`: as `quadrature`, but without the closed forms: each key cluster's output
  wave F_j (the |x|/2 half of its structured pre-activations, through its output waves) is
  evaluated at the bound's grid points, at the 2p values theta takes, and enters the logits
  exactly as its chord between the two grid points around the input's delta. Charged against c,
  as the quadrature deviations are, is how far F_j can leave that chord (the curvature of the
  |g_i| and their sign flips inside the interval), the input remainders and the output
  remainders. The same computations as `quadrature`, used to evaluate rather than to compare
  with the closed form; its cost is `quadrature`'s plus one [p^2, 2 waves] x [2 waves, p]
  product.
- `S+brute` (`cluster+brute`, `quadrature+brute`, `interpolation+brute`): strategy S, then the
  inputs it could not certify are run exactly through the circuit (3 d_mlp + 2 d_mlp p + 5 p
  each): the explanation proves the easy inputs and brute force the hard ones (as Gross et al.
  do), so a 100% accurate model is always certified 100%; what the explanation buys is the cost.
- `adaptive`: `subcubic` grown one output frequency at a time: the key frequencies first, then
  the others in order of their weight sum_i H_i |O_i coefficient|, each added only while its
  cost (4 p^2 d_mlp + 6 p^3 + ...) is below that of running the still-uncertified inputs
  exactly; those are then run exactly (as `S+brute`). The same inequality as `subcubic` at every
  step, so sound for the same reason; certifies a 100% accurate model 100%.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from quadlens import bound as bd
from quadlens.circuit import Circuit, circuit
from quadlens.data import all_pairs, labels
from quadlens.errors import QuadlensError
from quadlens.evaluate import margins
from quadlens.model import Model

STRATEGIES = ("brute", "subcubic", "cluster", "quadrature", "interpolation", "cluster+brute",
              "quadrature+brute", "interpolation+brute", "adaptive")
U_ROUND = 2.0**-53
MAX_LISTED = 100  # uncertified inputs listed by name (all are counted)
WAVES_PER_NEURON = 2  # the cluster strategy's waves per neuron


@dataclass
class Certificate:
    strategy: str
    p: int
    n_inputs: int
    n_certified: int
    certified_accuracy: float  # proved lower bound on the accuracy over all p^2 inputs
    n_uncertified: int
    uncertified: list[list[int]]  # the first MAX_LISTED uncertified (a, b)
    min_margin_bound: float  # the smallest proved margin lower bound
    rounding: float  # subtracted from every margin (2 x the rounding bound)
    flops: int
    brute_flops: int  # what `brute` costs on this model (through the circuit view)
    forward_flops: int  # running the transformer itself on every input, and the margins
    seconds: float
    proves: str
    true_accuracy: float | None = None  # with check: the float64 transformer forward
    true_min_margin: float | None = None
    sound: bool | None = None  # with check: certified => correct, and bound <= true margin

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Exact:
    """The circuit in float64 with the model's shape numbers and the rounding allowance."""

    c: Circuit
    d_model: int
    d_heads: int
    slack: float  # 2 x 16 gamma_K M


def _check_model(model: Model) -> None:
    cfg = model.cfg
    if cfg.activation != "relu":
        raise QuadlensError(f"activation is {cfg.activation}: certificates are for ReLU models")
    if not cfg.constant_attention:
        raise QuadlensError(
            f"attention is not constant (attention_rate = {cfg.attention_rate:g}): the circuit "
            "view these certificates read does not exist; train with --attention-rate 1"
        )


def _inf(x: Tensor) -> float:
    """max row sum of |x| (the infinity norm): bounds |x @ y| entrywise by it times max |y|."""
    return float(x.abs().sum(-1).max())


def _magnitude(model: Model) -> float:
    """M >= every |logit| and every partial sum the evaluation forms, from norms of the weights
    (O(parameters)): |A @ B| <= ||A||_inf max |B| entrywise, chained through the circuit."""
    m = model
    cfg = m.cfg
    W_E, W_pos = m.W_E.detach().double(), m.W_pos.detach().double()
    e0 = _inf(W_E.abs() + W_pos[0].abs())
    e1 = _inf(W_E.abs() + W_pos[1].abs())
    if cfg.architecture == "mlp":
        ra, rb = e0, e1
    else:
        heads = zip(m.W_V.detach().double(), m.W_O.detach().double(), strict=True)
        ov = sum(_inf(v) * _inf(o) for v, o in heads)
        ra, rb = 0.5 * e0 * ov, e1 * (1 + 0.5 * ov)
    w_in, w_u = float(m.W_in.detach().abs().max()), float(m.W_U.detach().abs().max())
    u, v = ra * w_in, rb * w_in
    o = _inf(m.W_out.detach().double()) * w_u
    n = cfg.d_mlp
    return (n * (u + v + float(m.b_in.detach().abs().max())) * o + (ra + rb) * w_u
            + float(m.b_out.detach().abs().sum()) * w_u)  # fmt: skip


def forward_flops(model: Model) -> int:
    """FLOPs of running the model's own forward on all p^2 inputs (its matmuls: the value and
    output projections of constant attention, W_in, W_out, W_U; the tests check this against
    torch's FlopCounterMode) plus the margins (2 p^3)."""
    cfg = model.cfg
    p, n, d = cfg.p, cfg.d_mlp, cfg.d_model
    if cfg.architecture == "mlp":
        d_in = model.W_in.shape[0]
        per_input = 2 * d_in * n
    else:
        hd = cfg.n_heads * cfg.d_head
        per_input = 2 * 2 * d * hd + 2 * hd * d + 2 * d * n
    per_input += 2 * n * d + 2 * d * p
    return per_input * p * p + 2 * p**3


def _build_flops(model: Model) -> int:
    """Building the circuit: W_OV, R_a, R_b, U, V, O, D_a, D_b, b_out W_U (matmul
    multiply-adds x 2; the transformer's shapes)."""
    cfg = model.cfg
    p, n, d = cfg.p, cfg.d_mlp, cfg.d_model
    hd = cfg.n_heads * cfg.d_head
    return (2 * d * hd * d + 2 * 2 * p * d * d + 2 * 2 * p * d * n + 2 * n * d * p
            + 2 * 2 * p * d * p + 2 * d * p)  # fmt: skip


def _exact(model: Model, ops: bd.Ops) -> _Exact:
    cfg = model.cfg
    with torch.no_grad():
        c = circuit(copy.deepcopy(model).double().cpu())
    ops.add(_build_flops(model))
    M = _magnitude(model)
    ops.add(2 * _n_params(model))
    hd = cfg.n_heads * cfg.d_head
    K = cfg.d_model + hd + cfg.d_mlp + cfg.p + 64
    gamma = K * U_ROUND / (1 - K * U_ROUND)
    return _Exact(c, cfg.d_model, hd, 2 * 16 * gamma * M)


def _direct(c: Circuit) -> Tensor:
    p = c.cfg.p
    return (c.D_a[:, None, :] + c.D_b[None, :, :]).reshape(p * p, p) + c.logit_bias


def _activations(c: Circuit, ops: bd.Ops) -> Tensor:
    p = c.cfg.p
    pre = (c.U[:, None, :] + c.V[None, :, :] + c.b_in).reshape(p * p, -1)
    ops.add(3 * pre.numel())
    return torch.relu(pre)


def brute_flops(p: int, n: int) -> int:
    """Pre-activations and ReLU (3 p^2 n), every neuron into every logit (2 p^3 n), direct path
    and bias (3 p^3), margins (2 p^3); the circuit build is counted separately."""
    return 3 * p * p * n + 2 * p**3 * n + 5 * p**3


def _brute(ex: _Exact, ops: bd.Ops) -> Tensor:
    c = ex.c
    p, n = c.cfg.p, c.U.shape[1]
    A = _activations(c, ops)
    L = A @ c.O + _direct(c)
    ops.add(2 * p**3 * n + 3 * p**3)
    m = margins(L, labels(p))
    ops.add(2 * p**3)
    return m


def _brute_leftovers(ex: _Exact, m: Tensor, ops: bd.Ops) -> Tensor:
    """m with every input whose bound is <= 0 replaced by its exact margin (minus the rounding
    allowance), each computed from the circuit alone."""
    c = ex.c
    p, n = c.cfg.p, c.U.shape[1]
    idx = torch.nonzero(m <= 0).flatten()
    a, b = idx // p, idx % p
    L = torch.relu(c.U[a] + c.V[b] + c.b_in) @ c.O + c.D_a[a] + c.D_b[b] + c.logit_bias
    ops.add(len(idx) * (3 * n + 2 * n * p + 5 * p))
    out = m.clone()
    out[idx] = margins(L, labels(p)[idx]) - ex.slack
    return out


def _waves(c: Circuit, f: bd.Fits, freqs: Tensor, sparse: bool, ops: bd.Ops
           ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """Complex output waves z [n, F] at frequencies `freqs` (each neuron: all of them, or with
    `sparse` only its WAVES_PER_NEURON largest), and each row's remainder range rho [n]."""
    p, n = c.cfg.p, c.O.shape[0]
    z = torch.zeros(n, 0, dtype=torch.complex128)
    if len(freqs):
        z = torch.stack([bd._coef(f.XO, int(k), p) for k in freqs], 1)  # [n, F] (f.XO: centred O)
    if sparse and z.shape[1] > WAVES_PER_NEURON:
        top = z.abs().argsort(1, descending=True)[:, :WAVES_PER_NEURON]
        z = z * torch.zeros(z.shape, dtype=torch.bool).scatter_(1, top, True)
        ops.add(n * len(freqs) * 2)
    cc = torch.arange(p, dtype=torch.float64)
    basis = torch.exp(1j * 2 * math.pi * freqs[:, None] * cc / p)  # [F, p]
    r = c.O - c.O.mean(1, keepdim=True) - (z @ basis).real
    rho = r.max(1).values - r.min(1).values
    ops.add(n * p * (4 * len(freqs) + 4))
    return z, basis, rho


def _lowrank(ex: _Exact, sparse: bool, ops: bd.Ops) -> Tensor:
    c = ex.c
    p, n = c.cfg.p, c.U.shape[1]
    f = bd.fit(c, ops)
    keys = bd.key_clusters(f)
    freqs = torch.tensor(keys, dtype=torch.float64)
    z, basis, rho = _waves(c, f, freqs, sparse, ops)
    A = _activations(c, ops)
    Z = A.to(torch.complex128) @ z  # [p^2, F] (with sparse, the zero entries are not counted)
    ops.add(4 * p * p * n * (min(len(keys), WAVES_PER_NEURON) if sparse else len(keys)))
    L = (Z @ basis).real + _direct(c)
    ops.add(4 * p**3 * len(keys) + 3 * p**3)
    m = margins(L, labels(p)) - A @ rho
    ops.add(2 * p**3 + 2 * p * p * n)
    return m


def _adaptive(ex: _Exact, ops: bd.Ops) -> Tensor:
    c = ex.c
    p, n = c.cfg.p, c.U.shape[1]
    f = bd.fit(c, ops)
    keys = bd.key_clusters(f)
    half = (p - 1) // 2
    load = (f.XO[1 : half + 1].abs() * torch.where(f.live, f.H, 0.0)).sum(1)  # [half]
    ops.add(4 * half * n)
    rest = [int(j) + 1 for j in torch.argsort(load, descending=True) if int(j) + 1 not in keys]
    A = _activations(c, ops)
    Ac = A.to(torch.complex128)
    L = _direct(c)
    r = c.O - c.O.mean(1, keepdim=True)  # each row's remainder after the waves taken so far
    x = torch.arange(p, dtype=torch.float64)
    ops.add(3 * p**3 + 2 * n * p)

    def cost(F: int) -> int:
        """Taking F frequencies' waves in, and the margin bounds after it."""
        return F * (4 * p * p * n + 4 * p**3 + 4 * n * p) + 2 * n * p + 2 * p**3 + 2 * p * p * n

    def add(freqs: list[int]) -> Tensor:
        """Take the waves at `freqs` (may be none) into the low-rank part; the new margin
        bounds."""
        nonlocal L, r
        if freqs:
            fr = torch.tensor(freqs, dtype=torch.float64)
            z = torch.stack([bd._coef(f.XO, k, p) for k in freqs], 1)  # [n, F]
            basis = torch.exp(1j * 2 * math.pi * fr[:, None] * x / p)  # [F, p]
            L = L + ((Ac @ z) @ basis).real
            r = r - (z @ basis).real
        ops.add(cost(len(freqs)))
        return margins(L, labels(p)) - A @ (r.max(1).values - r.min(1).values)

    m = add(keys)
    per_input = 3 * n + 2 * n * p + 5 * p  # running one input exactly (_brute_leftovers)
    for k in rest:
        if int((m <= ex.slack).sum()) * per_input <= cost(1):
            break  # cheaper to run what is left exactly (certify() does, after the allowance)
        m = add([k])
    return m


def theta_delta_cells(p: int, k: int, grid: int) -> tuple[Tensor, Tensor, Tensor]:
    """For every input (a, b) in pair order and the cluster of frequency k (w = 2 pi k / p): the
    index t of theta = pi t / p, the delta interval j the bounds tabulate it in and how far into
    it delta lies (lam in [0, 1)), with w a = theta + delta, w b = theta - delta (mod 2 pi) and
    delta folded into [0, pi)."""
    a, b = all_pairs(p)
    d = k * (a - b)
    q = torch.div(d, p, rounding_mode="floor")  # delta = pi (d - q p) / p in [0, pi)
    t = torch.remainder(k * (a + b) + q * p, 2 * p)
    r = (d - q * p) * grid  # delta / (pi / grid) = r / p, exactly
    j = r // p
    return t, j, (r - j * p).double() / p


def _quadrature(ex: _Exact, ops: bd.Ops, grid: int, interpolate: bool = False,
                harmonics: int = bd.DEFAULT_HARMONICS,
                extra_outputs: int = bd.DEFAULT_EXTRA_OUTPUTS) -> Tensor:  # fmt: skip
    c = ex.c
    p = c.cfg.p
    f = bd.fit(c, ops)
    keys = bd.key_clusters(f)
    live = f.live
    # the x/2 half, exact and separable, plus the direct path
    half = (f.u[:, live] @ c.O[live]) / 2, (f.v[:, live] @ c.O[live]) / 2
    x = torch.arange(p, dtype=torch.float64)
    A_, B_ = x[:, None].expand(p, p).reshape(-1), x[None, :].expand(p, p).reshape(-1)
    bias_half = (f.beta[live] @ c.O[live]) / 2  # the bias's share of the x/2 half, per c
    L = (half[0][:, None, :] + half[1][None, :, :]).reshape(p * p, p) + bias_half + _direct(c)
    ops.add(2 * 2 * p * p * int(live.sum()) + 2 * p * int(live.sum()) + 4 * p**3)
    # Everything else depends on the input through (a, b) and on the competitor c through
    # waves of c: the closed forms C_k |cos(w (a - b) / 2)| cos(2 pi k e / p) and each output
    # wave's charge 2 |z_j| |sin(pi f_j e / p)|, functions of the offset e = (s - c) mod p
    # (s = (a + b) mod p), with |z_j| bounded at the input's own theta, delta and tokens; with
    # `interpolate`, each wave's chord Re(chord_j exp(2 pi i f_j c / p)). Waves of one frequency
    # (folded into 1..p/2; a wave at p - f is the conjugate one at f) are summed over the
    # clusters first, so each product runs over the frequencies present, not over every wave.
    s = labels(p)
    nf = p // 2 + 1
    charge = torch.zeros(p * p, nf, dtype=torch.float64)  # per input and frequency: |z| bounds
    closed = torch.zeros(p * p, nf, dtype=torch.float64)  # closed-form amplitudes
    chords = torch.zeros(p * p, nf, dtype=torch.complex128)  # with interpolate
    # the output remainders (of the key clusters' rows after their waves, and the non-key
    # neurons' whole rows) lie in [-lower_s(c), raise_c(c)]: against c the margin loses at most
    # lower_s(s) + raise_c(c); the rounding terms are c-free (twice each)
    raise_c = torch.zeros(p, dtype=torch.float64)
    lower_s = torch.zeros(p, dtype=torch.float64)
    rounding_total = 0.0
    a_, b_ = A_.long(), B_.long()
    for k in keys:
        cl = bd._cluster(f, k, harmonics, extra_outputs, ops)
        tables: list[Any] = []
        bd._quadrature(cl, p, grid, ops, tables)  # QuadratureCells, per theta = pi t / p
        bd._first_order(cl, p, grid, "U", ops, tables)  # [p, grid, waves], per token a
        bd._first_order(cl, p, grid, "V", ops, tables)  # per token b
        rounding_total += bd.rounding_term(cl, p, ops)
        rp, rn = bd.output_remainder(cl, p, ops)  # its output remainder, in [-rn(c), rp(c)]
        raise_c, lower_s = raise_c + rp, lower_s + rn
        t, j, lam = theta_delta_cells(p, k, grid)
        bound = tables[1][a_, j] + tables[2][b_, j]  # [p^2, waves]: the input remainders
        if interpolate:  # each wave's chord between the grid points, exactly; charge the rest
            chord, off = tables[0].chord(t, j, lam)
            bound = bound + off
        else:  # the closed form, exactly; charge each wave's deviation from it
            bound = bound + tables[0].at(t, j, lam)
            closed[:, k] += cl.C * torch.cos(math.pi * k * (A_ - B_) / p).abs()
        fm = cl.fo.long() % p
        conj = fm > p // 2
        folded = torch.where(conj, p - fm, fm)
        charge.index_add_(1, folded, bound)
        if interpolate:
            chords.index_add_(1, folded, torch.where(conj, chord.conj(), chord))
        ops.add(14 * p * p + (16 if interpolate else 10) * p * p * len(cl.fo) + 4 * p * p)
    fr = x[:nf]
    e = torch.remainder(s[:, None] - x.long()[None], p)  # [p^2, p]: each competitor's offset
    used = torch.nonzero(charge.abs().sum(0) > 0).flatten()
    usedk = torch.nonzero(closed.abs().sum(0) > 0).flatten()
    by_offset = (charge[:, used] @ (2 * torch.sin(math.pi * fr[used, None] * x / p).abs())
                 + closed[:, usedk] @ torch.cos(2 * math.pi * fr[usedk, None] * x / p))
    L = L + by_offset.gather(1, e)  # competitors raised by their charges (0 at c = s)
    ops.add(2 * p**3 * (len(used) + len(usedk)) + 2 * p**3 + 2 * p * p * nf)
    if interpolate:  # the chords' logits: sum_f Re(chord_f exp(2 pi i f c / p))
        wc = 2 * math.pi * fr[used, None] * x / p
        L = L + chords[:, used].real @ torch.cos(wc) - chords[:, used].imag @ torch.sin(wc)
        ops.add(4 * p**3 * len(used) + 2 * p**3)
    nk = live & ~torch.isin(f.freq, torch.tensor(keys, dtype=torch.long))
    o, Hh = f.o[nk], f.H[nk, None] / 2  # the non-key neurons' |x|/2 half, o centred
    raise_c = raise_c + (Hh * o.clamp_min(0)).sum(0)
    lower_s = lower_s + (Hh * (-o).clamp_min(0)).sum(0)
    ops.add(6 * p * int(nk.sum()) + 4 * p)
    # competitors are raised by their charges (0 at c = s, where sin 0 = 0) and by raise_c; the
    # correct logit gets raise_c too, so it is taken off again with lower_s (a term added to
    # every logit, the correct one included, would cancel)
    m = margins(L + raise_c, s) - (raise_c + lower_s)[s] - 2 * rounding_total
    ops.add(3 * p**3 + p**3 + 3 * p * p)
    return m


PROVES = {
    "brute": "exact margins of every input (up to the rounding allowance)",
    "subcubic": "margin >= key-frequency low-rank margin - sum_i A_i range(remainder_i), per input",
    "cluster": "as subcubic with each neuron's 2 strongest key-frequency waves only",
    "quadrature": "margin >= (exact x/2 half + pizza closed forms) margin, each competitor c "
    "charged 2 |sin(pi f (s - c) / p)| x each output wave's deviation bound at the input's "
    "cell, and the output remainders' n(s) + r(c), per input",
}
PROVES["interpolation"] = (
    "margin >= (exact x/2 half + each key cluster's output waves, interpolated in delta between "
    "grid points at the input's own theta) margin, each competitor c charged "
    "2 |sin(pi f (s - c) / p)| x each wave's interpolation and input-remainder bounds, and the "
    "output remainders' n(s) + r(c), per input")
for _s in ("cluster", "quadrature", "interpolation"):
    PROVES[f"{_s}+brute"] = f"{_s}'s bound, and the exact margin of every input it leaves"
PROVES["adaptive"] = ("as subcubic with the fewest output frequencies (key ones first) that make "
                      "the rest cheaper to run exactly, and the exact margin of every input left")


def certify(model: Model, strategy: str = "subcubic", check: bool = False,
            grid: int = bd.DEFAULT_GRID, harmonics: int = bd.DEFAULT_HARMONICS,
            extra_outputs: int = bd.DEFAULT_EXTRA_OUTPUTS) -> Certificate:  # fmt: skip
    """Certify `model` with `strategy` (module doc); with check, add the truth beside it.
    `grid`, `harmonics` and `extra_outputs` are the compact bounds' options (`quadlens bound`),
    used by the quadrature and interpolation strategies."""
    if strategy not in STRATEGIES:
        raise QuadlensError(
            f"unknown strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}"
        )
    _check_model(model)
    bd.check_options(grid, harmonics, extra_outputs)
    p, n = model.cfg.p, model.cfg.d_mlp
    base, _, fallback = strategy.partition("+")
    ops = bd.Ops()
    t0 = time.perf_counter()
    with torch.no_grad():
        ex = _exact(model, ops)
        if base == "brute":
            m = _brute(ex, ops)
        elif base in ("quadrature", "interpolation"):
            m = _quadrature(ex, ops, grid, base == "interpolation", harmonics, extra_outputs)
        elif base == "adaptive":
            m = _adaptive(ex, ops)
        else:
            m = _lowrank(ex, base == "cluster", ops)
        m = m - ex.slack
        if fallback or base == "adaptive":
            m = _brute_leftovers(ex, m, ops)
    seconds = time.perf_counter() - t0
    ok = m > 0
    a, b = all_pairs(p)
    bad = torch.nonzero(~ok).flatten()
    cert = Certificate(
        strategy=strategy, p=p, n_inputs=p * p, n_certified=int(ok.sum()),
        certified_accuracy=float(ok.double().mean()), n_uncertified=len(bad),
        uncertified=[[int(a[i]), int(b[i])] for i in bad[:MAX_LISTED]],
        min_margin_bound=float(m.min()), rounding=ex.slack, flops=ops.total,
        brute_flops=brute_flops(p, n) + _build_flops(model) + 2 * _n_params(model),
        forward_flops=forward_flops(model),
        seconds=seconds,
        proves=PROVES[strategy],
    )  # fmt: skip
    if check:
        truth = true_margins(model)
        cert.true_accuracy = float((truth > 0).double().mean())
        cert.true_min_margin = float(truth.min())
        # sound: every certified input is correct, and no proved lower bound exceeds the true
        # margin (beyond the rounding allowance of the float64 forward)
        cert.sound = bool((truth[ok] > 0).all() and (m <= truth + ex.slack).all())
    return cert


def _n_params(model: Model) -> int:
    return sum(prm.numel() for prm in model.parameters())


@torch.no_grad()
def true_margins(model: Model) -> Tensor:
    """The margins of the transformer's own forward in float64 on every input (an independent
    path: no circuit view)."""
    m64 = copy.deepcopy(model).double().cpu()
    a, b = all_pairs(model.cfg.p)
    return margins(m64(a, b), labels(model.cfg.p))


def certify_member(zoo: str, run: str, strategies: list[str], check: bool,
                   options: dict[str, int]) -> list[dict[str, Any]]:  # fmt: skip
    """All strategies on one zoo member (runs in a worker process)."""
    from pathlib import Path

    from quadlens import rundir

    torch.set_num_threads(1)
    _, model = rundir.load_run(Path(zoo) / run)
    return [certify(model, s, check=check, **options).to_dict() for s in strategies]


def certify_zoo(zoo: Any, strategies: list[str], check: bool = False, grid: int = bd.DEFAULT_GRID,
                workers: int | None = None, progress: bool = True,
                harmonics: int = bd.DEFAULT_HARMONICS,
                extra_outputs: int = bd.DEFAULT_EXTRA_OUTPUTS) -> dict[str, Any]:  # fmt: skip
    """Every finished member of a zoo under every strategy, with the aggregate table."""
    import os
    import statistics
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    from quadlens import rundir
    from quadlens.zoo import read_manifest

    bd.check_options(grid, harmonics, extra_outputs)
    options = {"grid": grid, "harmonics": harmonics, "extra_outputs": extra_outputs}
    manifest = read_manifest(zoo)
    members = [m for m in manifest["members"] if (zoo / m["run"] / rundir.WEIGHTS).is_file()]
    workers = workers or min(os.cpu_count() or 1, max(len(members), 1))
    bar = tqdm(total=len(members), disable=not progress, unit="model", desc=f"certify {zoo.name}")
    results: list[list[dict[str, Any]]] = []
    n = len(members)
    args = ([str(zoo)] * n, [m["run"] for m in members], [strategies] * n, [check] * n,
            [options] * n)  # fmt: skip
    if workers > 1 and len(members) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for r in pool.map(certify_member, *args):
                results.append(r)
                bar.update(1)
    else:
        for r in map(certify_member, *args):
            results.append(r)
            bar.update(1)
    bar.close()
    per_model = [{"name": m["name"], "certificates": r} for m, r in zip(members, results,
                                                                        strict=True)]  # fmt: skip
    summary = {}
    for i, s in enumerate(strategies):
        certs = [r[i] for r in results]
        if not certs:
            continue
        full = [c["certified_accuracy"] == 1.0 for c in certs]
        summary[s] = {
            "n_certified_100": sum(full),
            "frac_certified_100": sum(full) / len(certs),
            "median_certified_accuracy": statistics.median(c["certified_accuracy"] for c in certs),
            "median_cost_ratio": statistics.median(c["flops"] / c["brute_flops"] for c in certs),
            "median_cost_ratio_forward":
                statistics.median(c["flops"] / c["forward_flops"] for c in certs),
            "all_sound": all(c["sound"] for c in certs) if check else None,
        }
    return {"zoo": str(zoo), "n_models": len(members), "strategies": summary,
            "per_model": per_model}  # fmt: skip
