"""Gromov's analytic network: a known-correct model with a known explanation."""

from __future__ import annotations

import json

import torch

from quadlens.circuit import circuit
from quadlens.data import all_pairs
from quadlens.errors import QuadlensError
from quadlens.evaluate import evaluate
from quadlens.lens import analyze
from quadlens.synth import gromov
from tests.conftest import run_cli


def test_gromov_scores_100_at_p97():
    _, model = gromov(97, 500, seed=0)
    ev = evaluate(model)
    assert ev.accuracy == 1.0 and ev.n_inputs == 97 * 97 and ev.min_margin > 0
    # the circuit view of the MLP-only model is exact
    a, b = all_pairs(97)
    assert torch.allclose(circuit(model).forward_all(), model(a, b), atol=1e-3, rtol=1e-5)


def test_gromov_single_frequency_structure():
    _, model = gromov(31, 120, seed=1)
    an = analyze(model)
    assert all(f.frac_explained > 1 - 1e-6 for f in an.neurons)  # one frequency per neuron
    W = model.W_in.detach().double()
    for f in an.neurons[:10]:  # the recovered amplitudes are the construction's (1 and 1)
        assert abs(f.A_U - 1) < 1e-5 and abs(f.A_V - 1) < 1e-5 and abs(f.B - 1) < 1e-5
        assert torch.allclose(W[:31, f.index].norm(), torch.tensor(31 / 2).sqrt().double(),
                              atol=1e-5)  # fmt: skip
    assert any("not ReLU" in n for n in an.notes)


def test_gromov_run_directory_works_everywhere(tmp_path):
    out = tmp_path / "g"
    res = run_cli("synth", "gromov", "--p", "31", "--width", "200", "--out", str(out), "--json")
    assert res.code == 0, res.err
    made = json.loads(res.out)
    assert json.loads(run_cli("eval", str(out), "--json").out)["accuracy"] == made["accuracy"]
    assert run_cli("info", str(out)).code == 0
    assert run_cli("analyze", str(out), "--no-figures").code == 0
    assert run_cli("synth", "gromov", "--out", str(out)).code == 2  # exists
    assert run_cli("synth", "gromov", "--width", "0", "--out", str(tmp_path / "x")).code == 2


def test_synthetic_pizza_is_its_circuit_and_right_everywhere():
    """The synthetic pizza model's circuit view is pizza_circuit with stratified phases, and the
    model is 100% accurate at every size and seed tried (the certificates' scaling workload)."""
    import pytest

    from quadlens.synth import pizza, pizza_circuit

    for p, width, seed in ((23, 128, 0), (31, 256, 1), (59, 512, 2)):
        cfg, model = pizza(p, width, seed)
        ev = evaluate(model)
        assert ev.accuracy == 1.0 and ev.min_margin > 0, (p, seed)
        c, ref = circuit(model.double()), pizza_circuit(
            p, width, cfg.source["freqs"], 0.01, 0.1, 0.2, seed, stratified=True)
        for name in ("U", "V", "O", "b_in"):  # the weights are stored as float32
            assert torch.allclose(getattr(c, name), getattr(ref, name), atol=1e-6), name
        assert len(cfg.source["freqs"]) == 5 and cfg.model.architecture == "mlp"
    # stratified phases: each frequency's neurons fill the circle one per slot of 2 pi / n_k,
    # so no gap between neighbours reaches two slots (100 random phases leave a gap of ~4.6)
    for stratified, most in ((True, 2.0), (False, None)):
        c = pizza_circuit(31, 200, [3, 7], noise=0.0, secondary=0.0, seed=0,
                          stratified=stratified)  # fmt: skip
        phase = torch.sort(torch.angle(torch.fft.fft(c.U, dim=0)[3, 0::2]) % (2 * torch.pi))[0]
        gaps = torch.diff(torch.cat([phase, phase[:1] + 2 * torch.pi])) / (2 * torch.pi / 100)
        assert (gaps.max() < most) if stratified else (gaps.max() > 2.0)
    for bad in ({"p": 3}, {"width": 0}, {"n_freqs": 20, "p": 31}, {"noise": -1.0},
                {"noise": float("nan")}):
        with pytest.raises(QuadlensError, match=r"must|need"):
            pizza(**{"p": 31, **bad})


def test_synthetic_pizza_run_directory(tmp_path):
    out = tmp_path / "pz"
    res = run_cli("synth", "pizza", "--p", "23", "--width", "128", "--freqs", "5", "--out",
                  str(out), "--json")  # fmt: skip
    assert res.code == 0, res.err
    assert json.loads(res.out)["accuracy"] == 1.0
    cert = json.loads(run_cli("certify", str(out), "--strategy", "interpolation+brute",
                              "--check", "--json").out)["certificates"][0]  # fmt: skip
    assert cert["sound"] and cert["certified_accuracy"] == 1.0
    assert run_cli("synth", "pizza", "--out", str(out)).code == 2  # exists
    alias = tmp_path / "alias"  # --d-mlp, as `quadlens train` spells it, is --width
    assert run_cli("synth", "pizza", "--p", "23", "--d-mlp", "96", "--out", str(alias)).code == 0
    assert json.loads((alias / "config.json").read_text())["model"]["d_mlp"] == 96
    for bad in (["--freqs", "0"], ["--noise", "-0.5"], ["--p", "4"]):
        res = run_cli("synth", "pizza", *bad, "--out", str(tmp_path / "x"))
        assert res.code == 2 and "Traceback" not in res.err, bad
        assert not (tmp_path / "x").exists()
