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
  output row O[i, :] = mean + its waves at the frequencies K (the key clusters' and any other
  output frequency with >= OUTPUT_SHARE of the output load; a rank-(2|K| + 1) part,
  evaluated as sum_K Re(Z_K(a, b) exp(i w_K c)) with Z_K = sum_i A_i z_iK) + a remainder r_i,
  whose share of the margin against c, sum_i A_i (r_i(s) - r_i(c)), is bounded below by the
  rows' ranges, -sum_i A_i rho_i (rho_i = max_c r_i - min_c r_i, A_i >= 0), and for the inputs
  that leaves by a centred Cauchy-Schwarz bound per competitor (`_remainder_bound`). Exact
  direct path. Assumes nothing; proves a lower bound per input. Cost
  ~p^2 d_mlp (4 |K| + 5) + p^3 (4 |K| + 5) + 2 d_mlp p^2 + (5 d_mlp + 14 p) per input left.
- `cluster`: as `subcubic`, but each neuron keeps only its WAVES_PER_NEURON = 2 strongest
  waves at K (its own and its main cross-talk): 8 p^2 d_mlp instead of 4 |K| p^2
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
- `adaptive`: `cluster`, then for the inputs it leaves the remainder's leading neuron-space
  directions (2, 4, 8, ..., at most ADAPTIVE_DIRECTIONS) taken in exactly, each step on the
  inputs still left, while a step costs less than running those inputs exactly and the last
  one certified some; then those are run exactly (as `S+brute`). The identity behind each
  step holds for any directions, so it is sound for the same reason as `subcubic`; it
  certifies a 100% accurate model 100%. The direction steps need the activations of the
  inputs left; where those would exceed ADAPTIVE_KEEP (2^28 values, 2 GiB: a large model the
  low-rank picture does not fit), they are skipped and every input left is run exactly.
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
from quadlens._alloc import tune_allocator
from quadlens.circuit import Circuit, circuit
from quadlens.config import ModelConfig
from quadlens.data import all_pairs, labels
from quadlens.errors import QuadlensError
from quadlens.evaluate import margins
from quadlens.model import Model, checked_model

STRATEGIES = ("brute", "subcubic", "cluster", "quadrature", "interpolation", "cluster+brute",
              "quadrature+brute", "interpolation+brute", "adaptive")
U_ROUND = 2.0**-53
MAX_LISTED = 100  # uncertified inputs listed by name (all are counted)
WAVES_PER_NEURON = 2  # the cluster strategy's waves per neuron
ADAPTIVE_DIRECTIONS = 64  # the most neuron-space directions `adaptive` takes in
OUTPUT_SHARE = 0.02  # an output frequency with this share of the output load is a wave too
ADAPTIVE_KEEP = 1 << 28  # the most activations `adaptive` keeps for its direction steps (2 GiB)
BRUTE_BLOCK = bd._CHUNK * 16  # elements per block of brute force and the truth (512 MiB)
LOWRANK_BLOCK = 1 << 20  # activations per block of the low-rank strategies' pass (8 MiB)
QUAD_BLOCK = 1 << 20  # logits per block of the compact strategies' pass (8 MiB)
PROGRESS_DELAY = 2.0  # seconds before `certify_all`'s progress bar shows (none for quick work)


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
    forward_flops: int  # running the model itself (transformer or MLP) on every input, and margins
    seconds: float
    proves: str
    true_accuracy: float | None = None  # with check: the model's own float64 forward
    true_min_margin: float | None = None
    sound: bool | None = None  # with check: certified => correct, and bound <= true margin
    # the compact bounds' options a quadrature or interpolation strategy ran with (else None)
    options: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Exact:
    """The circuit in float64 with the model's shape numbers and the rounding allowance."""

    c: Circuit
    d_model: int
    d_heads: int
    slack: float  # 2 x 16 gamma_K M


