"""Compact bounds on the MLP's quadrature, checked against brute force (science.md §3, §5).

**What is bounded.** Take a constant-attention (or MLP-only) ReLU circuit (U, V, b_in, O) and a
cluster K: the live neurons whose primary input frequency is k (w = 2 pi k / p). With u_i, v_i the
token-centred columns of U and V, beta_i = b_in[i] + mean U[:, i] + mean V[:, i] (so that
h_i(a, b) = u_i(a) + v_i(b) + beta_i is exactly neuron i's pre-activation) and o_i(c) = O[i, c]
minus its mean over c (logits are only defined up to a constant per input), the cluster's
contribution through the |x|/2 half of ReLU(x) = x/2 + |x|/2 is

    T_K(a, b, c) = sum_{i in K} |h_i(a, b)| / 2 * o_i(c)

and its closed form (the infinite-width limit) is P_K(a, b, c) = C_K |cos(w (a - b) / 2)|
cos(w (a + b - c)), with C_K = sum_i 2 A_i B_i / (3 pi) as in the lens. The **actual** error is
max over all p^3 triples (a, b, c) of |T_K - P_K| / C_K, found by brute force; the **bound** is a
number proved to be >= it for these weights, computed in O(M p |K|) operations with a grid of M
points (M = 32 by default) and no enumeration of pairs or triples.

**The structured neuron.** Each input column is split exactly into its components at the
primary frequency k and the doubled ("secondary") frequency 2k, plus the remainder:

    u_i(a) = A_U cos(w a + phi_U) + A2_U cos(2 w a + chi_U) + e_U(a)       (v_i likewise)

With theta = w (a + b) / 2 and delta = w (a - b) / 2 (so w a = theta + delta, w b = theta - delta)
the structured part of the pre-activation is a smooth function of two angles:

    g_i(theta, delta) = A_U cos(theta + delta + phi_U) + A_V cos(theta - delta + phi_V)
                        + A2_U cos(2 theta + 2 delta + chi_U) + A2_V cos(2 theta - 2 delta + chi_V)
                        + beta_i,               h_i(a, b) = g_i(theta, delta) + e_U(a) + e_V(b).

(`harmonics` > 2 adds the waves at 3k, 4k, ... the same way, and `extra_inputs` chosen waves
of any order h: every line below is written for any set of orders, with h^2 in the curvature
bounds and h in the slopes. With `extra_inputs` the angles may also be those of a base
frequency g other than k, w = 2 pi g / p, of which k and the chosen waves are low orders
(`input_waves`); k then has order mk and the closed form below reads
C_K |cos(mk delta)| exp(-2 i mk theta).) It keeps the bias, the U/V mismatch and the secondary
frequency, which together set the real deviation from the closed form (the bias moves every
kink; near cos(delta) = 0 it is all that is left of the pre-activation). Writing
o_i(c) = B_i cos(w c + psi_i) + r_i(c) (the fitted output wave plus its remainder), and
F(theta, delta) = sum_i B_i / 2 exp(i psi_i) |g_i(theta, delta)|,

    T_K - P_K = Re[exp(i w c) (F - C_K |cos delta| exp(-2 i theta))]              (quadrature)
              + Re[exp(i w c) sum_i B_i / 2 exp(i psi_i) (|h_i| - |g_i|)]         (input residual)
              + sum_i |h_i| / 2 r_i(c)                                            (output residual)

and each line is bounded separately (|Re[exp(i w c) z]| <= |z|):

- **quadrature**: theta takes only the 2p values pi t / p and enters exactly; delta is covered by
  a grid of M + 1 points on [0, pi] (M even, so the kink of |cos delta| at pi / 2 is a grid point;
  for a base with mk > 1 the kinks of |cos(mk delta)| that fall inside an interval add
  2 P0 P1 / (P0 + P1) there, as a neuron's kink does below).
  At the grid points |F - P| is evaluated exactly: this includes the angle error psi_i - 2 phi_i,
  the bias and the secondary frequency, with no triangle inequality between neurons. Between two
  grid points |F - P| is at most the larger end value plus how far F and P can leave their chords:
  for a neuron whose g_i provably keeps its sign on the interval (|g_i| at the ends sums to more
  than L_i Delta, L_i = A_U + A_V + 2 (A2_U + A2_V) >= |d g_i / d delta|) that is
  K_i Delta^2 / 8 with K_i = A_U + A_V + 4 (A2_U + A2_V) >= |d^2 g_i / d delta^2|; for a neuron
  whose kink may lie inside, L_i Delta / 2; for P, C_K Delta^2 / 8. The table reports the grid
  maximum as `quadrature` and the rest as `interpolation`.
- **input residual**: ||h_i| - |g_i|| <= |e_U(a)| + |e_V(b)|, so the line is at most
  max_a sum_i B_i / 2 |e_U,i(a)| + max_b sum_i B_i / 2 |e_V,i(b)| (sum over neurons first, then
  the maximum over tokens: O(p |K|)).
- **output residual**: 0 <= |h_i| <= H_i = max_{a,b} |h_i| (exact, the max separates), so the line
  lies between sum_i H_i / 2 min(r_i(c), 0) and sum_i H_i / 2 max(r_i(c), 0); its bound is the
  larger magnitude over c.
- **rounding**: everything runs in float64. Each computed quantity is a sum of at most
  N = |K| + 2p + 64 rounded terms and each term passes through at most 32 rounded products or
  elementary functions (libm's cos / sin / exp are within 1 ulp); by the standard a-priori bound
  (Higham, *Accuracy and Stability of Numerical Algorithms*, §3-4) the error of each is at most
  (gamma_N + 32 u) S with u = 2^-53 and S a bound on the magnitudes involved
  (S = sum_i B_i / 2 (|beta_i| + A_U + A_V + A2_U + A2_V + max|e_U| + max|e_V|) + sum_i H_i / 2
  max|r_i| + 2 C_K). The bound adds 4 (gamma_N + 32 u) S. The kink test is made conservative by
  the same margin, so rounding can only call a smooth neuron kinked (looser), never the reverse.

So the bound holds over every (a, b, c) for any weights: the fits are just numbers that define g,
and every remainder is carried exactly. How tight it is depends on the model: the quadrature line
is nearly the truth for clean clusters; the input residual line (other frequencies in the
neurons) is bounded without cancellation between neurons and is where the slack is.

**Cost.** Counted flops (a multiply, add, compare, absolute value or elementary function = 1; an
FFT of length p = 5 p log2 p) are tallied by `Ops` at each step and equal the closed forms
`compact_flops` / `brute_flops` (the tests check both on small cases; the brute-force matmul also
against torch's own FLOP counter). Brute force is dominated by 2 p^3 |K| (every neuron into every
logit); the compact bound by ~40 (M + 1) 2p |K|.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from quadlens.circuit import Circuit, circuit
from quadlens.errors import QuadlensError
from quadlens.evaluate import finite_model
from quadlens.model import Model, checked_model

U_ROUND = 2.0**-53
DEFAULT_GRID = 32
MAX_GRID = 2**13  # beyond it the cost buys nothing (check_grid; docs/bounds.md, measured)
DEFAULT_HARMONICS = 6
DEFAULT_EXTRA_OUTPUTS = 4
DEFAULT_EXTRA_INPUTS = 0  # further input waves per neuron (input_waves; off: the figures in docs/)
KEY_SHARE = 0.05  # a key cluster carries >= 5% of the live neurons' weight sum 2 A B (as the lens)
_CHUNK = 1 << 22  # elements per intermediate tensor (bounds memory at any p, d_mlp)


class Ops:
    """Counts floating-point operations at each step (the instrumented side of the cost)."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, n: int) -> None:
        self.total += int(n)


