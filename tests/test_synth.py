"""Gromov's analytic network: a known-correct model with a known explanation."""

from __future__ import annotations

import json

import torch

from quadlens.circuit import circuit
from quadlens.data import all_pairs
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