def unfit_reason(cfg: ModelConfig, strategies: list[str]) -> str | None:
    """Why these strategies cannot certify a model of this config (None: they can)."""
    if cfg.activation != "relu":
        return f"activation is {cfg.activation}: certificates are for ReLU models"
    if not cfg.constant_attention:
        return (f"attention is not constant (attention_rate = {cfg.attention_rate:g}): the "
                "circuit view these certificates read does not exist; train with "
                "--attention-rate 1")  # fmt: skip
    needs_fit = [s for s in strategies if s != "brute"]
    if cfg.p < bd.MIN_P and needs_fit:
        return (f"p = {cfg.p}: the {', '.join(needs_fit)} certificate"
                f"{'s need' if len(needs_fit) > 1 else ' needs'} p >= {bd.MIN_P} (the Fourier fit "
                "of U, V, O); --strategy brute works at any p")  # fmt: skip
    return None


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
    multiply-adds x 2; the transformer's shapes). The MLP-only model has no attention and no
    direct path: U, V, O and b_out W_U only."""
    cfg = model.cfg
    p, n, d = cfg.p, cfg.d_mlp, cfg.d_model
    if cfg.architecture == "mlp":
        return 2 * 2 * p * d * n + 2 * n * d * p + 2 * d * p
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


@torch.no_grad()
def _grid_activations(c: Circuit, rows: slice, out: Tensor) -> Tensor:
    """ReLU(U[a] + V[b] + b_in) for the tokens a in `rows` and every b, in pair order
    [len(rows) p, n] ((U + b_in) + V: one pass over the result), into `out`, a reused buffer
    of at least that many elements (a fresh multi-megabyte tensor per block of a pass costs
    its page faults every time)."""
    Ub = (c.U[rows] + c.b_in)[:, None, :]
    k, n = Ub.shape[0], c.U.shape[1]
    grid = out.view(-1)[: k * c.V.shape[0] * n].view(k, -1, n)
    return torch.add(Ub, c.V[None, :, :], out=grid).relu_().view(-1, n)


def _exact_input_flops(p: int, n: int) -> int:
    """Running one input exactly through the circuit (`_brute_leftovers`): its pre-activations
    and ReLU, its logits, the direct path and its margin."""
    return 3 * n + 2 * n * p + 5 * p


def brute_flops(p: int, n: int) -> int:
    """Pre-activations and ReLU (3 p^2 n), every neuron into every logit (2 p^3 n), direct path
    and bias (3 p^3), margins (2 p^3); the circuit build is counted separately."""
    return 3 * p * p * n + 2 * p**3 * n + 5 * p**3


def _row_blocks(p: int, width: int, budget: int) -> list[slice]:
    """Blocks of tokens a whose p x width slice of a [p^2, width] tensor holds at most `budget`
    elements (at least one token a per block)."""
    rows = max(1, budget // (p * max(width, 1)))
    return [slice(a0, min(p, a0 + rows)) for a0 in range(0, p, rows)]


def _input_blocks(idx: Tensor, p: int, n: int) -> list[Tensor]:
    """The inputs idx in blocks of LOWRANK_BLOCK values of their activations or logits each
    (the steps on the inputs left: their [inputs, n] and [inputs, p] tensors stay small)."""
    return list(idx.split(max(1, LOWRANK_BLOCK // max(n, p))))


def _brute(ex: _Exact, ops: bd.Ops) -> Tensor:
    """Every logit of every input, in blocks of tokens a (the FLOPs are the same)."""
    c = ex.c
    p, n = c.cfg.p, c.U.shape[1]
    y = labels(p).view(p, p)
    out = []
    blocks = _row_blocks(p, n, BRUTE_BLOCK)
    buf = torch.empty((blocks[0].stop - blocks[0].start) * p * n, dtype=c.U.dtype)
    for blk in blocks:
        L = _grid_activations(c, blk, buf) @ c.O
        L += (c.D_a[blk, None, :] + c.D_b[None, :, :]).reshape(-1, p) + c.logit_bias
        out.append(margins(L, y[blk].reshape(-1)))
    ops.add(3 * p * p * n + 2 * p**3 * n + 3 * p**3 + 2 * p**3)
    return torch.cat(out)


def _brute_leftovers(ex: _Exact, m: Tensor, ops: bd.Ops) -> Tensor:
    """m with every input whose bound is <= 0 replaced by its exact margin (minus the rounding
    allowance), each computed from the circuit alone, in blocks of inputs (LOWRANK_BLOCK
    activations each: a strategy that leaves most of a large model's inputs would otherwise
    form [inputs, d_mlp] tensors of many gigabytes)."""
    c = ex.c
    p, n = c.cfg.p, c.U.shape[1]
    idx = torch.nonzero(m <= 0).flatten()
    y = labels(p)
    out = m.clone()
    for sel in _input_blocks(idx, p, n):
        a, b = sel // p, sel % p
        h = c.U[a]
        h += c.V[b]
        h += c.b_in
        L = h.relu_() @ c.O
        L += c.D_a[a]
        L += c.D_b[b]
        L += c.logit_bias
        out[sel] = margins(L, y[sel]) - ex.slack
    ops.add(len(idx) * _exact_input_flops(p, n))
    return out


def _wave_frequencies(f: bd.Fits, ops: bd.Ops) -> list[int]:
    """The output frequencies the low-rank strategies take as exact waves: the key clusters'
    (the lens' frequencies with >= 5% of the weight) and any other that carries at least
    OUTPUT_SHARE of sum_i H_i |O_i's coefficient| (a small cluster's output, or cross-talk),
    which the remainder would otherwise carry. Any choice is sound; this one is for the bound."""
    half = (f.p - 1) // 2
    load = (f.XO[1 : half + 1].abs() * f.H).sum(1)  # [half]
    ops.add(3 * half * len(f.H))
    total = float(load.sum()) or 1.0
    extra = {int(k) + 1 for k in torch.nonzero(load / total >= OUTPUT_SHARE).flatten()}
    return sorted(set(bd.key_clusters(f)) | extra)


def _waves(c: Circuit, f: bd.Fits, freqs: Tensor, sparse: bool, ops: bd.Ops
           ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """Complex output waves z [n, F] at frequencies `freqs` (each neuron: all of them, or with
    `sparse` only its WAVES_PER_NEURON largest), their basis [F, p] and the rows' remainder
    r [n, p] after the mean and the waves."""
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
    ops.add(n * p * (4 * len(freqs) + 2))
    return z, basis, r


@dataclass
class _Remainder:
    """What the remainder bound (`_remainder_bound`) needs of the rows' remainder r [n, p]:
    input-free, O(n p^2) to build."""

    Q: Tensor  # [n, k] neuron-space directions taken exactly (top singular vectors; any work)
    W: Tensor  # [k, p] Q^T r
    mean: Tensor  # [p] mean over the neurons of r - Q W
    D: Tensor  # [p, p] || e_s - e_c ||_2 over the neurons, e = r - Q W - mean (centred)
    R: float  # max_c || (|r| + |Q| |W|)[:, c] ||_2 (scales the rounding allowance)
    gamma: float  # gamma_N for the longest sum the bound forms


def _directions(r: Tensor, ops: bd.Ops) -> Tensor:
    """The neuron-space directions along which r (centred over the neurons) varies most, in
    order: its left singular vectors, from the eigenvectors of its p x p Gram matrix
    [n, min(n, p)] (scaled by 1 / sigma; zero where sigma is)."""
    n, p = r.shape
    rc = r - r.mean(0)
    vals, vecs = torch.linalg.eigh(rc.T @ rc)
    vals, vecs = vals.flip(0).clamp_min(0), vecs.flip(1)
    keep = vals > vals[0] * 1e-24 if len(vals) else vals > 0
    Q = (rc @ vecs[:, keep]) / vals[keep].sqrt()
    ops.add(2 * n * p * p + 2 * n * p + 10 * p**3 + 2 * n * p * int(keep.sum()))
    return Q[:, : min(n, p)]


def _remainder(r: Tensor, Q: Tensor, ops: bd.Ops) -> _Remainder:
    n, p = r.shape
    k = Q.shape[1]
    W = Q.T @ r
    e = r - Q @ W
    mean = e.mean(0)
    e = e - mean
    N = n + 2 * k + 16
    gamma = N * U_ROUND / (1 - N * U_ROUND)
    # ||e_s - e_c||^2 = G_ss + G_cc - 2 G_sc from the Gram matrix (one product), each entry
    # within gamma_n (G_ss + G_cc) of its exact value: that much is added before the root
    G = e.T @ e
    g = G.diagonal()
    D = ((g[:, None] + g[None, :] - 2 * G).clamp_min(0) + 2 * gamma * (g[:, None] + g[None, :]))
    R = float((r.abs() + Q.abs() @ W.abs()).norm(dim=0).max())
    ops.add(4 * n * k * p + 3 * n * p + 2 * n * p * p + 8 * p * p + 2 * n * k * p
            + 4 * n * p)  # fmt: skip
    return _Remainder(Q, W, mean, D.sqrt(), R, gamma)


def _remainder_bound(total: Tensor, spread: Tensor, AQ: Tensor, s: Tensor, rem: _Remainder,
                     rng: Tensor, ops: bd.Ops) -> Tensor:  # fmt: skip
    """Lower bounds lb [m, p] on sum_i A_i (r_i(s) - r_i(c)), what the remainder adds to the
    margin against c, for m inputs with activations A_i >= 0 (n neurons) and answers s [m],
    given per input total = sum_i A_i, spread = ||A - mean A||_2 and AQ = A Q [m, k]: the
    better of

    - the rows' ranges: >= -sum_i A_i rho_i = -rng (c-free, given);
    - the directions Q exactly and Cauchy-Schwarz for the rest: with r = Q W + mean + e
      (e centred over the neurons) the sum is (A Q)(W_s - W_c) + total (mean_s - mean_c)
      + sum_i (A_i - mean A)(e_i(s) - e_i(c)), and the last term is at least
      -spread D[s, c].

    Both are identities plus one inequality, for any Q. The second one's own floating-point
    error is subtracted: with ||A||_2 <= spread + total / sqrt(n), ||e_c|| <= 2 R and
    D <= 4 R, the products A Q W (2 gamma ||A|| R), the mean term (6 gamma ||A|| R), e computed
    from r (4 gamma ||A|| R through D), spread computed from A (16 gamma ||A|| R) and the
    final sums (5 gamma ||A|| R) add up to 33 gamma_N ||A||_2 R; 64 gamma_N ||A||_2 R is
    taken. The first is covered by the certificate's allowance as before."""
    m, k = AQ.shape
    p, n = rem.D.shape[0], rem.Q.shape[0]
    # (in place, [m, p] at a time: the same operations as total (mean_s - mean_c) + (E_s - E_c)
    # - (spread D[s]) (1 + 4 gamma) - 64 gamma R ||A||, up to the sign of a zero)
    cs = rem.mean[s][:, None] - rem.mean[None, :]
    cs.mul_(total[:, None])
    if k:
        E = AQ @ rem.W  # [m, p]
        cs.sub_(E.sub_(E.gather(1, s[:, None])))  # + (E_s - E_c)
    cut = rem.D[s]
    cs.sub_(cut.mul_(spread[:, None]).mul_(1 + 4 * rem.gamma))
    norm = spread + total / math.sqrt(n)
    cs.sub_((64 * rem.gamma * rem.R * norm)[:, None])
    ops.add(3 * m * p + 2 * m * k * p + 2 * m * p + 3 * m * p + 4 * m + m * p)
    return torch.maximum(cs, -rng[:, None], out=cs)