def fft_flops(p: int) -> float:
    return 5 * p * math.log2(p)


@dataclass
class Fits:
    """Centred circuit, each neuron's primary frequency and the DFTs (tensors over neurons)."""

    p: int
    freq: Tensor  # primary input frequency 1..(p-1)/2
    live: Tensor  # bool: active on some input and with a non-zero output row
    A: Tensor  # primary input amplitude, (A_U + A_V) / 2
    B: Tensor  # output amplitude at the primary frequency
    beta: Tensor  # b_in + mean U + mean V
    H: Tensor  # max over (a, b) of |h_i(a, b)| (exact: the max separates)
    u: Tensor  # [p, n] U centred over tokens
    v: Tensor  # [p, n]
    o: Tensor  # [n, p] O centred over c
    XU: Tensor  # rfft of u along tokens, [p // 2 + 1, n]
    XV: Tensor
    XO: Tensor  # rfft of o along c, [p // 2 + 1, n]

    @property
    def weight(self) -> Tensor:
        return 2 * self.A * self.B


def _coef(X: Tensor, f: Tensor | int, p: int) -> Tensor:
    """(2 / p) X[f] per column from an rfft, for any f (beyond p / 2 through conjugation), so
    that the column's component at f is Re(coef exp(2 pi i f t / p))."""
    f = torch.as_tensor(f) % p
    f = f.expand(X.shape[1]) if f.dim() == 0 else f
    hi = f > p // 2
    val = X.gather(0, torch.where(hi, p - f, f)[None])[0]
    return 2 * torch.where(hi, val.conj(), val) / p


MIN_P = 5  # the smallest p the Fourier fit (and so every bound and compact certificate) takes


def fit(c: Circuit, ops: Ops | None = None) -> Fits:
    """Centre U, V, O; DFT every column; each neuron's primary frequency and amplitudes."""
    ops = ops or Ops()
    U, V, O, b = (x.detach().double().cpu() for x in (c.U, c.V, c.O, c.b_in))
    p, n = U.shape
    if p < MIN_P:
        raise QuadlensError(f"p = {p}: the bound needs p >= {MIN_P}")
    mu, mv = U.mean(0), V.mean(0)
    u, v = U - mu, V - mv
    o = O - O.mean(1, keepdim=True)
    beta = b + mu + mv
    ops.add(6 * p * n + 2 * n)  # three means, three centrings, beta
    XU, XV = torch.fft.rfft(u, dim=0), torch.fft.rfft(v, dim=0)
    XO = torch.fft.rfft(o, dim=1).T
    ops.add(3 * n * fft_flops(p))
    half = (p - 1) // 2
    power = XU[1 : half + 1].abs() ** 2 + XV[1 : half + 1].abs() ** 2
    freq = power.argmax(0) + 1
    ops.add(8 * half * n)  # two |.|^2 (3 each), add, argmax
    A = (_coef(XU, freq, p).abs() + _coef(XV, freq, p).abs()) / 2
    B = _coef(XO, freq, p).abs()
    ops.add(16 * n)
    umax, vmax = u.max(0).values, v.max(0).values
    H = torch.maximum(umax + vmax + beta, -(u.min(0).values + v.min(0).values + beta))
    live = (umax + vmax + beta > 0) & (O.abs().sum(1) > 0)
    ops.add(6 * p * n + 8 * n)
    return Fits(p, freq, live, A, B, beta, H, u, v, o, XU, XV, XO)


def key_clusters(f: Fits) -> list[int]:
    """Frequencies whose live neurons carry >= 5% of the total weight sum 2 A_i B_i (the lens'
    key frequencies)."""
    wt = torch.where(f.live, f.weight, torch.zeros_like(f.weight))
    total = float(wt.sum()) or 1.0
    per = torch.zeros(f.p, dtype=torch.float64).index_add_(0, f.freq, wt)
    return [int(k) for k in torch.nonzero(per / total >= KEY_SHARE).flatten()]


@dataclass
class ClusterBound:
    freq: int
    n_neurons: int
    C_k: float
    actual: float | None  # brute force, |x|/2 part (None when not checked)
    actual_cluster: float | None  # brute force, the whole ReLU contribution of the cluster
    bound: float
    ratio: float | None  # bound / actual
    terms: dict[str, float]  # see TERMS; they add up to the bound
    angle_error: float  # max over the grid of |F(psi) - F(2 phi)| / C_k (diagnostic)
    harmonics: int
    grid: int
    base_frequency: int  # g: the input waves are at m g (mod p), m in input_orders (g = k
    # unless extra_inputs chose another base: input_waves)
    input_orders: list[int]  # the orders m of the input waves m g each neuron carries (k first)
    compact_flops: int
    brute_flops: int | None
    compact_seconds: float
    brute_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BoundReport:
    p: int
    d_mlp: int
    grid: int
    harmonics: int
    extra_inputs: int
    clusters: list[ClusterBound]
    mlp_actual: float | None  # max |MLP - sum_k P_k| / sum_k C_k over all (a, b, c), key clusters
    all_nonvacuous: bool  # every reported cluster has bound < 1
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


