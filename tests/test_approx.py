"""Closed-form polynomial approximants: coefficients vs Monte Carlo least squares, and the
quadratic form of the quadratic approximant."""

from __future__ import annotations

import json

import pytest
import torch

from quadlens.approx import (
    analyze_approximants,
    approximate_hidden,
    coefficients,
    quadratic_form,  # fmt: skip
)
from quadlens.bilinear import quadratic_logits
from quadlens.circuit import circuit
from quadlens.config import ModelConfig
from quadlens.model import Model
from tests.conftest import run_cli


@pytest.mark.parametrize("m,s", [(0.0, 1.0), (0.7, 0.5), (-1.3, 2.0)])
def test_neuron_coefficients_match_monte_carlo_least_squares(m, s):
    gen = torch.Generator().manual_seed(0)
    n = 400_000
    u = torch.randn(n, generator=gen, dtype=torch.float64)
    z = m + s * u
    target = torch.relu(z)
    design = torch.stack([torch.ones(n, dtype=torch.float64), z - m, (z - m) ** 2 - s**2], 1)
    fit = torch.linalg.lstsq(design, target[:, None]).solution[:, 0]
    # closed form from a "pre-activation" with exactly this mean and sd
    pre = torch.tensor([[m - s], [m + s]], dtype=torch.float64)
    k = coefficients(pre)
    closed = torch.tensor([float(k.c0[0]), float(k.c1[0]), float(k.c2[0])])
    # Monte Carlo standard errors are ~ s / sqrt(n) for c0, c1 and ~ 1 / (s sqrt(n)) for c2
    tol = torch.tensor([6 * s, 6.0, 6 / s]) / n**0.5
    assert ((fit - closed).abs() < tol).all(), (fit, closed)


def test_multivariate_linear_approximant_matches_monte_carlo():
    """Under a Gaussian with the MLP inputs' mean and covariance, the least-squares linear fit of
    the whole MLP equals the closed form W_in diag(Phi(alpha)) W_out (within sampling error)."""
    model = Model(ModelConfig(p=13, d_model=12, n_heads=3, d_head=4, d_mlp=20), seed=3).double()
    from quadlens.data import all_pairs

    a, b = all_pairs(13)
    with torch.no_grad():
        X = model.resid_mid(a, b)  # the MLP inputs [p^2, d_model]
        mu = X.mean(0)
        cov = torch.cov(X.T, correction=0)
        evals, evecs = torch.linalg.eigh(cov)
        root = evecs * evals.clamp_min(0).sqrt()
        gen = torch.Generator().manual_seed(1)
        n = 200_000
        xs = mu + torch.randn(n, 12, generator=gen, dtype=torch.float64) @ root.T
        ys = torch.relu(xs @ model.W_in + model.b_in) @ model.W_out
        design = torch.cat([torch.ones(n, 1, dtype=torch.float64), xs - mu], 1)
        fit = torch.linalg.lstsq(design, ys).solution[1:]  # slopes [d_model, d_model]
        k = coefficients(X @ model.W_in + model.b_in)
        closed = (model.W_in * k.c1) @ model.W_out
    # compare on the directions the inputs actually span (the covariance may be singular)
    span = evecs[:, evals > 1e-9 * evals.max()]
    rel = float(((fit - closed).T @ span).norm() / (closed.T @ span).norm())
    assert rel < 0.02, rel


def test_quadratic_form_reproduces_the_quadratic_approximant():
    model = Model(ModelConfig(p=11, d_model=12, n_heads=3, d_head=4, d_mlp=20), seed=5).double()
    c = circuit(model)
    Q = quadratic_form(model)
    with torch.no_grad():
        pre = (c.U[:, None, :] + c.V[None, :, :] + c.b_in).reshape(121, -1)
        k = coefficients(pre)
        want = approximate_hidden(pre, k, 2) @ c.O
        want = want + (c.D_a[:, None, :] + c.D_b[None, :, :]).reshape(121, 11) + c.logit_bias
    assert torch.allclose(quadratic_logits(Q), want, atol=1e-10)


def test_approx_on_a_trained_model_and_cli(tiny_run):
    from quadlens.rundir import load_run

    rep = analyze_approximants(load_run(tiny_run)[1])
    assert rep.fve["quadratic"] > rep.fve["linear"]
    res = run_cli("approx", str(tiny_run), "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["fve"] == rep.fve
    assert (tiny_run / "analysis" / "approx.png").stat().st_size > 1000