def _bounded_margins(L: Tensor, s: Tensor, lb: Tensor, ops: bd.Ops) -> Tensor:
    """min over c != s of L_s - L_c + lb_c, per input (L: the exact low-rank logits [m, p])."""
    d = torch.sub(L.gather(1, s[:, None]), L).add_(lb)
    ops.add(3 * d.numel())
    return d.scatter_(1, s[:, None], math.inf).min(1).values


@dataclass
class _Left:
    """Inputs not yet certified, with what the later steps need of each."""

    idx: Tensor  # [m] which inputs (a p + b), in pair order
    m: Tensor  # [m] their margin bounds so far
    rng: Tensor  # [m] sum_i A_i rho_i (the rows' ranges)
    L: Tensor | None  # [m, p] their exact low-rank logits (where a later step needs them)
    A: Tensor | None  # [m, n] their activations (where a later step needs them)
    total: Tensor | None = None  # [m] sum_i A_i (once a Cauchy-Schwarz step has run)
    spread: Tensor | None = None  # [m] ||A - mean A||_2

    def __getitem__(self, sel: Tensor) -> _Left:
        def pick(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[sel]

        return _Left(self.idx[sel], self.m[sel], self.rng[sel], pick(self.L), pick(self.A),
                     pick(self.total), pick(self.spread))  # fmt: skip


def _cat(parts: list[_Left], p: int, n: int) -> _Left:
    if not parts:
        e = torch.zeros(0, dtype=torch.float64)
        return _Left(torch.zeros(0, dtype=torch.long), e, e, e.new_zeros(0, p), e.new_zeros(0, n))
    fields = ("idx", "m", "rng", "L", "A", "total", "spread")
    cols = {k: [getattr(x, k) for x in parts] for k in fields}
    return _Left(**{k: None if v[0] is None else torch.cat(v) for k, v in cols.items()})


class _Rows:
    """Rows appended block by block into one buffer that doubles when full: the rows kept from
    each block of a pass are not scattered through the heap between the pass's large
    temporaries (which fragments it: up to ~20 GB at p = 1009)."""

    def __init__(self, width: int, dtype: torch.dtype) -> None:
        self.buf, self.n = torch.empty(0, width, dtype=dtype), 0

    def add(self, x: Tensor) -> None:
        need = self.n + len(x)
        if need > len(self.buf):
            grown = self.buf.new_empty(max(need, 2 * len(self.buf), 1024), self.buf.shape[1])
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n : need] = x
        self.n = need

    def rows(self) -> Tensor:
        return self.buf[: self.n]


