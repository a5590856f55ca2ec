"""The quadrature lens: exact recovery on synthetic circuits, the identities it rests on, the
vote criterion against brute force, and the findings on real checkpoints."""

from __future__ import annotations

import json
import math

import pytest
import torch

from quadlens import fourier
from quadlens.circuit import Circuit
from quadlens.config import ModelConfig
from quadlens.imports import import_zhong
from quadlens.lens import G_values, analyze
from quadlens.model import Model
from tests.conftest import run_cli

P = 31


def synthetic(freqs, phis, A_U, A_V, B, psis, p=P, sec=None, b_in=None):
    """A circuit whose neurons are exactly the given cosines (plus per-neuron constants)."""
    n = len(freqs)
    x = torch.arange(p, dtype=torch.float64)[:, None]
    k = torch.tensor(freqs, dtype=torch.float64)
    w = 2 * math.pi * k / p
    phis, psis = torch.tensor(phis, dtype=torch.float64), torch.tensor(psis, dtype=torch.float64)
    const = torch.linspace(-0.3, 0.4, n, dtype=torch.float64)
    U = torch.tensor(A_U, dtype=torch.float64) * torch.cos(w * x + phis) + const
    V = torch.tensor(A_V, dtype=torch.float64) * torch.cos(w * x + phis) - const
    if sec is not None:  # (amplitudes, phases) of a component at 2k, on U and V alike
        amp, chi = (torch.tensor(t, dtype=torch.float64) for t in sec)
        U = U + amp * torch.cos(2 * w * x + chi)
        V = V + amp * torch.cos(2 * w * x + chi)
    O = (torch.tensor(B, dtype=torch.float64) * torch.cos(w * x + psis)).T.contiguous()
    cfg = ModelConfig(p=p, d_model=8, n_heads=1, d_head=8, d_mlp=n)
    zeros = torch.zeros(p, p, dtype=torch.float64)
    bias = torch.zeros(n, dtype=torch.float64) if b_in is None else b_in
    return Circuit(cfg, U, V, bias, O, zeros, zeros, torch.zeros(p, dtype=torch.float64))