TERMS = ("quadrature", "interpolation", "input_residual", "output_residual", "rounding")


def _members(f: Fits, k: int) -> Tensor:
    return torch.nonzero(f.live & (f.freq == k)).flatten()


def _fold(x: int, p: int) -> int:
    """The frequency x mod p folded into 0 .. p // 2 (x and -x are one wave)."""
    return min(x % p, p - x % p)


def harmonic_orders(p: int, k: int, harmonics: int) -> list[int]:
    """h = 1..harmonics whose frequencies h k mod p are non-zero and distinct once folded."""
    seen, out = set(), []
    for h in range(1, harmonics + 1):
        folded = _fold(h * k, p)
        if folded and folded not in seen:
            seen.add(folded)
            out.append(h)
    return out


def input_waves(f: Fits, idx: Tensor, k: int, harmonics: int, extra: int,
                ops: Ops) -> tuple[int, list[int]]:  # fmt: skip
    """(g, orders): the input waves each neuron of cluster k carries, as orders m of a base
    frequency g (the wave at m g mod p; the primary k first). They are k's harmonics 1 ..
    `harmonics` (harmonic_orders), then the `extra` other frequencies that carry the most of
    sum_i B_i (|U_i| + |V_i|) (each neuron's input amplitude there, weighted by its output
    amplitude), among those the multiples of k reach (for prime p, all). These are the key
    frequencies that neurons mixing two of them carry (docs/zoo.md): without them such a
    neuron's second wave goes into its input remainder.

    Every wave costs alike, but the grid in delta must resolve it: the curvature lines grow with
    m^2. As multiples of k the extra frequencies have high orders (seed 0's k = 24 at p = 59
    mixes in 23 and 25: orders 28 and 26). Any base that reaches them all does as well, and by
    Thue's lemma some base reaches two frequencies with orders <= sqrt(p) (there: g = 12, orders
    2 for 24, 3 for 23 and 7 for 25). With `extra` > 0 the base is the g that minimises
    sum_f load_f m_f^2 (load as above: a proxy for the curvature lines) among those that reach
    every frequency (for composite p not all do); g = k unless another is strictly better.
    Without extras, g = k and the orders are the harmonics'. (k's order m_k > 1 puts kinks of
    the closed form |cos(m_k delta)| inside grid intervals; `_quadrature` charges them.)"""
    p = f.p
    hl = harmonic_orders(p, k, harmonics)
    if extra <= 0:
        return k, hl
    half = (p - 1) // 2
    top = p // 2  # the highest folded frequency ((p - 1) / 2 for odd p)
    load = ((f.XU[1 : top + 1][:, idx].abs() + f.XV[1 : top + 1][:, idx].abs()) * f.B[idx]).sum(1)
    ops.add(top * len(idx) * 11)  # two |.| (4 each), add, multiply, sum
    freqs = [_fold(h * k, p) for h in hl]
    reached = {_fold(h * k, p) for h in range(1, p)}
    for j in torch.argsort(load[:half], descending=True).tolist():
        if len(freqs) >= len(hl) + extra:
            break
        if j + 1 not in freqs and j + 1 in reached:
            freqs.append(j + 1)
    # every base g in 1 .. (p - 1) / 2 at once: the lowest order m reaching each folded frequency
    g = torch.arange(1, half + 1)
    m = torch.arange(1, p)
    hit = (g[:, None] * m) % p
    hit = torch.minimum(hit, p - hit)  # [half, p - 1] folded frequency of m g
    table = torch.full((half, top + 1), p, dtype=torch.long)
    table.scatter_reduce_(1, hit, m.expand(half, -1), "amin")  # p where m g never reaches it
    orders = table[:, freqs]  # [half, waves]
    weight = load[torch.tensor(freqs) - 1]
    cost = (orders.double() ** 2 * weight).sum(1)
    cost = torch.where((orders < p).all(1), cost, math.inf)
    ops.add(half * (p - 1) * 4 + half * len(freqs) * 4)
    best = int(cost.argmin()) + 1
    base = best if float(cost[best - 1]) < float(cost[k - 1]) else k
    return base, orders[base - 1].tolist()


@dataclass
class _Cluster:
    """One cluster's waves (complex amplitudes: the U wave h is Re(zU[h] exp(i h w x))) and
    exact remainders, over its n neurons and the orders hs of the base frequency (w = 2 pi base
    / p; hs[0] is k's order: 1 where base = k)."""

    n: int
    C: float
    w: float
    base: int
    hs: Tensor  # [nh] orders of the base frequency (float64), k's first
    zU: Tensor  # [nh, n]
    zV: Tensor  # [nh, n]
    fo: Tensor  # [no] output wave frequencies (k first), float64
    zO: Tensor  # [no, n] output waves: Re(zO[j] exp(2 pi i fo[j] c / p))
    beta: Tensor
    H: Tensor
    eU: Tensor  # [p, n] input remainder of U after its waves
    eV: Tensor
    r: Tensor  # [n, p] output remainder after its waves

    @property
    def mag(self) -> Tensor:  # bound on |g_i| and on each of its terms' sum
        return self.beta.abs() + (self.zU.abs() + self.zV.abs()).sum(0)


def _waves(z: Tensor, hs: Tensor, w: float, p: int) -> Tensor:
    """sum_h Re(z[h] exp(i h w x)) for x = 0..p-1, [p, n]."""
    x = torch.arange(p, dtype=torch.float64)
    return torch.einsum("hn,xh->xn", z, torch.exp(1j * w * x[:, None] * hs)).real


def _output_frequencies(f: Fits, idx: Tensor, g: int, hl: list[int], extra: int) -> list[int]:
    """The output waves: the input waves' frequencies h g (k's first), then the `extra` other
    frequencies that carry the most of sum_i H_i |O-coefficient| (cross-talk to other
    clusters)."""
    p = f.p
    base = [h * g for h in hl]
    taken = {_fold(x, p) for x in base}
    half = (p - 1) // 2
    load = (f.XO[1 : half + 1][:, idx].abs() * f.H[idx]).sum(1)  # [half]
    for j in torch.argsort(load, descending=True).tolist():
        if len(base) >= len(hl) + extra:
            break
        if j + 1 not in taken:
            base.append(j + 1)
            taken.add(j + 1)
    return base