class _CauchySchwarz:
    """The centred Cauchy-Schwarz step with no directions (`_remainder_bound`), applied to the
    inputs the rows' ranges leave as the pass over the inputs produces them. With `frugal` it
    waits until running the inputs left so far exactly would cost more than the step (the
    cascade's cost test, with the same counts: the leftovers it holds meanwhile are few, about
    p); `enabled` False keeps every leftover as it is. The bounds it proves go into `m` [p^2]
    (every input's bound), where they improve on it."""

    def __init__(self, ex: _Exact, r: Tensor, m: Tensor, frugal: bool, keep_A: bool,
                 ops: bd.Ops, enabled: bool = True) -> None:  # fmt: skip
        self.ex, self.r, self.ops, self.keep_A, self.enabled = ex, r, ops, keep_A, enabled
        self.bounds, self.s = m, labels(ex.c.cfg.p)
        p, n = ex.c.cfg.p, r.shape[0]
        self.fixed, self.each = 2 * n * p * p + 12 * n * p, 5 * n + 14 * p
        self.per_input = _exact_input_flops(p, n)
        self.frugal, self.seen = frugal, 0
        self.rem: _Remainder | None = None
        self.waiting: list[_Left] = []
        self.out: list[_Left] = []
        dtype = ex.c.U.dtype
        self.kept_A, self.kept_L = _Rows(n, dtype), _Rows(p, dtype)  # with keep_A, in out's order

    def add(self, part: _Left) -> None:
        self.seen += len(part.idx)
        if self.rem is None and self.enabled and not (
                self.frugal and self.fixed + self.seen * self.each >= self.seen * self.per_input):
            self.rem = _remainder(self.r, self.r.new_zeros(self.r.shape[0], 0), self.ops)
            for w in self.waiting:
                self._step(w)
            self.waiting = []
        if self.rem is None:  # its A and L may be views of the pass's buffers
            assert part.A is not None and part.L is not None
            part.A, part.L = part.A.clone(), part.L.clone()
            self.waiting.append(part)
        else:
            self._step(part)

    def _step(self, x: _Left) -> None:
        assert x.A is not None and self.rem is not None
        m, n = x.A.shape
        x.total = x.A.sum(1)
        x.spread = (x.A - x.total[:, None] / n).norm(dim=1)
        self.ops.add(5 * m * n)
        s = self.s[x.idx]
        lb = _remainder_bound(x.total, x.spread, x.A.new_zeros(m, 0), s, self.rem, x.rng,
                              self.ops)  # fmt: skip
        x.m = torch.maximum(x.m, _bounded_margins(x.L, s, lb, self.ops))
        self.bounds[x.idx] = x.m
        x = x[x.m <= self.ex.slack]
        assert x.A is not None and x.L is not None
        if self.keep_A and (self.kept_A.n + len(x.idx)) * x.A.shape[1] > ADAPTIVE_KEEP:
            self.keep_A = False  # too many left for the directions: only the bounds from here
            self.kept_A, self.kept_L = _Rows(0, x.A.dtype), _Rows(0, x.A.dtype)
        if self.keep_A:
            self.kept_A.add(x.A)
            self.kept_L.add(x.L)
        x.A = x.L = None
        self.out.append(x)

    def left(self) -> tuple[_Left, bool]:
        """The inputs still left, and whether the step ran."""
        p, n = self.ex.c.cfg.p, self.r.shape[0]
        if self.rem is None:
            return _cat(self.waiting, p, n), False
        x = _cat(self.out, p, n)
        if self.keep_A:
            x.A, x.L = self.kept_A.rows(), self.kept_L.rows()
        return x, True


