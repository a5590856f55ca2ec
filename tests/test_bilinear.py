"""Bilinear MLPs read by eigendecomposition: exact quadratic forms and the ideal structure."""

from __future__ import annotations

import math

import pytest
import torch

from quadlens.bilinear import analyze_bilinear, interaction_matrices, quadratic_logits
from quadlens.circuit import Circuit
from quadlens.config import ModelConfig
from quadlens.data import all_pairs
from quadlens.errors import QuadlensError
from quadlens.model import Model

P = 17


@pytest.mark.parametrize("architecture", ["transformer", "mlp"])
@pytest.mark.parametrize("activation", ["bilinear", "quadratic"])
def test_tensor_contraction_equals_forward(architecture, activation):
    cfg = ModelConfig(p=P, d_model=24, n_heads=3, d_head=8, d_mlp=30, activation=activation,
                      architecture=architecture)  # fmt: skip
    model = Model(cfg, seed=2).double()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith("b_"):
                param.normal_(generator=torch.Generator().manual_seed(len(name)))
    a, b = all_pairs(P)
    with torch.no_grad():
        ref = model(a, b)
    got = quadratic_logits(interaction_matrices(model))
    assert torch.allclose(got, ref, rtol=1e-10, atol=1e-10)


def ideal(k: int, alpha: float = 1.0) -> Circuit:
    """Four bilinear neurons computing exactly alpha cos(w (a + b - c))."""
    x = torch.arange(P, dtype=torch.float64)
    w = 2 * math.pi * k / P
    cos, sin, z = torch.cos(w * x), torch.sin(w * x), torch.zeros(P, dtype=torch.float64)
    # h1 = cos a cos b, h2 = sin a sin b, h3 = sin a cos b, h4 = cos a sin b
    U = torch.stack([cos, sin, sin, cos], 1)
    Vg = torch.stack([cos, sin, cos, sin], 1)
    O = alpha * torch.stack([cos, -cos, sin, sin])  # [neuron, c]
    zeros4 = torch.zeros(4, dtype=torch.float64)
    cfg = ModelConfig(p=P, d_model=8, n_heads=1, d_head=8, d_mlp=4, activation="bilinear")
    zp = torch.zeros(P, P, dtype=torch.float64)
    U0 = torch.stack([z] * 4, 1)
    return Circuit(cfg, U, U0, zeros4, O, zp, zp, torch.zeros(P, dtype=torch.float64),
                   U0, Vg, zeros4)  # fmt: skip


def test_ideal_model_has_four_eigenvalues_p_over_4():
    c = ideal(3, alpha=2.0)
    a = torch.arange(P, dtype=torch.float64)
    want = 2.0 * torch.cos(2 * math.pi * 3 * (a[:, None, None] + a[None, :, None]
                                              - a[None, None, :]) / P)  # fmt: skip
    assert torch.allclose(c.forward_all(), want.reshape(P * P, P), atol=1e-12)
    rep = analyze_bilinear(c)
    assert rep.exact_max_error < 1e-10
    for vals in rep.eigenvalues_top:
        assert sorted(round(abs(v), 9) for v in vals[:4]) == [round(2.0 * P / 4, 9)] * 4
        assert all(abs(v) < 1e-9 for v in vals[4:])
    assert rep.topk_accuracy[0] < 0.2 and rep.topk_accuracy[4] == 1.0
    top = rep.eigenspaces_class0[:2]
    assert [s.multiplicity for s in top] == [2, 2] and all(s.freq == 3 for s in top)
    assert all(s.freq_share > 1 - 1e-9 for s in top)
    assert abs(rep.predicted_quarter_p[0]["ratio_to_p_over_4_alpha"] - 1) < 1e-9


def test_refuses_relu():
    with pytest.raises(QuadlensError, match="bilinear"):
        analyze_bilinear(Model(ModelConfig(p=P, d_model=8, n_heads=1, d_head=8, d_mlp=4)))


def test_bilinear_cli_on_a_gromov_run(tmp_path):
    import json

    from tests.conftest import run_cli

    out = tmp_path / "g"
    assert run_cli("synth", "gromov", "--p", "17", "--width", "60", "--out", str(out)).code == 0
    res = run_cli("bilinear", str(out), "--json", "--max-k", "10")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["exact_max_error"] < 1e-3 and len(data["topk_accuracy"]) == 11
    assert (out / "analysis" / "bilinear.png").is_file()
    relu = tmp_path / "relu"
    from quadlens.config import RunConfig
    from quadlens.rundir import save_model, write_json

    cfg = RunConfig(ModelConfig(p=P, d_model=8, n_heads=1, d_head=8, d_mlp=4), train=None)
    relu.mkdir()
    write_json(relu / "config.json", cfg.to_dict())
    save_model(relu, cfg, Model(cfg.model))
    bad = run_cli("bilinear", str(relu))
    assert bad.code == 2 and "bilinear" in bad.err