def test_fft_equals_explicit_dft():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(P, dtype=torch.float64, generator=gen)
    X = fourier.coefficients(x)
    for k in (1, 5, (P - 1) // 2):
        assert abs(complex(X[k - 1]) - fourier.explicit_dft(x, k)) < 1e-10
    for k in (20, 2 * 14):  # beyond (p-1)/2: the doubled frequencies
        got = complex(fourier.coefficient_at(x[None], torch.tensor([k]), dim=1)[0])
        assert abs(got - fourier.explicit_dft(x, k % P)) < 1e-10


@pytest.mark.parametrize("theta,y", [(0.3, 1.1), (2.0, -0.7), (-1.2, 2.9)])
def test_integral_identities(theta, y):
    """int ReLU(cos(t + phi)) cos(y + 2 phi) dphi = (2/3) cos(2t - y); |cos| gives 4/3; the
    linear part integrates to 0 (science.md §3). Midpoint rule, exact up to 1e-9 here."""
    n = 200_000
    phi = (torch.arange(n, dtype=torch.float64) + 0.5) * 2 * math.pi / n
    d = 2 * math.pi / n
    c = torch.cos(theta + phi)
    out = torch.cos(y + 2 * phi)
    target = math.cos(2 * theta - y)
    assert abs(float((torch.relu(c) * out).sum() * d) - 2 / 3 * target) < 1e-9
    assert abs(float((c.abs() * out).sum() * d) - 4 / 3 * target) < 1e-9
    assert abs(float((c * out).sum() * d)) < 1e-9


def test_synthetic_neurons_are_recovered_exactly():
    freqs = [3, 3, 7, 11, 11, 11]
    phis = [0.4, -2.0, 1.3, 2.9, -0.2, 0.9]
    A_U = [1.0, 0.7, 1.5, 0.9, 1.1, 0.6]
    A_V = [1.2, 0.7, 1.4, 0.9, 1.0, 0.8]
    B = [0.5, 1.3, 0.8, 1.0, 0.2, 0.9]
    psis = [2 * f for f in phis]
    sec = ([0.1, 0.05, 0.2, 0.0, 0.3, 0.15], [2 * f + math.pi for f in phis])
    an = analyze(synthetic(freqs, phis, A_U, A_V, B, psis, sec=sec))
    for i, f in enumerate(an.neurons):
        assert f.freq == freqs[i]
        assert f.A_U == pytest.approx(A_U[i], abs=1e-10)
        assert f.A_V == pytest.approx(A_V[i], abs=1e-10)
        assert f.B == pytest.approx(B[i], abs=1e-10)
        assert abs(fourier.wrap(torch.tensor(f.phi - phis[i]))) < 1e-10
        assert abs(f.psi_err) < 1e-10 and abs(f.uv_phase_err) < 1e-10
        assert f.secondary_amp_U == pytest.approx(sec[0][i], abs=1e-10)
        assert f.secondary_freq == min(2 * freqs[i] % P, P - 2 * freqs[i] % P)
        if sec[0][i] > 0:
            assert abs(f.secondary_phase_err) < 1e-10
        explained = (A_U[i] ** 2 + A_V[i] ** 2) / (A_U[i] ** 2 + A_V[i] ** 2 + 2 * sec[0][i] ** 2)
        assert f.frac_explained == pytest.approx(explained, abs=1e-10)
    sizes = {cl.freq: cl.n_neurons for cl in an.clusters}
    assert sizes == {3: 2, 7: 1, 11: 3}
    for cl in an.clusters:
        members = [i for i, k in enumerate(freqs) if k == cl.freq]
        v = sum(2 * (A_U[i] + A_V[i]) / 2 * B[i] for i in members)
        assert cl.C_k == pytest.approx(v / (3 * math.pi), rel=1e-12)


def test_neurons_that_carry_a_second_key_frequency_are_counted():
    """next_freq / next_frac are each neuron's second-strongest input frequency and its share of
    the input power, and frac_key_mixing counts the key-cluster neurons whose second frequency
    is another key frequency with >= 5% of their power: not a weaker one, not a non-key one."""
    freqs = [3, 3, 7, 11, 11, 11]
    phis = [0.4, -2.0, 1.3, 2.9, -0.2, 0.9]
    A = [1.0, 0.7, 1.5, 0.9, 1.1, 0.6]
    c = synthetic(freqs, phis, A, A, [1.0] * 6, [2 * f for f in phis])
    x = torch.arange(P, dtype=torch.float64)
    extra = {0: (11, 0.5), 1: (11, 0.1), 2: (5, 0.6)}  # neuron: (frequency, amplitude)
    for i, (k, m) in extra.items():
        wave = m * torch.cos(2 * math.pi * k * x / P + 0.3)
        c.U[:, i] += wave
        c.V[:, i] += wave
    an = analyze(c)
    assert an.key_frequencies == [3, 7, 11]
    for i, (k, m) in extra.items():
        f = an.neurons[i]
        assert f.freq == freqs[i] and f.next_freq == k
        assert f.next_frac == pytest.approx(m**2 / (A[i] ** 2 + m**2), abs=1e-10)
    # neuron 0 mixes in key frequency 11 (17%); neuron 1's 11 carries 2%, neuron 2's 5 is no key
    assert an.neurons[1].next_frac < 0.05 < an.neurons[2].next_frac
    assert an.frac_key_mixing == pytest.approx(1 / 6)
    mix = {cl.freq: (cl.frac_key_mixing, cl.mixed_with) for cl in an.clusters}
    assert mix == {3: (0.5, [11]), 7: (0.0, []), 11: (0.0, [])}


def _ideal_cluster(k, n, p=P, seed=0):
    gen = torch.Generator().manual_seed(seed)
    phis = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 * math.pi).tolist()
    amps = (0.5 + torch.rand(n, generator=gen, dtype=torch.float64)).tolist()
    B = (0.5 + torch.rand(n, generator=gen, dtype=torch.float64)).tolist()
    c = synthetic([k] * n, phis, amps, amps, B, [2 * f for f in phis], p=p)
    c = Circuit(c.cfg, c.U - c.U.mean(0), c.V - c.V.mean(0), c.b_in, c.O, c.D_a, c.D_b,
                c.logit_bias)  # fmt: skip
    v = [2 * a * b for a, b in zip(amps, B, strict=True)]
    return c, torch.tensor(phis, dtype=torch.float64), torch.tensor(v, dtype=torch.float64)


def _brute_cluster_logits(c):
    p = c.cfg.p
    pre = (c.U[:, None, :] + c.V[None, :, :]).reshape(p * p, -1)
    return torch.relu(pre) @ c.O  # [a * p + b, c]


def _x_index(k, p):
    """Index j of x_j = pi j / p for each (a, b): x = w (a+b)/2, shifted by pi when s < 0."""
    a = torch.arange(p)
    j = (k * (a[:, None] + a[None, :])) % (2 * p)
    s = torch.cos(math.pi * k * (a[:, None] - a[None, :]).double() / p)
    return torch.where(s < 0, (j + p) % (2 * p), j).reshape(-1), s.reshape(-1)