def _lowrank_pass(ex: _Exact, z: Tensor, basis: Tensor, r: Tensor, sparse: bool, m: Tensor,
                  cs: _CauchySchwarz, ops: bd.Ops) -> None:  # fmt: skip
    """For every input, the exact low-rank logits L = Re(A z basis) + direct path and the rows'
    ranges rng = A rho, hence the margin bounds margins(L) - rng, into m [p^2]; the inputs
    those leave (bound <= slack) go on to `cs` with their activations and L. In blocks of
    tokens a of LOWRANK_BLOCK activations each, through reused buffers (cache-sized: the
    activations are written once and read by one product with [Re z, Im z, rho]), so no
    [p^2, n] or [p^2, p] tensor is formed. The FLOPs are the operations' (with `sparse` the
    zero entries of z are not counted: multiplying by them is not needed)."""
    c = ex.c
    p, n, F = c.cfg.p, c.U.shape[1], z.shape[1]
    s = labels(p)
    rho = r.max(1).values - r.min(1).values
    Wz = torch.cat([z.real.T, z.imag.T, rho[None, :]])  # [2 F + 1, n]
    B = torch.cat([basis.real, -basis.imag])  # [2 F, p]: Re(Z basis) = [Re Z, Im Z] B
    blocks = _row_blocks(p, n, LOWRANK_BLOCK)
    rows = (blocks[0].stop - blocks[0].start) * p
    buf = torch.empty(rows * n, dtype=c.U.dtype)
    zbuf = torch.empty(2 * F + 1, rows, dtype=c.U.dtype)
    lbuf = torch.empty(rows, p, dtype=c.U.dtype)
    for blk in blocks:
        t = slice(blk.start * p, blk.stop * p)
        A = _grid_activations(c, blk, buf)
        # [Re Z, Im Z, rng] of the block, as (Wz A^T)^T: on the CPU this orientation of the
        # skinny product runs ~1.6x faster
        out = torch.mm(Wz, A.T, out=zbuf[:, : len(A)]).T
        L = torch.mm(out[:, : 2 * F], B, out=lbuf[: len(A)])
        L.view(-1, p, p).add_(c.D_a[blk, None, :]).add_(c.D_b[None, :, :] + c.logit_bias)
        rng = out[:, 2 * F]
        m[t] = margins(L, s[t]) - rng
        left = torch.nonzero(m[t] <= ex.slack).flatten()
        if len(left) == len(A):  # every input of the block: its buffers as they are
            cs.add(_Left(left + t.start, m[t].clone(), rng.clone(), L, A))
        elif len(left):
            cs.add(_Left(left + t.start, m[t][left], rng[left], L[left], A[left]))
    waves = min(F, WAVES_PER_NEURON) if sparse else F
    ops.add(3 * p * p * n + 4 * p * p * n * waves + 4 * p**3 * F + 3 * p**3)  # A, Z, L
    ops.add(2 * n * p + 2 * p * p * n + 3 * p**3)  # rho, rng, the margins


def _directions_steps(ex: _Exact, x: _Left, r: Tensor, ops: bd.Ops) -> _Left:
    """`adaptive`'s steps after the Cauchy-Schwarz one: 2, 4, 8, ... (at most
    ADAPTIVE_DIRECTIONS) of the remainder's leading neuron-space directions taken in exactly,
    each on the inputs still left, while a step is cheaper than running those inputs exactly
    and the last one certified some. The A Q columns already formed are kept."""
    p = ex.c.cfg.p
    n = r.shape[0]
    assert x.A is not None and x.L is not None and x.total is not None and x.spread is not None
    s = labels(p)[x.idx]
    per_input = _exact_input_flops(p, n)
    most = min(ADAPTIVE_DIRECTIONS, n, p)
    Q = AQ = None
    done = 0  # directions whose A Q columns are formed (for every input still left)
    for k in [2**j for j in range(1, most.bit_length()) if 2**j <= most]:
        idx = torch.nonzero(x.m <= ex.slack).flatten()
        left = len(idx)
        fixed = 2 * n * p * p + 6 * n * k * p + 12 * n * p + (
            2 * n * p * p + 10 * p**3 + 2 * n * p * p if Q is None else 0)  # fmt: skip
        each = 2 * n * (k - done) + 2 * k * p + 14 * p
        if left == 0 or fixed + left * each >= left * per_input:
            break
        if Q is None:
            Q = _directions(r, ops)
            AQ = x.A.new_zeros(len(x.m), Q.shape[1])
        assert AQ is not None
        rem = _remainder(r, Q[:, :k], ops)
        certified = False
        for ci in _input_blocks(idx, p, n):
            AQ[ci, done:k] = x.A[ci] @ Q[:, done:k]
            lb = _remainder_bound(x.total[ci], x.spread[ci], AQ[ci, :k], s[ci], rem, x.rng[ci],
                                  ops)  # fmt: skip
            new = _bounded_margins(x.L[ci], s[ci], lb, ops)
            x.m[ci] = torch.maximum(x.m[ci], new)
            certified = certified or bool((new > ex.slack).any())
        ops.add(2 * left * n * (k - done))
        done = k
        if not certified:
            break  # a step that certifies nothing ends it
    return x


def _lowrank(ex: _Exact, sparse: bool, ops: bd.Ops, directions: bool = False,
             frugal: bool = False, cauchy_schwarz: bool = True) -> Tensor:  # fmt: skip
    """Margin bounds for every input, each taking the cheapest of these steps that certifies it:
    the rows' ranges (every input); then, for the inputs left, the centred Cauchy-Schwarz bound
    with no directions (`_CauchySchwarz`; with `frugal`, where the inputs left are run exactly
    afterwards, only where that is cheaper than running them); with `directions`, after it,
    `_directions_steps`. Every step is a proved bound, so each input keeps the best it got."""
    c = ex.c
    f = bd.fit(c, ops)
    freqs = torch.tensor(_wave_frequencies(f, ops), dtype=torch.float64)
    z, basis, r = _waves(c, f, freqs, sparse, ops)
    p = c.cfg.p
    m = torch.empty(p * p, dtype=c.U.dtype)
    cs = _CauchySchwarz(ex, r, m, frugal, directions, ops, cauchy_schwarz)
    _lowrank_pass(ex, z, basis, r, sparse, m, cs, ops)
    x, ran = cs.left()
    if directions and ran and cs.keep_A and len(x.idx):
        x = _directions_steps(ex, x, r, ops)
    m[x.idx] = x.m
    return m


