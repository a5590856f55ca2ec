"""The quadrature lens: which frequency each neuron serves, where its phase puts its rectangle
under the curve, what closed form each cluster converges to, and how far the model is from it
(science.md §3-4). Everything is computed from the circuit (U, V, b_in, O) in float64.

Symbols (per neuron i, cluster k = the neurons whose primary frequency is k, w = 2 pi k / p):

    U[x, i] ~ A_U cos(w x + phi_U),  V[x, i] ~ A_V cos(w x + phi_V)     input fit
    A = (A_U + A_V) / 2,  phi = arg(U_hat + V_hat)                       the neuron's phase
    O[i, c] ~ B cos(w c + psi)                                           output fit
    v_i = 2 A_i B_i,   C_k = sum_i v_i / (3 pi)                          quadrature weight, scale
    G_k(x) = sum_i v_i ReLU(cos(x + phi_i)) exp(i (2 x + psi_i))        at x_j = pi j / p

With psi = 2 phi, G_k = sum_i v_i ReLU(cos(x + phi_i)) exp(2 i (x + phi_i)), the paper's
idealised quadrature (reported as quadrature_rel_error, vote_correct); with each neuron's fitted
psi the angle error is kept in (reported as *_fitted_psi). The cluster's logit is
|s| Re[exp(i w (c - a - b)) G_k(x)] with s = cos(w (a - b) / 2) and x = w (a + b) / 2 (+ pi if
s < 0), so it votes for c = a + b exactly when |arg G_k(x)| < pi / p for every x that occurs.
(science.md §3 writes w_k / 2; since c -> w_k c mod 2 pi visits every multiple of 2 pi / p, the
nearest competitor is pi / p away, not w_k / 2 — the tests check this against brute force.)

Closed forms of the MLP logits (centred over c), summed over the key frequencies:

    pizza:            C_k |cos(w (a - b) / 2)| cos(w (a + b - c))
    clock:            (2 / pi) C_k cos(w (a + b - c))        (|cos| replaced by its mean)
    pizza+secondary:  pizza + Re[D^a_k e^{i w (2a - c)}] + Re[D^b_k e^{i w (2b - c)}]
                      D^a_k = sum_i A2_U,i B_i exp(i (chi_U,i - psi_i)) / 4   (V likewise)

where A2, chi describe each neuron's input component at the doubled frequency 2k (the secondary
frequency, folded into 1..(p-1)/2 when reported), which reaches the logits through the linear
half x/2 of ReLU(x) = x/2 + |x|/2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from quadlens import fourier
from quadlens.circuit import Circuit, circuit
from quadlens.data import labels
from quadlens.evaluate import finite_model, margins
from quadlens.model import Model, activate, checked_model

PSI_TOLERANCE = 0.35  # radians (20 degrees): "psi = 2 phi" holds for a neuron within this
DOMINANT = 0.5  # a neuron's primary frequency is dominant if it carries this much input power
MIX_SHARE = 0.05  # a key-cluster neuron mixes in a second key frequency carrying this much
# a model whose key-cluster neurons mix in a second key frequency this often is an outlier: on
# the 152-seed zoo of 2026-12-06 such models (27) kept non-vacuous bounds on 5 and were certified
# 100% by `cluster` on 4, against 81 and 75 of the 82 models with no such neuron (docs/zoo.md)
MIX_OUTLIER = 0.05


@dataclass
class NeuronFit:
    index: int
    freq: int  # primary frequency k
    frac_explained: float  # share of the input (U and V) power at k
    dead: bool  # never active on any input
    A_U: float
    phi_U: float
    A_V: float
    phi_V: float
    A: float
    phi: float
    B: float
    psi: float
    psi_err: float  # wrap(psi - 2 phi)
    uv_phase_err: float  # wrap(phi_U - phi_V)
    secondary_freq: int  # 2k folded into 1..(p-1)/2
    secondary_amp_U: float  # A2_U
    secondary_phase_U: float  # chi_U, for A2_U cos(2 w x + chi_U)
    secondary_amp_V: float
    secondary_phase_V: float
    secondary_phase_err: float  # wrap(chi_U - (2 phi + pi))
    next_freq: int  # strongest frequency other than k
    next_frac: float  # share of the input (U and V) power at next_freq


@dataclass
class ClusterStats:
    freq: int
    n_neurons: int
    neurons: list[int]
    key: bool  # a key frequency of the model
    C_k: float
    mean_resultant_length: float  # |mean exp(i phi)|: 0 for phases spread evenly
    largest_gap: float  # largest gap between consecutive phases on the circle (radians)
    uv_phase_err_median: float
    psi_err_median: float
    frac_psi_2phi: float  # share of neurons with |psi - 2 phi| < PSI_TOLERANCE
    # share of its neurons whose next frequency is another key frequency with >= MIX_SHARE of
    # their input power, and those key frequencies (the most frequent first)
    frac_key_mixing: float
    mixed_with: list[int]
    quadrature_rel_error: float  # max_j |G_k(x_j) - C_k| / C_k, idealised (psi = 2 phi)
    vote_correct: bool  # |arg G_k(x_j)| < pi / p at every x_j, idealised
    vote_frac: float  # share of the 2p points x_j where the idealised vote is right
    max_arg_G: float  # max_j |arg G_k(x_j)|, idealised
    max_arg_G_fitted_psi: float  # the same with each neuron's fitted psi (angle error kept)
    vote_correct_fitted_psi: bool
    fve_pizza: float  # FVE of this cluster's logits by its own pizza term
    D_a: list[float] = field(default_factory=list)  # secondary coefficient (re, im)
    D_b: list[float] = field(default_factory=list)
    G_abs: list[float] = field(default_factory=list)  # |G_k(x_j)|, j = 0..2p-1
    G_arg: list[float] = field(default_factory=list)


@dataclass
class Analysis:
    p: int
    activation: str
    applicable: bool  # does the quadrature view apply at all?
    accuracy: float
    key_frequencies: list[int]
    input_spectrum: list[float]  # share of U,V power per frequency 1..(p-1)/2
    embedding_spectrum: list[float] | None  # share of W_E power per frequency, if a model
    clusters: list[ClusterStats]
    fve: dict[str, float | None]
    relu_split: dict[str, float | None]
    neurons: list[NeuronFit]
    n_dead: int | None  # (None: the view does not apply, nothing was fitted)
    frac_dominant: float | None  # share of live neurons whose primary frequency is dominant
    frac_psi_2phi: float | None  # over live neurons in key clusters (None: no key clusters)
    # over live neurons in key clusters: the share whose next frequency is another key
    # frequency with >= MIX_SHARE of their input power (neurons that mix two key frequencies)
    frac_key_mixing: float | None
    notes: list[str]  # assumptions that fail, in words

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def analyze(obj: Model | Circuit) -> Analysis:
    """Run the lens on a model (or directly on a circuit); a model whose float32 forward
    overflows is read in float64 (`finite_model`)."""
    notes: list[str] = []
    if not isinstance(obj, Circuit):
        obj = finite_model(checked_model(obj, "analyze"))
    if isinstance(obj, Model):
        cfg = obj.cfg
        if not cfg.constant_attention:
            return _not_applicable(
                obj,
                f"attention is not constant (attention_rate = {cfg.attention_rate:g}): the "
                "pre-activation does not separate into U[a] + V[b]",
            )
        with torch.no_grad():
            c = circuit(obj)
        W_E = obj.W_E.detach().double()
    else:
        c, W_E = obj, None
    c = _double(c)
    p = c.cfg.p
    is_relu = c.cfg.activation == "relu"
    if not is_relu:
        notes.append(
            f"activation is {c.cfg.activation}, not ReLU: the integral identity of the closed "
            "forms is for ReLU, so closed forms, G_k and votes are not computed"
        )
    logits = c.forward_all()
    accuracy = float((margins(logits, labels(p)) > 0).double().mean())
    if accuracy < 1.0:
        notes.append(
            f"the model is {accuracy:.2%} accurate, not 100%: it has not (fully) learned "
            "a + b mod p, and the interpretation below describes what it computes instead"
        )
    fits, power_U, power_V = _fit_neurons(c)
    live = [f for f in fits if not f.dead]
    if not live:
        notes.append("every neuron is dead (never active on any input): the MLP computes "
                     "nothing, and there is no frequency or cluster to find")  # fmt: skip
    dominant = [f for f in live if f.frac_explained >= DOMINANT]
    frac_dominant = len(dominant) / max(len(live), 1)
    if live and frac_dominant < 0.5:
        notes.append(
            f"only {frac_dominant:.0%} of live neurons have a dominant frequency (>= "
            f"{DOMINANT:.0%} of input power): the neurons are not single-frequency, and the "
            "cluster picture is weak"
        )
    spectrum = (power_U + power_V).sum(1)
    spectrum = spectrum / spectrum.sum() if spectrum.sum() > 0 else spectrum  # (0: no power)
    keys = _key_frequencies(fits)
    if live and not keys:
        notes.append(
            "no frequency carries >= 5% of the neurons' total weight: there are no key clusters"
        )
    uv = sorted(abs(f.uv_phase_err) for f in live)
    if uv and uv[len(uv) // 2] > PSI_TOLERANCE:
        notes.append(
            f"phase(U) != phase(V) for most neurons (median |phi_U - phi_V| = "
            f"{uv[len(uv) // 2]:.2f} rad): the pre-activation is not A (cos(w a + phi) + "
            "cos(w b + phi)), so the pizza picture does not describe these neurons"
        )
    emb = None
    if W_E is not None:
        pe = fourier.power(W_E - W_E.mean(0), dim=0).sum(1)
        emb = (pe / pe.sum()).tolist()
    pre = (c.U[:, None, :] + c.V[None, :, :] + c.b_in).reshape(p * p, -1)
    clusters = [
        _cluster(c, fits, k, keys, pre, is_relu) for k in sorted({f.freq for f in live})
    ]
    fve: dict[str, float | None] = {"pizza": None, "clock": None, "pizza_secondary": None}
    split: dict[str, float | None] = {"linear_frac": None, "abs_fve_pizza": None}
    if is_relu:
        fve, split = _closed_forms(c, pre, [cl for cl in clusters if cl.key])
    in_keys = [f for f in live if f.freq in keys]
    frac_psi = (
        sum(abs(f.psi_err) < PSI_TOLERANCE for f in in_keys) / len(in_keys) if in_keys else None
    )
    frac_mix = (
        sum(_mixing(f, keys) for f in in_keys) / len(in_keys)
        if in_keys else None
    )  # fmt: skip
    return Analysis(
        p=p, activation=c.cfg.activation, applicable=True, accuracy=accuracy,
        key_frequencies=keys, input_spectrum=spectrum.tolist(), embedding_spectrum=emb,
        clusters=clusters, fve=fve, relu_split=split, neurons=fits,
        n_dead=sum(f.dead for f in fits), frac_dominant=frac_dominant, frac_psi_2phi=frac_psi,
        frac_key_mixing=frac_mix, notes=notes,
    )  # fmt: skip


def _not_applicable(model: Model, reason: str) -> Analysis:
    from quadlens.evaluate import evaluate

    ev = evaluate(model)
    return Analysis(
        p=model.cfg.p, activation=model.cfg.activation, applicable=False, accuracy=ev.accuracy,
        key_frequencies=[], input_spectrum=[], embedding_spectrum=None, clusters=[],
        fve={"pizza": None, "clock": None, "pizza_secondary": None},
        relu_split={"linear_frac": None, "abs_fve_pizza": None}, neurons=[], n_dead=None,
        frac_dominant=None, frac_psi_2phi=None, frac_key_mixing=None, notes=[reason],
    )  # fmt: skip


def _double(c: Circuit) -> Circuit:
    def d(x: Tensor | None) -> Tensor | None:
        return None if x is None else x.detach().double().cpu()

    return Circuit(c.cfg, d(c.U), d(c.V), d(c.b_in), d(c.O), d(c.D_a), d(c.D_b),
                   d(c.logit_bias), d(c.U_gate), d(c.V_gate), d(c.b_gate))  # fmt: skip


def _fit_neurons(c: Circuit) -> tuple[list[NeuronFit], Tensor, Tensor]:
    p = c.cfg.p
    XU = fourier.coefficients(c.U, dim=0)  # [freq, neuron]
    XV = fourier.coefficients(c.V, dim=0)
    XO = fourier.coefficients(c.O, dim=1).T  # [freq, neuron]
    pw = XU.abs() ** 2 + XV.abs() ** 2
    total = pw.sum(0).clamp_min(1e-300)
    k_idx = pw.argmax(0)  # [neuron]
    k = k_idx + 1
    pick = lambda X: X.gather(0, k_idx[None])[0]  # noqa: E731
    xu, xv, xo = pick(XU), pick(XV), pick(XO)
    A_U, phi_U = fourier.amplitude_phase(xu, p)
    A_V, phi_V = fourier.amplitude_phase(xv, p)
    B, psi = fourier.amplitude_phase(xo, p)
    phi = torch.angle(xu + xv)
    second = pw.clone()
    second.scatter_(0, k_idx[None], -1.0)
    next_k = second.argmax(0) + 1
    # the component at the doubled frequency 2k, as A2 cos(2 w x + chi)
    x2u = fourier.coefficient_at(c.U.T, 2 * k, dim=1)
    x2v = fourier.coefficient_at(c.V.T, 2 * k, dim=1)
    A2U, chiU = fourier.amplitude_phase(x2u, p)
    A2V, chiV = fourier.amplitude_phase(x2v, p)
    pre_max = c.U.max(0).values + c.V.max(0).values + c.b_in  # max over (a, b) separates
    dead = (pre_max <= 0) | (c.O.abs().sum(1) == 0)
    folded = torch.minimum(2 * k % p, p - 2 * k % p)
    fits = []
    for i in range(c.U.shape[1]):
        fits.append(NeuronFit(
            index=i, freq=int(k[i]), frac_explained=float(pw[k_idx[i], i] / total[i]),
            dead=bool(dead[i]), A_U=float(A_U[i]), phi_U=float(phi_U[i]), A_V=float(A_V[i]),
            phi_V=float(phi_V[i]), A=float((A_U[i] + A_V[i]) / 2), phi=float(phi[i]),
            B=float(B[i]), psi=float(psi[i]),
            psi_err=float(fourier.wrap(psi[i] - 2 * phi[i])),
            uv_phase_err=float(fourier.wrap(phi_U[i] - phi_V[i])),
            secondary_freq=int(folded[i]), secondary_amp_U=float(A2U[i]),
            secondary_phase_U=float(chiU[i]), secondary_amp_V=float(A2V[i]),
            secondary_phase_V=float(chiV[i]),
            secondary_phase_err=float(fourier.wrap(chiU[i] - 2 * phi[i] - math.pi)),
            next_freq=int(next_k[i]), next_frac=float(second[next_k[i] - 1, i] / total[i]),
        ))  # fmt: skip
    return fits, XU.abs() ** 2, XV.abs() ** 2


def _key_frequencies(fits: list[NeuronFit]) -> list[int]:
    """Frequencies whose cluster carries >= 5% of the total quadrature weight sum(v_i) of the
    live neurons — the clusters that shape the logits."""
    weight: dict[int, float] = {}
    for f in fits:
        if not f.dead:
            weight[f.freq] = weight.get(f.freq, 0.0) + 2 * f.A * f.B
    total = sum(weight.values()) or 1.0
    return sorted(k for k, w in weight.items() if w / total >= 0.05)


def G_values(phi: Tensor, psi: Tensor, v: Tensor, p: int) -> Tensor:
    """G_k(x_j) = sum_i v_i ReLU(cos(x_j + phi_i)) exp(i (2 x_j + psi_i)), x_j = pi j / p."""
    x = math.pi * torch.arange(2 * p, dtype=torch.float64) / p  # [2p]
    weight = v * torch.relu(torch.cos(x[:, None] + phi))  # [2p, neuron]
    return (weight * torch.exp(1j * (2 * x[:, None] + psi))).sum(1)


def _mixing(f: NeuronFit, keys: list[int]) -> bool:
    """Whether neuron f carries a second key frequency (>= MIX_SHARE of its input power)."""
    return f.next_freq in keys and f.next_frac >= MIX_SHARE


def _cluster(c: Circuit, fits: list[NeuronFit], k: int, keys: list[int], pre: Tensor,
             is_relu: bool) -> ClusterStats:  # fmt: skip
    p = c.cfg.p
    key = k in keys
    members = [f for f in fits if f.freq == k and not f.dead]
    mixing = [f.next_freq for f in members if _mixing(f, keys)]
    idx = [f.index for f in members]
    t = lambda name: torch.tensor([getattr(f, name) for f in members], dtype=torch.float64)  # noqa: E731
    phi, psi, A, B = t("phi"), t("psi"), t("A"), t("B")
    v = 2 * A * B
    C_k = float(v.sum() / (3 * math.pi))
    mrl = float(torch.exp(1j * phi).mean().abs())
    srt = torch.sort(torch.remainder(phi, 2 * math.pi)).values
    gaps = torch.diff(torch.cat([srt, srt[:1] + 2 * math.pi]))
    stats = dict(
        freq=k, n_neurons=len(idx), neurons=idx, key=key, C_k=C_k, mean_resultant_length=mrl,
        largest_gap=float(gaps.max()),
        uv_phase_err_median=float(t("uv_phase_err").abs().median()),
        psi_err_median=float(t("psi_err").abs().median()),
        frac_psi_2phi=float((t("psi_err").abs() < PSI_TOLERANCE).double().mean()),
        frac_key_mixing=len(mixing) / len(members),
        mixed_with=sorted(set(mixing), key=lambda j: (-mixing.count(j), j)),
    )  # fmt: skip
    if not is_relu:
        nan = float("nan")
        return ClusterStats(**stats, quadrature_rel_error=nan, vote_correct=False, vote_frac=nan,
                            max_arg_G=nan, max_arg_G_fitted_psi=nan,
                            vote_correct_fitted_psi=False, fve_pizza=nan)  # fmt: skip
    G = G_values(phi, 2 * phi, v, p)  # the idealised quadrature (science.md §3)
    args = torch.angle(G).abs()
    args_fit = torch.angle(G_values(phi, psi, v, p)).abs()
    left, right = _wave_factors(p, k, "pizza")
    pizza = torch.stack(left, 1) @ torch.stack(right, 0)  # [p*p, c], C_k = 1
    own = torch.relu(pre[:, idx]) @ c.O[idx]
    own = own - own.mean(1, keepdim=True)
    fve_own = 1 - float(((own - C_k * pizza) ** 2).sum() / (own**2).sum().clamp_min(1e-300))
    D_a, D_b = _secondary(members, "U"), _secondary(members, "V")
    ok, ok_fit = args < math.pi / p, args_fit < math.pi / p
    return ClusterStats(
        **stats,
        quadrature_rel_error=float(((G - C_k).abs() / C_k).max()) if C_k > 0 else math.inf,
        vote_correct=bool(ok.all() and (G.abs() > 0).all()),
        vote_frac=float(ok.double().mean()),
        max_arg_G=float(args.max()),
        max_arg_G_fitted_psi=float(args_fit.max()),
        vote_correct_fitted_psi=bool(ok_fit.all()),
        fve_pizza=fve_own,
        D_a=[D_a.real, D_a.imag],
        D_b=[D_b.real, D_b.imag],
        G_abs=G.abs().tolist(),
        G_arg=torch.angle(G).tolist(),
    )


def _secondary(members: list[NeuronFit], side: str) -> complex:
    total = 0j
    for f in members:
        amp = getattr(f, f"secondary_amp_{side}")
        chi = getattr(f, f"secondary_phase_{side}")
        total += amp * f.B * complex(math.cos(chi - f.psi), math.sin(chi - f.psi)) / 4
    return total


def _wave_factors(p: int, k: int, kind: str, C_k: float = 1.0) -> tuple[list[Tensor], list[Tensor]]:
    """Frequency k's closed-form term of `kind` (pizza or clock) as two (a, b) factors [p^2]
    and the c factors [p] they multiply: by angle addition,
    cos(w (a + b) - w c) = cos(w (a + b)) cos(w c) + sin(w (a + b)) sin(w c)."""
    a = torch.arange(p, dtype=torch.float64)
    A_, B_ = a[:, None].expand(p, p).reshape(-1), a[None, :].expand(p, p).reshape(-1)
    w = 2 * math.pi * k / p
    ws = w * (A_ + B_)
    amp = ((2 / math.pi) * C_k if kind == "clock"
           else C_k * torch.cos(w * (A_ - B_) / 2).abs())  # fmt: skip
    return [amp * torch.cos(ws), amp * torch.sin(ws)], [torch.cos(w * a), torch.sin(w * a)]


def closed_form(p: int, clusters: list[ClusterStats], kind: str) -> Tensor:
    """The closed-form MLP logits [a * p + b, c] of `kind` (pizza, clock, pizza_secondary).

    Every term is a function of (a, b) times cos(w c) or sin(w c) (`_wave_factors`), so the
    p^3 table is one matmul [p^2, 2 |K|] @ [2 |K|, p] instead of a cosine per (a, b, c, k)."""
    a = torch.arange(p, dtype=torch.float64)
    A_, B_ = a[:, None].expand(p, p).reshape(-1), a[None, :].expand(p, p).reshape(-1)
    left, right = [], []
    for cl in clusters:
        w = 2 * math.pi * cl.freq / p
        base = "clock" if kind == "clock" else "pizza"  # pizza_secondary adds to pizza
        (cos_ab, sin_ab), c_factors = _wave_factors(p, cl.freq, base, cl.C_k)
        if kind == "pizza_secondary":
            # D0 cos(w (2x - c)) - D1 sin(w (2x - c)), x = a and x = b, by angle addition
            for D, x in ((cl.D_a, A_), (cl.D_b, B_)):
                c2, s2 = torch.cos(2 * w * x), torch.sin(2 * w * x)
                cos_ab = cos_ab + (D[0] * c2 - D[1] * s2)
                sin_ab = sin_ab + (D[0] * s2 + D[1] * c2)
        left += [cos_ab, sin_ab]
        right += c_factors
    if not left:
        return torch.zeros(p * p, p, dtype=torch.float64)
    return torch.stack(left, 1) @ torch.stack(right, 0)


# FLOPs per pair (a, b) and key frequency of closed_form's (a, b) factors: pizza, |cos(w (a - b)
# / 2)| (2), times C_k (1), cos and sin of w (a + b) (2), the two products (2); clock, the cosine,
# sine and products; pizza_secondary, pizza's plus, for x = a and x = b, cos and sin of 2 w x
# (2), four products and four additions (8)
CLOSED_FORM_PAIR_FLOPS = {"pizza": 7, "clock": 4, "pizza_secondary": 7 + 2 * 10}


def closed_form_flops(p: int, n_keys: int, kind: str) -> int:
    """FLOPs of `closed_form`: the (a, b) factors (CLOSED_FORM_PAIR_FLOPS per pair and
    frequency), the c factors (a cosine and a sine per c and frequency) and the one matmul
    [p^2, 2 |K|] @ [2 |K|, p] (4 p^3 |K|)."""
    return n_keys * (CLOSED_FORM_PAIR_FLOPS[kind] * p * p + 2 * p + 4 * p**3)


def _closed_forms(c: Circuit, pre: Tensor, key_clusters: list[ClusterStats]
                  ) -> tuple[dict[str, float | None], dict[str, float | None]]:  # fmt: skip
    p = c.cfg.p
    mlp = activate(c.cfg, pre) @ c.O  # [p*p, c]
    mlp = mlp - mlp.mean(1, keepdim=True)
    norm = (mlp**2).sum()
    if not norm > 0:  # every neuron dead or silent: no variance for a closed form to explain
        return ({"pizza": None, "clock": None, "pizza_secondary": None},
                {"linear_frac": None, "abs_fve_pizza": None})  # fmt: skip

    def fve(target: Tensor, approx: Tensor, denom: Tensor) -> float:
        return 1 - float(((target - approx) ** 2).sum() / denom)

    # one p^3 table at a time beside mlp (at p = 509 each is 1 GB); pizza last, so that `form`
    # is then the pizza form, which the split reuses
    fves = {}
    for kind in ("clock", "pizza_secondary", "pizza"):
        form = closed_form(p, key_clusters, kind)
        fves[kind] = fve(mlp, form, norm)
    lin = (pre / 2) @ c.O
    linear_frac = float(((lin - lin.mean(1, keepdim=True)) ** 2).sum() / norm)
    del lin, mlp
    ab = (pre.abs() / 2) @ c.O
    ab = ab - ab.mean(1, keepdim=True)
    split = {"linear_frac": linear_frac, "abs_fve_pizza": fve(ab, form, (ab**2).sum())}
    return {k: fves[k] for k in ("pizza", "clock", "pizza_secondary")}, split


def logit_maps(c: Circuit, an: Analysis, c_out: int = 0) -> dict[str, Tensor]:
    """Actual MLP logits and the pizza / clock closed forms for output c_out, over (a, b) [p, p],
    each centred over c (for the heatmaps)."""
    c = _double(c)
    p = c.cfg.p
    pre = (c.U[:, None, :] + c.V[None, :, :] + c.b_in).reshape(p * p, -1)
    mlp = activate(c.cfg, pre) @ c.O
    mlp = mlp - mlp.mean(1, keepdim=True)
    key = [cl for cl in an.clusters if cl.key]
    maps = {"actual MLP": mlp}
    for kind in ("pizza", "clock"):
        maps[kind] = closed_form(p, key, kind)
    return {name: m[:, c_out].reshape(p, p) for name, m in maps.items()}