def _cluster(f: Fits, k: int, harmonics: int, extra: int, ops: Ops,
             extra_inputs: int = DEFAULT_EXTRA_INPUTS) -> _Cluster:  # fmt: skip
    p = f.p
    idx = _members(f, k)
    n = len(idx)
    g, hl = input_waves(f, idx, k, harmonics, extra_inputs, ops)
    hs = torch.tensor(hl, dtype=torch.float64)
    nh = len(hl)
    pick = lambda X, fs: torch.stack([_coef(X[:, idx], x, p) for x in fs])  # noqa: E731
    zU, zV = pick(f.XU, [h * g for h in hl]), pick(f.XV, [h * g for h in hl])
    fl = _output_frequencies(f, idx, g, hl, extra)
    no = len(fl)
    zO = pick(f.XO, fl)
    fo = torch.tensor(fl, dtype=torch.float64)
    C = float(((zU[0].abs() + zV[0].abs()) / 2 * zO[0].abs()).sum() * 2 / (3 * math.pi))
    ops.add((2 * nh + no) * n * 2 + 7 * n + 2 + 2 * ((p - 1) // 2) * n)
    w = 2 * math.pi * g / p
    eU = f.u[:, idx] - _waves(zU, hs, w, p)
    eV = f.v[:, idx] - _waves(zV, hs, w, p)
    r = f.o[idx] - _waves(zO, fo, 2 * math.pi / p, p).T
    ops.add((2 * nh + no) * (p * 6 + p * n * 4) + 3 * p * n)  # phases, products, sums; subtract
    return _Cluster(n, C, w, g, hs, zU, zV, fo, zO, f.beta[idx], f.H[idx], eU, eV, r)


def _real_times(x: Tensor, w: Tensor) -> Tensor:
    """x [..., n] (real) @ w [n, k] (real or complex) as one 2-D real matmul: no batch copies
    of w, no complex copy of x ([Re w, Im w] side by side); the same products and sums."""
    flat = x.reshape(-1, x.shape[-1])
    if not w.is_complex():
        return (flat @ w).view(*x.shape[:-1], w.shape[1])
    k = w.shape[1]
    out = flat @ torch.cat([w.real, w.imag], 1)
    return torch.complex(out[:, :k], out[:, k:]).view(*x.shape[:-1], k)


def _rounding_factor(n: int, p: int, nh: int) -> float:
    """4 (gamma_N + 32 u) with N = n + 2p + 4 nh + 64 (module doc, rounding); nh counts the
    waves on either side."""
    N = n + 2 * p + 4 * nh + 64
    return 4 * (N * U_ROUND / (1 - N * U_ROUND) + 32 * U_ROUND)


@dataclass
class QuadratureCells:
    """The quadrature line per theta = pi t / p and output wave, on the delta grid, for the
    certificates. At a delta a fraction lam into interval j, |F_j - [j = 0] P| is at most
    (1 - lam) err[t, j] + lam err[t, j + 1] (the chord of F - P between the grid points)
    + 4 lam (1 - lam) smooth (|g_i| and P leave their chords by at most K lam (1 - lam) step^2 / 2
    where K bounds their curvature: g_i = its linear interpolant + q_i with |q_i| that small)
    + kink[t, j] (where the interpolant of g_i changes sign, |.| of it leaves its chord by at most
    2 m0 m1 / (m0 + m1)) + kink_P[j] (the same for P = C |cos(mk delta)|, on wave 0, where one of
    its kinks lies inside interval j: only when the grid does not put them on grid points)."""

    err: Tensor  # [2p, grid + 1, waves]  |F_j - [j = 0] P| at the grid points
    kink: Tensor  # [2p, grid, waves]
    smooth: Tensor  # [waves]  the curvature part at mid-interval (lam = 1/2)
    F: Tensor  # [2p, grid + 1, waves]  F_j itself at the grid points (complex)
    smooth_g: Tensor  # [waves]  the part of `smooth` from the curvature of the |g_i| alone
    kink_P: Tensor  # [grid, waves]  P's kink term (column 0; zero where no kink is inside)

    def at(self, t: Tensor, j: Tensor, lam: Tensor) -> Tensor:
        """The bound [inputs, waves] at cells (t, j) and positions lam in [0, 1]."""
        lam = lam[:, None]
        return ((1 - lam) * self.err[t, j] + lam * self.err[t, j + 1]
                + 4 * lam * (1 - lam) * self.smooth + self.kink[t, j] + self.kink_P[j])

    def chord(self, t: Tensor, j: Tensor, lam: Tensor) -> tuple[Tensor, Tensor]:
        """(F_j's chord between the grid points [inputs, waves], complex; a bound on how far
        F_j leaves it): |F_j - chord| <= 4 lam (1 - lam) smooth_g + kink[t, j]."""
        lam = lam[:, None]
        chord = (1 - lam) * self.F[t, j] + lam * self.F[t, j + 1]
        return chord, 4 * lam * (1 - lam) * self.smooth_g + self.kink[t, j]

    def worst(self) -> Tensor:
        """Per theta, interval and wave, the bound anywhere in the interval [2p, grid, waves]."""
        return (torch.maximum(self.err[:, :-1], self.err[:, 1:]) + self.kink + self.smooth
                + self.kink_P)  # fmt: skip


def _quadrature(cl: _Cluster, p: int, grid: int, ops: Ops, per_wave: list[Any] | None = None
                ) -> tuple[Tensor, Tensor, float]:  # fmt: skip
    """Per delta interval j (max over theta, at the theta where their sum is largest): the
    grid part sum_h max |F_h - [h = 1] P| over the interval's ends, and the part for leaving the
    chords inside it; and the grid max of |F_1(psi) - F_1(2 phi)|. Absolute (not yet / C).
    With `per_wave`, also appends the line per theta = pi t / p and output wave j as
    `QuadratureCells` (the certificates look up each input's own theta and delta and weigh each
    wave by its own factor)."""
    n, C, hs = cl.n, cl.C, cl.hs
    nh, no = len(hs), len(cl.fo)
    G, step = grid + 1, math.pi / grid
    delta = math.pi * torch.arange(G, dtype=torch.float64) / grid
    hd = hs[:, None] * delta  # [nh, G]
    ch, sh = torch.cos(hd), torch.sin(hd)
    mk = float(hs[0])  # k's order: P = C |cos(mk delta)| exp(-2 i mk theta) in the base's angles
    absP = C * ch[0].abs()
    ops.add(4 * nh * G + 2 * G)
    aU, aV = cl.zU.abs(), cl.zV.abs()
    K2 = ((aU + aV) * hs[:, None] ** 2).sum(0)  # >= |d^2 g / d delta^2|
    fp = _rounding_factor(n, p, max(nh, no))
    slack = fp * cl.mag
    Bh = cl.zO.abs() / 2  # [no, n]
    smooth_g = (K2 * Bh).sum(1) * step**2 / 8  # [no]
    smooth = smooth_g.clone()
    smooth[0] += C * mk**2 * step**2 / 8  # P leaves its chord by <= that, plus kink_P:
    # |cos(mk delta)| has its kinks at pi (2 j + 1) / (2 mk), grid points when 2 mk divides the
    # grid (always for mk = 1: the grid is even); otherwise, on an interval where cos(mk delta)
    # changes sign (or nearly: rounding), P leaves its chord by <= 2 P0 P1 / (P0 + P1) more, as
    # a neuron's |g| does (the same argument: |.| of a linear interpolant that changes sign)
    u0, u1 = ch[0, :-1], ch[0, 1:]
    P0, P1 = absP[:-1], absP[1:]
    flipP = (u0 * u1 <= 0) | (torch.minimum(u0.abs(), u1.abs()) <= 4 * fp)
    kink_P = torch.zeros(grid, no, dtype=torch.float64)
    if grid % (2 * round(mk)):
        kink_P[:, 0] = torch.where(flipP, 2 * P0 * P1 / (P0 + P1).clamp_min(1e-300), 0.0)
    ops.add(11 * grid)
    phi = torch.angle(cl.zU[0] + cl.zV[0])
    wO = torch.cat([cl.zO / 2, (Bh[0] * torch.exp(2j * phi))[None]]).T  # [n, no + 1]
    ops.add(nh * n * 10 + no * n * 4 + 6 * n + 4 * no + 2)
    best_grid = torch.zeros(grid, dtype=torch.float64)
    best_dev = torch.zeros(grid, dtype=torch.float64)
    err_table: list[Tensor] = []
    kink_table: list[Tensor] = []
    F_table: list[Tensor] = []
    angle = 0.0
    T = 2 * p
    chunk = _quad_chunk(p, n, grid)
    # the grid's trigonometric factors side by side: g = [cos; sin]^T [a; b] is one real matmul
    trig = torch.cat([ch, sh]).T.contiguous()  # [G, 2 nh]
    for t0 in range(0, T, chunk):
        th = math.pi * torch.arange(t0, min(T, t0 + chunk), dtype=torch.float64) / p
        tc = len(th)
        rot = torch.exp(1j * hs[:, None] * th)  # [nh, tc]
        ZU = cl.zU[:, None, :] * rot[..., None]  # [nh, tc, n]
        ZV = cl.zV[:, None, :] * rot[..., None]
        ab = torch.cat([(ZU + ZV).real, (ZV - ZU).imag])  # [2 nh, tc, n]
        ops.add(nh * tc * 4 + nh * tc * n * 16)
        # the structured pre-activation on the grid: g = beta + sum_h a_h cos(h d) + b_h sin(h d),
        # laid out [G, tc, n] (grid-major: the interval ends g[:-1], g[1:] are contiguous)
        g = (trig @ ab.view(2 * nh, -1)).view(G, tc, n)
        g += cl.beta
        ag = g.abs()
        ops.add(tc * G * n * (4 * nh + 2))
        F = _real_times(ag, wO)  # [G, tc, no + 1]
        ops.add(tc * G * n * (no + 1) * 4)
        P = absP[:, None] * torch.exp(-2j * (mk * th))[None, :]  # [G, tc]
        angle = max(angle, float((F[..., 0] - F[..., no]).abs().max()))
        if per_wave is not None:
            F_table.append(F[..., :no].transpose(0, 1).contiguous())  # [tc, G, no]
        F[..., 0] -= P
        err = F[..., :no].abs()
        ops.add(tc * G * (6 + 3 * no + 10))
        # between grid points |g| leaves its chord by <= K2 step^2 / 8, plus 2 m0 m1 / (m0 + m1)
        # where g changes sign
        g0, g1, m0, m1 = g[:-1], g[1:], ag[:-1], ag[1:]
        flips = (g0 * g1 <= 0) | (torch.minimum(m0, m1) <= slack)
        kink = torch.where(flips, 2 * m0 * m1 / (m0 + m1).clamp_min(1e-300), 0.0)
        kdev = _real_times(kink, Bh.T)  # [grid, tc, no]
        dev = kdev + smooth + kink_P[:, None, :]
        ends = torch.maximum(err[:-1], err[1:])
        gpart, dpart = ends.sum(-1), dev.sum(-1)  # [grid, tc]
        if per_wave is not None:
            err_table.append(err.transpose(0, 1))
            kink_table.append(kdev.transpose(0, 1))
        ops.add(tc * grid * n * (9 + 2 * no) + tc * grid * no * 3 + 3 * tc * grid * no)
        tot = gpart + dpart
        at = tot.argmax(1)  # worst theta per interval
        gw, dw = gpart.gather(1, at[:, None])[:, 0], dpart.gather(1, at[:, None])[:, 0]
        better = gw + dw > best_grid + best_dev
        best_grid = torch.where(better, gw, best_grid)
        best_dev = torch.where(better, dw, best_dev)
        ops.add(tc * grid * 2 + 4 * grid)
    if per_wave is not None:
        per_wave.append(QuadratureCells(torch.cat(err_table), torch.cat(kink_table), smooth,
                                        torch.cat(F_table), smooth_g, kink_P))  # fmt: skip
    return best_grid, best_dev, angle


def _first_order(cl: _Cluster, p: int, grid: int, side: str, ops: Ops,
                 per_wave: list[Tensor] | None = None) -> Tensor:  # fmt: skip
    """Per delta interval j, a bound (max over the tokens x of this side) on this side's share
    of sum_h |sum_i zO_h,i / 2 (|h_i| - |g_i|)| (the input residual line of the module doc).

    Per neuron, |g + e| - |g| = sign(g) e exactly wherever |g| >= |e|, and is at most |e| in
    magnitude everywhere. Along the line of fixed x (U: w a = theta + delta fixed, so the other
    side moves as w b = w a - 2 delta; V: w b fixed, w a = w b + 2 delta) g_i is c0(x) plus the
    other side's waves at h (w x -+ 2 d), and on a grid interval
    |g_i| >= (|g_i(d_j)| + |g_i(d_j+1)| - L' step) / 2 with L' = sum_h 2 h |z_other,h| >=
    |dg / dd|. A neuron whose lower bound does not clear |e_i(x)| + max |e_other,i| (so maybe
    |g| < |e| at some pair on the interval) counts with |zO| / 2 |e_i(x)|; every other neuron
    keeps its sign on the interval and enters the exact signed sum (with `per_wave`, the bound
    per token x of this side, interval and output wave is appended too, [p, grid, waves]). The
    two sides classify a neuron independently; that is sound because a neuron with |g| < |e| at
    a pair is loose in both sweeps, and for the others either treatment bounds its term."""
    own, other, e, e_other = ((cl.zU, cl.zV, cl.eU, cl.eV) if side == "U"
                              else (cl.zV, cl.zU, cl.eV, cl.eU))  # fmt: skip
    n, w, hs = cl.n, cl.w, cl.hs
    nh, no = len(hs), len(cl.fo)
    G, step = grid + 1, math.pi / grid
    d = math.pi * torch.arange(G, dtype=torch.float64) / grid
    sgn = -1.0 if side == "U" else 1.0
    turn = torch.exp(sgn * 2j * hs[:, None] * d)  # [nh, G]
    x = torch.arange(p, dtype=torch.float64)
    rot = torch.exp(1j * w * hs[:, None] * x)  # [nh, p]
    c0 = cl.beta + torch.einsum("hn,hx->xn", own, rot).real  # [p, n]
    Z = other[:, None, :] * rot[..., None]  # [nh, p, n]
    Lp = (2 * hs[:, None] * other.abs()).sum(0)
    fp = _rounding_factor(n, p, max(nh, no))
    reach = e.abs() + e_other.abs().max(0).values + fp * cl.mag  # >= |e_i| on this line
    wO, Bh = (cl.zO / 2).T, (cl.zO.abs() / 2).T  # [n, no]
    ops.add(nh * G * 4 + nh * p * 4 + nh * p * n * 8 + p * n + 3 * nh * n + 4 * p * n
            + 4 * no * n)  # fmt: skip
    worst = torch.zeros(grid, dtype=torch.float64)
    wave_table = []
    # Re(sum_h Z_h turn_h) = [cos; -sin]^T [Re Z; Im Z]: one real matmul, grid-major [G, xc, n]
    trig = torch.cat([turn.real, -turn.imag]).T.contiguous()  # [G, 2 nh]
    ZZ = torch.cat([Z.real, Z.imag])  # [2 nh, p, n]
    chunk = max(1, _CHUNK // (G * max(n, 1) * 2))
    for x0 in range(0, p, chunk):
        sl = slice(x0, x0 + chunk)
        xc = len(range(p)[sl])
        g = (trig @ ZZ[:, sl].reshape(2 * nh, -1)).view(G, xc, n)
        g += c0[sl]
        ag = g.abs()
        ops.add(xc * G * n * (4 * nh + 2))
        lower = (ag[:-1] + ag[1:] - Lp * step * (1 + fp)) / 2
        loose = lower <= reach[sl]  # [grid, xc, n]
        es = e[sl].expand_as(loose)
        se = torch.where(loose, 0.0, torch.where(g[:-1] >= 0, es, -es))
        le = loose * e[sl].abs()
        ops.add(xc * grid * n * 8)
        fixed = _real_times(se, wO).abs()  # [grid, xc, no]
        free = _real_times(le, Bh)
        ops.add(xc * grid * (n * no * 6 + 4 * no))
        both = fixed + free
        worst = torch.maximum(worst, both.sum(-1).max(1).values)
        if per_wave is not None:
            wave_table.append(both.transpose(0, 1))  # [xc, grid, no]
            ops.add(xc * grid * no)
        ops.add(xc * grid * 2)
    if per_wave is not None:
        per_wave.append(torch.cat(wave_table))
    return worst


def output_remainder(cl: _Cluster, p: int, ops: Ops) -> tuple[Tensor, Tensor]:
    """(rp, rn) [p]: the output remainder's share of the |x|/2 half, sum_i |h_i| / 2 r_i(c),
    lies in [-rn(c), rp(c)] at every input (0 <= |h_i| <= H_i)."""
    rp = (cl.r.clamp_min(0) * (cl.H / 2)[:, None]).sum(0)
    rn = ((-cl.r).clamp_min(0) * (cl.H / 2)[:, None]).sum(0)
    ops.add(6 * p * cl.n)
    return rp, rn


def _output_and_rounding(cl: _Cluster, p: int, ops: Ops) -> tuple[float, float]:
    """The output-remainder line (c-free: 0 <= |h_i| <= H_i) and the rounding term, absolute."""
    rp, rn = output_remainder(cl, p, ops)
    output = float(torch.maximum(rp, rn).max())
    ops.add(2 * p)
    return output, rounding_term(cl, p, ops)


def rounding_term(cl: _Cluster, p: int, ops: Ops) -> float:
    """The rounding term of the cluster's lines, absolute."""
    n, nh, no = cl.n, len(cl.hs), len(cl.fo)
    S = float((cl.zO.abs().sum(0) / 2 * (cl.mag + 3 * (cl.eU.abs().max(0).values
                                                         + cl.eV.abs().max(0).values))).sum()
              + ((cl.H / 2) * cl.r.abs().max(1).values).sum()) + 2 * cl.C  # fmt: skip
    ops.add(5 * p * n + (2 * nh + no) * n + 12 * n)
    return _rounding_factor(n, p, max(nh, no)) * S


def check_grid(grid: int) -> None:
    """The delta grid must put a point at pi / 2, where |cos delta| has its kink (the chord
    bounds assume no kink inside an interval): an even number of intervals, at least 2, and at
    most MAX_GRID (the cost grows with the grid; the bound stops moving long before)."""
    if grid < 2 or grid % 2:
        raise QuadlensError(f"--grid must be an even number >= 2, got {grid}")
    if grid > MAX_GRID:
        raise QuadlensError(
            f"--grid must be at most {MAX_GRID}, got {grid}: the cost grows with the grid, and "
            "past a few thousand intervals the bound no longer moves (on the paper's model not "
            "in the third decimal from 4096 to 65536, which took 4 minutes; docs/bounds.md)"
        )


def compact_options(grid: int = DEFAULT_GRID, harmonics: int = DEFAULT_HARMONICS,
                    extra_outputs: int = DEFAULT_EXTRA_OUTPUTS,
                    extra_inputs: int = DEFAULT_EXTRA_INPUTS) -> dict[str, int]:  # fmt: skip
    """The compact bounds' options by name, the defaults filled in (what certificates and zoo
    studies record, and what check_options takes)."""
    return {"grid": grid, "harmonics": harmonics, "extra_outputs": extra_outputs,
            "extra_inputs": extra_inputs}  # fmt: skip


def check_options(grid: int, harmonics: int = DEFAULT_HARMONICS,
                  extra_outputs: int = DEFAULT_EXTRA_OUTPUTS,
                  extra_inputs: int = DEFAULT_EXTRA_INPUTS) -> None:  # fmt: skip
    """The bound's (and the compact certificates') options, or a QuadlensError saying why not."""
    for name, value in (("grid", grid), ("harmonics", harmonics), ("extra-outputs", extra_outputs),
                        ("extra-inputs", extra_inputs)):  # fmt: skip
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise QuadlensError(f"--{name} must be an integer, got {value!r}")
    check_grid(grid)
    if harmonics < 1:
        raise QuadlensError(f"--harmonics must be >= 1, got {harmonics}")
    if extra_outputs < 0:
        raise QuadlensError(f"--extra-outputs must be >= 0, got {extra_outputs}")
    if extra_inputs < 0:
        raise QuadlensError(f"--extra-inputs must be >= 0, got {extra_inputs}")


def compact_bound(f: Fits, k: int, grid: int = DEFAULT_GRID, harmonics: int = DEFAULT_HARMONICS,
                  extra_outputs: int = DEFAULT_EXTRA_OUTPUTS, ops: Ops | None = None,
                  extra_inputs: int = DEFAULT_EXTRA_INPUTS
                  ) -> tuple[float, dict[str, float], float, float]:  # fmt: skip
    """(bound, terms, angle_error, C_k) for cluster k, all relative to C_k; see the module doc."""
    check_options(grid, harmonics, extra_outputs, extra_inputs)
    ops = ops or Ops()
    p = f.p
    cl = _cluster(f, k, harmonics, extra_outputs, ops, extra_inputs)
    gpart, dpart, angle = _quadrature(cl, p, grid, ops)
    resid = _first_order(cl, p, grid, "U", ops) + _first_order(cl, p, grid, "V", ops)
    j = int((gpart + dpart + resid).argmax())  # the bound holds per delta interval: the worst
    ops.add(3 * grid)
    output, rounding = _output_and_rounding(cl, p, ops)
    C = cl.C
    if C <= 0:
        inf = math.inf
        return inf, dict.fromkeys(TERMS, inf), inf, C
    terms = dict(
        quadrature=float(gpart[j]) / C,
        interpolation=float(dpart[j]) / C,
        input_residual=float(resid[j]) / C,
        output_residual=output / C,
        rounding=rounding / C,
    )
    return sum(terms.values()), terms, angle / C, C


def compact_flops(p: int, n: int, grid: int = DEFAULT_GRID, nh: int = DEFAULT_HARMONICS,
                  no: int = DEFAULT_HARMONICS + DEFAULT_EXTRA_OUTPUTS, chosen: bool = False) -> int:
    """Counted flops of `compact_bound` for one cluster of n neurons, nh input and no output
    waves (`chosen`: input_waves looked for waves beyond the harmonics and a base for them,
    extra_inputs > 0), plus its
    neurons' share of `fit`. Leading terms, with G = grid + 1: the quadrature
    grid 2p G n (4 nh + 4 no + 6) + 2p grid n (9 + 2 no) and the two sweeps
    2 p G n (4 nh + 2) + 2 p grid n (8 + 6 no): linear in p n for fixed grid and waves."""
    G, T, half = grid + 1, 2 * p, (p - 1) // 2
    fit_share = 6 * p * n + 2 * n + 3 * n * fft_flops(p) + 8 * half * n + 16 * n + 6 * p * n + 8 * n
    cluster = ((2 * nh + no) * n * 2 + 7 * n + 2 + 2 * half * n
               + (2 * nh + no) * (p * 6 + p * n * 4) + 3 * p * n)  # fmt: skip
    quad = (4 * nh * G + 2 * G + nh * n * 10 + no * n * 4 + 6 * n + 4 * no + 2
            + T * (nh * 4 + nh * n * 16 + G * n * (4 * nh + 2) + G * n * (no + 1) * 4
                   + G * (16 + 3 * no) + grid * n * (9 + 2 * no) + grid * no * 6 + grid * 2)
            + 11 * grid + 4 * grid * -(-T // _quad_chunk(p, n, grid)))  # fmt: skip
    sweep = (nh * G * 4 + nh * p * 4 + nh * p * n * 8 + p * n + 3 * nh * n + 4 * p * n + 4 * no * n
             + p * (G * n * (4 * nh + 2) + grid * n * 8 + grid * (n * no * 6 + 4 * no)
                    + grid * 2))  # fmt: skip
    rest = 3 * grid + 6 * p * n + 2 * p + 5 * p * n + (2 * nh + no) * n + 12 * n
    choose = 11 * (p // 2) * n + half * (p - 1) * 4 + half * nh * 4 if chosen else 0
    return int(fit_share + choose + cluster + quad + 2 * sweep + rest)


def _quad_chunk(p: int, n: int, grid: int) -> int:
    return max(1, _CHUNK // ((grid + 1) * max(n, 1) * 2))


def brute_flops(p: int, n: int) -> int:
    """Counted flops of the brute-force actual for one cluster: pre-activations and |x|/2
    (4 p^2 n), every neuron into every logit (2 p^3 n), the closed form and the deviation
    (7 p^3 + 4 p^2)."""
    return 4 * p * p * n + 2 * p**3 * n + 7 * p**3 + 4 * p * p


def brute_actual(f: Fits, k: int, C: float, ops: Ops | None = None, context: bool = True
                 ) -> tuple[float, float | None]:  # fmt: skip
    """(actual, actual_cluster): max over all (a, b, c) of |T_K - P_K| / C_K for the |x|/2 half
    and (with context) for the cluster's whole ReLU contribution, in chunks of a so memory
    stays bounded. `ops` counts the |x|/2 computation only (brute_flops)."""
    ops = ops or Ops()
    p = f.p
    idx = _members(f, k)
    n = len(idx)
    u, v, beta, o = f.u[:, idx], f.v[:, idx], f.beta[idx], f.o[idx]
    w = 2 * math.pi * k / p
    ar = torch.arange(p, dtype=torch.float64)
    wave_c = torch.exp(-1j * w * ar)  # [c]
    worst_abs, worst_relu = 0.0, 0.0
    chunk = max(1, _CHUNK // (p * max(n, p)))
    for a0 in range(0, p, chunk):
        a = ar[a0 : a0 + chunk]
        ca = len(a)
        pre = u[a0 : a0 + chunk, None, :] + v[None, :, :] + beta  # [ca, p, n]
        half_abs = pre.abs() / 2
        ops.add(4 * ca * p * n)
        T = half_abs @ o  # [ca, p, c]
        ops.add(2 * ca * p * p * n)
        s = C * torch.cos(w * (a[:, None] - ar[None, :]) / 2).abs()  # [ca, p]
        e = torch.exp(1j * w * (a[:, None] + ar[None, :]))  # [ca, p]
        ops.add(4 * ca * p)
        P = s[..., None] * (e[..., None] * wave_c).real
        ops.add(4 * ca * p * p)
        worst_abs = max(worst_abs, float((T - P).abs().max()))
        ops.add(3 * ca * p * p)
        if context:
            worst_relu = max(worst_relu, float((torch.relu(pre) @ o - P).abs().max()))
    if C <= 0:
        return math.inf, math.inf if context else None
    return worst_abs / C, worst_relu / C if context else None


def _mlp_actual(f: Fits, keys: list[int], Cs: list[float]) -> float:
    """max over (a, b, c) of |MLP(a, b, c) - sum_k P_k| / sum_k C_k (all neurons, ReLU)."""
    p = f.p
    ar = torch.arange(p, dtype=torch.float64)
    worst = 0.0
    n = f.u.shape[1]
    chunk = max(1, _CHUNK // (p * max(n, p)))
    for a0 in range(0, p, chunk):
        a = ar[a0 : a0 + chunk]
        pre = f.u[a0 : a0 + chunk, None, :] + f.v[None, :, :] + f.beta
        out = torch.relu(pre) @ f.o
        for k, C in zip(keys, Cs, strict=True):
            w = 2 * math.pi * k / p
            s = C * torch.cos(w * (a[:, None] - ar[None, :]) / 2).abs()
            out -= s[..., None] * torch.cos(
                w * (a[:, None, None] + ar[None, :, None] - ar[None, None, :])
            )
        worst = max(worst, float(out.abs().max()))
    total = sum(Cs)
    return worst / total if total > 0 else math.inf


def bound_circuit(c: Circuit, grid: int = DEFAULT_GRID, harmonics: int = DEFAULT_HARMONICS,
                  extra_outputs: int = DEFAULT_EXTRA_OUTPUTS, check: bool = True,
                  clusters: list[int] | None = None,
                  extra_inputs: int = DEFAULT_EXTRA_INPUTS) -> BoundReport:  # fmt: skip
    """Compact bound (and, with check, the brute-force actual) for each key cluster."""
    if c.cfg.activation != "relu":
        raise QuadlensError(
            f"activation is {c.cfg.activation}: the compact bound is for ReLU MLPs (|x|/2 half of "
            "ReLU(x) = x/2 + |x|/2); quadlens bilinear reads x^2 and bilinear MLPs"
        )
    f = fit(c)
    keys = key_clusters(f) if clusters is None else clusters
    notes = []
    if not keys:
        notes.append("no key clusters (no frequency carries >= 5% of the weight): nothing to bound")
    rows = []
    for k in keys:
        idx = _members(f, k)
        n = len(idx)
        if n == 0:
            raise QuadlensError(f"no live neuron has primary frequency {k}")
        g, hl = input_waves(f, idx, k, harmonics, extra_inputs, Ops())
        nh = len(hl)
        t0 = time.perf_counter()
        bnd, terms, angle, C = compact_bound(f, k, grid, harmonics, extra_outputs,
                                             extra_inputs=extra_inputs)  # fmt: skip
        t_compact = time.perf_counter() - t0
        no = len(_output_frequencies(f, idx, g, hl, extra_outputs))  # waves modelled
        actual = actual_cluster = t_brute = None
        if check:
            t0 = time.perf_counter()
            actual, actual_cluster = brute_actual(f, k, C)
            t_brute = time.perf_counter() - t0
        rows.append(ClusterBound(
            freq=k, n_neurons=n, C_k=C, actual=actual, actual_cluster=actual_cluster, bound=bnd,
            ratio=bnd / actual if actual else None, terms=terms, angle_error=angle,
            harmonics=harmonics, grid=grid, base_frequency=g, input_orders=hl,
            compact_flops=compact_flops(c.cfg.p, n, grid, nh, no, chosen=extra_inputs > 0),
            brute_flops=brute_flops(c.cfg.p, n) if check else None,
            compact_seconds=t_compact, brute_seconds=t_brute,
        ))  # fmt: skip
    mlp = _mlp_actual(f, [r.freq for r in rows], [r.C_k for r in rows]) if check and rows else None
    vac = [r.freq for r in rows if not r.bound < 1]
    if vac:
        notes.append(f"bound >= 1 (vacuous) for k = {', '.join(map(str, vac))}")
    return BoundReport(p=c.cfg.p, d_mlp=c.U.shape[1], grid=grid, harmonics=harmonics,
                       extra_inputs=extra_inputs, clusters=rows, mlp_actual=mlp,
                       all_nonvacuous=bool(rows) and not vac, notes=notes)  # fmt: skip


def bound(model: Model, grid: int = DEFAULT_GRID, harmonics: int = DEFAULT_HARMONICS,
          extra_outputs: int = DEFAULT_EXTRA_OUTPUTS, check: bool = True,
          extra_inputs: int = DEFAULT_EXTRA_INPUTS) -> BoundReport:
    """`bound_circuit` on a model (in float64 where its float32 forward overflows:
    `finite_model`); refuses models without the circuit view."""
    check_options(grid, harmonics, extra_outputs, extra_inputs)
    model = finite_model(checked_model(model, "bounds"))
    if not model.cfg.constant_attention:
        raise QuadlensError(
            f"attention is not constant (attention_rate = {model.cfg.attention_rate:g}): the "
            "pre-activation does not separate into U[a] + V[b], so the quadrature bound does "
            "not apply"
        )
    with torch.no_grad():
        return bound_circuit(circuit(model), grid, harmonics, extra_outputs, check,
                             extra_inputs=extra_inputs)  # fmt: skip