def theta_delta_cells(p: int, k: int, grid: int) -> tuple[Tensor, Tensor, Tensor]:
    """For every input (a, b) in pair order, in the angles of frequency k (w = 2 pi k / p; a
    cluster's base frequency, `bound.input_waves`): the index t of theta = pi t / p, the delta
    interval j the bounds tabulate it in and how far into it delta lies (lam in [0, 1)), with
    w a = theta + delta, w b = theta - delta (mod 2 pi) and delta folded into [0, pi)."""
    a, b = all_pairs(p)
    d = k * (a - b)
    q = torch.div(d, p, rounding_mode="floor")  # delta = pi (d - q p) / p in [0, pi)
    t = torch.remainder(k * (a + b) + q * p, 2 * p)
    r = (d - q * p) * grid  # delta / (pi / grid) = r / p, exactly
    j = r // p
    return t, j, (r - j * p).double() / p


@dataclass
class _Cells:
    """One key cluster's compact-bound tables and where every input falls in them."""

    k: int
    C: float
    tables: list[Any]  # QuadratureCells, then the U and V first-order tables
    t: Tensor  # [p^2] theta index, delta interval and position in it (theta_delta_cells)
    j: Tensor
    lam: Tensor
    folded: Tensor  # [waves] each output wave's frequency folded into 1..p/2
    conj: Tensor  # [waves] whether it was folded (the wave is the conjugate one)