@pytest.mark.parametrize("k,n", [(1, 6), (5, 9), (12, 40)])
def test_G_equals_brute_force_for_idealised_neurons(k, n):
    c, phis, v = _ideal_cluster(k, n)
    brute = _brute_cluster_logits(c)
    G = G_values(phis, 2 * phis, v, P)
    j, s = _x_index(k, P)
    a = torch.arange(P)
    ab = (a[:, None] + a[None, :]).reshape(-1)
    w = 2 * math.pi * k / P
    phase = w * (torch.arange(P)[None, :] - ab[:, None]).double()
    predicted = s.abs()[:, None] * (torch.exp(1j * phase) * G[j][:, None]).real
    assert torch.allclose(predicted, brute, atol=1e-10)


def test_vote_criterion_is_pi_over_p_not_w_over_2():
    """A cluster's own logits pick c = a + b exactly when |arg G_k(x)| < pi / p (brute force),
    and there are x with pi/p < |arg G| < w_k / 2 where the vote is wrong."""
    k = 9
    seen_between = 0
    for seed in range(6):
        c, phis, v = _ideal_cluster(k, 4, seed=seed)  # few neurons: a rough quadrature
        brute = _brute_cluster_logits(c)
        G = G_values(phis, 2 * phis, v, P)
        j, _ = _x_index(k, P)
        arg = torch.angle(G[j]).abs()
        top2 = brute.topk(2, dim=1).values
        clear = (top2[:, 0] - top2[:, 1]) > 1e-9
        a = torch.arange(P)
        right = brute.argmax(1) == ((a[:, None] + a[None, :]) % P).reshape(-1)
        assert torch.equal(right[clear], (arg < math.pi / P)[clear])
        between = clear & (arg > math.pi / P) & (arg < math.pi * k / P)
        assert not right[between].any()
        seen_between += int(between.sum())
    assert seen_between > 0


def test_zhong_fixture_findings(zhong_paths):
    _, model = import_zhong(*zhong_paths)
    an = analyze(model)
    assert an.applicable and an.accuracy == 1.0
    assert 3 <= len(an.key_frequencies) <= 5
    assert an.frac_psi_2phi >= 0.9
    key = [cl for cl in an.clusters if cl.key]
    assert all(cl.vote_correct for cl in key)
    assert an.fve["pizza_secondary"] > an.fve["pizza"] > 0.5
    assert an.notes == []


def test_not_applicable_and_degenerate_models_are_reported(tmp_path):
    clock = Model(ModelConfig(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=16, attention_rate=0.0))
    an = analyze(clock)
    assert not an.applicable and an.notes[0].startswith("attention is not constant")
    gelu = analyze(Model(ModelConfig(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=16,
                                     activation="gelu")))  # fmt: skip
    assert gelu.fve["pizza"] is None and any("not ReLU" in n for n in gelu.notes)
    untrained = analyze(Model(ModelConfig(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=16)))
    assert any("accurate, not 100%" in n for n in untrained.notes)
    assert any("dominant frequency" in n for n in untrained.notes)  # random neurons
    assert any("phase(U) != phase(V)" in n for n in untrained.notes)


def test_analyze_cli_json_contract(tiny_run):
    res = run_cli("analyze", str(tiny_run), "--json", "--no-figures")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    saved = json.loads((tiny_run / "analysis" / "analysis.json").read_text())
    assert data == saved
    assert isinstance(data["key_frequencies"], list) and data["key_frequencies"]
    assert all(isinstance(k, int) for k in data["key_frequencies"])
    for cl in data["clusters"]:
        assert {"freq", "n_neurons", "C_k", "quadrature_rel_error", "vote_correct"} <= set(cl)
    assert {"pizza", "clock", "pizza_secondary"} <= set(data["fve"])
    assert len(data["neurons"]) == 64
    text = run_cli("analyze", str(tiny_run))
    assert text.code == 0 and "key frequencies:" in text.out
    for name in ("spectrum", "phase_wheels", "quadrature", "logits", "secondary"):
        for ext in ("png", "svg"):
            assert (tiny_run / "analysis" / f"{name}.{ext}").stat().st_size > 1000


def test_analyze_cli_on_clock_run_explains_and_exits_cleanly(tmp_path):
    from tests.conftest import TINY_ARGS

    out = tmp_path / "clock"
    assert run_cli("train", *TINY_ARGS, "--attention-rate", "0", "--epochs", "50", "--out",
                   str(out)).code == 0  # fmt: skip
    res = run_cli("analyze", str(out))
    assert res.code == 0 and res.out.count("quadrature view does not apply") == 1
    data = json.loads(run_cli("analyze", str(out), "--json").out)
    assert data["applicable"] is False