def _quadrature(ex: _Exact, ops: bd.Ops, grid: int, interpolate: bool = False,
                harmonics: int = bd.DEFAULT_HARMONICS,
                extra_outputs: int = bd.DEFAULT_EXTRA_OUTPUTS,
                extra_inputs: int = bd.DEFAULT_EXTRA_INPUTS) -> Tensor:  # fmt: skip
    c = ex.c
    p = c.cfg.p
    f = bd.fit(c, ops)
    keys = bd.key_clusters(f)
    live = f.live
    nl = int(live.sum())
    # the x/2 half, exact and separable, plus the direct path
    half = (f.u[:, live] @ c.O[live]) / 2, (f.v[:, live] @ c.O[live]) / 2
    bias_half = (f.beta[live] @ c.O[live]) / 2  # the bias's share of the x/2 half, per c
    ops.add(2 * 2 * p * p * nl + 2 * p * nl + 4 * p**3)
    # Everything else depends on the input through (a, b) and on the competitor c through
    # waves of c: the closed forms C_k |cos(w (a - b) / 2)| cos(2 pi k e / p) and each output
    # wave's charge 2 |z_j| |sin(pi f_j e / p)|, functions of the offset e = (s - c) mod p
    # (s = (a + b) mod p), with |z_j| bounded at the input's own theta, delta and tokens; with
    # `interpolate`, each wave's chord Re(chord_j exp(2 pi i f_j c / p)). Waves of one frequency
    # (folded into 1..p/2; a wave at p - f is the conjugate one at f) are summed over the
    # clusters first, so each product runs over the frequencies present, not over every wave.
    # The output remainders (of the key clusters' rows after their waves, and the non-key
    # neurons' whole rows) lie in [-lower_s(c), raise_c(c)]: against c the margin loses at most
    # lower_s(s) + raise_c(c); the rounding terms are c-free (twice each).
    raise_c = torch.zeros(p, dtype=torch.float64)
    lower_s = torch.zeros(p, dtype=torch.float64)
    rounding_total = 0.0
    clusters = []
    for k in keys:
        cl = bd._cluster(f, k, harmonics, extra_outputs, ops, extra_inputs)
        tables: list[Any] = []
        bd._quadrature(cl, p, grid, ops, tables)  # QuadratureCells, per theta = pi t / p
        bd._first_order(cl, p, grid, "U", ops, tables)  # [p, grid, waves], per token a
        bd._first_order(cl, p, grid, "V", ops, tables)  # per token b
        rounding_total += bd.rounding_term(cl, p, ops)
        rp, rn = bd.output_remainder(cl, p, ops)  # its output remainder, in [-rn(c), rp(c)]
        raise_c, lower_s = raise_c + rp, lower_s + rn
        fm = cl.fo.long() % p
        conj = fm > p // 2
        clusters.append(_Cells(k, cl.C, tables, *theta_delta_cells(p, cl.base, grid),
                               torch.where(conj, p - fm, fm), conj))  # fmt: skip
        ops.add(14 * p * p + (16 if interpolate else 11) * p * p * len(cl.fo) + 4 * p * p)
    nk = live & ~torch.isin(f.freq, torch.tensor(keys, dtype=torch.long))
    o, Hh = f.o[nk], f.H[nk, None] / 2  # the non-key neurons' |x|/2 half, o centred
    raise_c = raise_c + (Hh * o.clamp_min(0)).sum(0)
    lower_s = lower_s + (Hh * (-o).clamp_min(0)).sum(0)
    ops.add(6 * p * int(nk.sum()) + 4 * p)
    # the frequencies that carry a charge, and the closed forms' (quadrature only)
    used = sorted({int(q) for cells in clusters for q in cells.folded})
    column = {q: i for i, q in enumerate(used)}
    cols = [torch.tensor([column[int(q)] for q in cells.folded]) for cells in clusters]
    closed = [] if interpolate else [cells for cells in clusters if cells.C != 0]
    x = torch.arange(p, dtype=torch.float64)
    fu = torch.tensor(used, dtype=torch.float64)[:, None]
    fk = torch.tensor([cells.k for cells in closed], dtype=torch.float64)[:, None]
    by_offset = torch.cat([2 * torch.sin(math.pi * fu * x / p).abs(),
                           torch.cos(2 * math.pi * fk * x / p)])  # [used + closed, p]
    waves = torch.cat([torch.cos(2 * math.pi * fu * x / p), -torch.sin(2 * math.pi * fu * x / p)])
    ops.add(2 * p**3 * (len(used) + len(closed)) + 2 * p**3 + 2 * p * p * (p // 2 + 1))
    if interpolate:  # the chords' logits: sum_f Re(chord_f exp(2 pi i f c / p))
        ops.add(4 * p**3 * len(used) + 2 * p**3)
    ops.add(3 * p**3 + p**3 + 3 * p * p)
    # One pass over blocks of tokens a, each [inputs, p] through reused buffers. Competitors
    # are raised by their charges (0 at c = s, where sin 0 = 0) and by raise_c; the correct
    # logit gets raise_c too, so it is taken off again with lower_s (a term added to every
    # logit, the correct one included, would cancel).
    s_all = labels(p)
    take = (raise_c + lower_s)[s_all] + 2 * rounding_total
    blocks = _row_blocks(p, p, QUAD_BLOCK)
    rows0 = (blocks[0].stop - blocks[0].start) * p
    L_buf, B_buf, G_buf = (torch.empty(rows0 * p, dtype=torch.float64) for _ in range(3))
    e_buf = torch.empty(rows0 * p, dtype=torch.long)
    a_all, b_all = all_pairs(p)
    xl = torch.arange(p)
    out = []
    for blk in blocks:
        na = blk.stop - blk.start
        rows = slice(blk.start * p, blk.stop * p)
        r = na * p
        a_, b_, s = a_all[rows], b_all[rows], s_all[rows]
        L = torch.add(half[0][blk, None, :], half[1][None], out=L_buf[: r * p].view(na, p, p))
        L += c.D_a[blk, None, :]
        L += c.D_b[None]
        L = L.view(r, p)
        L += bias_half + c.logit_bias + raise_c
        W = torch.zeros(r, len(used) + len(closed), dtype=torch.float64)
        chords = torch.zeros(r, 2 * len(used), dtype=torch.float64) if interpolate else None
        for cells, col in zip(clusters, cols, strict=True):
            t, j, lam = cells.t[rows], cells.j[rows], cells.lam[rows]
            bound = cells.tables[1][a_, j] + cells.tables[2][b_, j]  # the input remainders
            if interpolate:  # each wave's chord between the grid points, exactly
                chord, off = cells.tables[0].chord(t, j, lam)
                bound += off
                chords.index_add_(1, col, chord.real)
                chords.index_add_(1, col + len(used),
                                  torch.where(cells.conj, -chord.imag, chord.imag))
            else:  # the closed form, exactly; charge each wave's deviation from it
                bound += cells.tables[0].at(t, j, lam)
            W.index_add_(1, col, bound)
        if closed:
            d = (a_ - b_).double()
        for i, cells in enumerate(closed):
            W[:, len(used) + i] = cells.C * torch.cos(math.pi * cells.k * d / p).abs()
        B = torch.mm(W, by_offset, out=B_buf[: r * p].view(r, p))
        e = torch.sub(s[:, None], xl[None], out=e_buf[: r * p].view(r, p)).remainder_(p)
        L += torch.gather(B, 1, e, out=G_buf[: r * p].view(r, p))  # 0 at c = s
        if interpolate:
            L.addmm_(chords, waves)
        out.append(margins(L, s) - take[rows])
    return torch.cat(out)


PROVES = {
    "brute": "exact margins of every input (up to the rounding allowance)",
    "subcubic": "margin >= low-rank margin (the output waves at the key frequencies and any "
    f"other with >= {OUTPUT_SHARE:.0%} of the output load) + a lower bound on the remainder's "
    "share (its rows' ranges, or centred Cauchy-Schwarz per competitor), per input",
    "cluster": "as subcubic with each neuron's 2 strongest waves only",
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
PROVES["adaptive"] = ("as cluster, then the remainder's leading neuron-space directions taken "
                      "in exactly while cheaper than running the inputs left, and the exact "
                      "margin of every input left")


def _check_options(strategies: list[str], grid: int, harmonics: int, extra_outputs: int,
                   extra_inputs: int = bd.DEFAULT_EXTRA_INPUTS) -> None:  # fmt: skip
    """A QuadlensError for an unknown strategy or a bad compact-bound option."""
    for strategy in strategies:
        if strategy not in STRATEGIES:
            raise QuadlensError(
                f"unknown strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}"
            )
    bd.check_options(grid, harmonics, extra_outputs, extra_inputs)


def _check_request(model: Model, strategies: list[str], grid: int, harmonics: int,
                   extra_outputs: int, extra_inputs: int = bd.DEFAULT_EXTRA_INPUTS
                   ) -> None:  # fmt: skip
    """A QuadlensError saying why these strategies cannot certify this model, before any work."""
    _check_options(strategies, grid, harmonics, extra_outputs, extra_inputs)
    reason = unfit_reason(model.cfg, strategies)
    if reason:
        raise QuadlensError(reason)


def certify(model: Model, strategy: str = "subcubic", check: bool = False,
            grid: int = bd.DEFAULT_GRID, harmonics: int = bd.DEFAULT_HARMONICS,
            extra_outputs: int = bd.DEFAULT_EXTRA_OUTPUTS, truth: Tensor | None = None,
            extra_inputs: int = bd.DEFAULT_EXTRA_INPUTS) -> Certificate:  # fmt: skip
    """Certify `model` with `strategy` (module doc); with check, add the truth beside it.
    `grid`, `harmonics`, `extra_outputs` and `extra_inputs` are the compact bounds' options
    (`quadlens bound`), used by the quadrature and interpolation strategies (and recorded in
    their certificates' `options`). `truth` (with check): the model's
    `true_margins`, computed once by a caller that checks several strategies."""
    model = checked_model(model, "certificate")
    _check_request(model, [strategy], grid, harmonics, extra_outputs, extra_inputs)
    p = model.cfg.p
    if check and truth is not None and tuple(truth.shape) != (p * p,):
        raise QuadlensError(f"truth must hold the p^2 = {p * p} true margins (true_margins(model))"
                            f", got shape {tuple(truth.shape)}")  # fmt: skip
    tune_allocator()  # freed multi-megabyte blocks are reused, not faulted in again (~20-30%)
    p, n = model.cfg.p, model.cfg.d_mlp
    base, _, fallback = strategy.partition("+")
    ops = bd.Ops()
    t0 = time.perf_counter()
    with torch.no_grad():
        ex = _exact(model, ops)
        if base == "brute":
            m = _brute(ex, ops)
        elif base in ("quadrature", "interpolation"):
            m = _quadrature(ex, ops, grid, base == "interpolation", harmonics, extra_outputs,
                            extra_inputs)  # fmt: skip
        else:
            grow = base == "adaptive"
            m = _lowrank(ex, base in ("cluster", "adaptive"), ops, grow, grow or bool(fallback))
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
        options=(bd.compact_options(grid, harmonics, extra_outputs, extra_inputs)
                 if base in ("quadrature", "interpolation") else None),
    )  # fmt: skip
    if check:
        truth = true_margins(model) if truth is None else truth
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
    """The margins of the model's own forward in float64 on every input (an independent
    path: no circuit view)."""
    m64 = copy.deepcopy(model).double().cpu()
    p = model.cfg.p
    a, b, y = (*all_pairs(p), labels(p))
    n = max(model.cfg.d_mlp, m64.W_in.shape[0])
    rows = [slice(blk.start * p, blk.stop * p) for blk in _row_blocks(p, n, BRUTE_BLOCK)]
    return torch.cat([margins(m64(a[r], b[r]), y[r]) for r in rows])


def certify_all(model: Model, strategies: list[str], check: bool = False,
                progress: bool = False, **options: int) -> list[Certificate]:  # fmt: skip
    """`certify` with each strategy, the truth (with check) computed once for all of them;
    `options`: grid, harmonics, extra_outputs, extra_inputs. With `progress`, a bar on stderr for
    work that takes more than a few seconds (large p: the truth alone takes minutes at p = 1009)."""
    from tqdm.auto import tqdm

    _check_request(model, strategies, **bd.compact_options(**options))
    bar = tqdm(total=len(strategies) + check, disable=not progress, delay=PROGRESS_DELAY,
               unit="step", desc=f"certify p={model.cfg.p}", dynamic_ncols=True)  # fmt: skip
    truth = None
    if check:
        bar.set_postfix_str("truth (the float64 forward)")
        truth = true_margins(model)
        bar.update()
    certs = []
    for s in strategies:
        bar.set_postfix_str(s)
        certs.append(certify(model, s, check=check, truth=truth, **options))
        bar.update()
    bar.close()
    return certs


def certify_member(zoo: str, run: str, strategies: list[str], check: bool,
                   options: dict[str, int]) -> list[dict[str, Any]]:  # fmt: skip
    """All strategies on one zoo member (runs in a worker process)."""
    from pathlib import Path

    from quadlens import rundir

    torch.set_num_threads(1)
    _, model = rundir.load_run(Path(zoo) / run)
    return [c.to_dict() for c in certify_all(model, strategies, check, **options)]


def certify_zoo(zoo: Any, strategies: list[str], check: bool = False, grid: int = bd.DEFAULT_GRID,
                workers: int | None = None, progress: bool = True,
                harmonics: int = bd.DEFAULT_HARMONICS,
                extra_outputs: int = bd.DEFAULT_EXTRA_OUTPUTS,
                extra_inputs: int = bd.DEFAULT_EXTRA_INPUTS) -> dict[str, Any]:  # fmt: skip
    """Every finished member of a zoo under every strategy, with the aggregate table."""
    import os
    import statistics
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    from quadlens import rundir
    from quadlens.zoo import check_readable, read_manifest

    _check_options(strategies, grid, harmonics, extra_outputs, extra_inputs)
    options = bd.compact_options(grid, harmonics, extra_outputs, extra_inputs)
    manifest = read_manifest(zoo)
    finished = [m for m in manifest["members"] if (zoo / m["run"] / rundir.WEIGHTS).is_file()]
    check_readable(zoo, finished)
    members, skipped = [], []  # a sweep may hold members these certificates do not fit
    for m in finished:
        reason = unfit_reason(rundir.read_config(zoo / m["run"]).model, strategies)
        if reason:
            skipped.append({"name": m["name"], "reason": reason})
        else:
            members.append(m)
    if finished and not members:
        raise QuadlensError(f"{zoo}: the certificates fit none of its members "
                            f"({skipped[0]['name']}: {skipped[0]['reason']})")  # fmt: skip
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
            "per_model": per_model, "skipped": skipped}  # fmt: skip
