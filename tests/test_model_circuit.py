"""The circuit view and the fast training path compute exactly the plain forward."""

from __future__ import annotations

import pytest
import torch

from quadlens import fastpath
from quadlens.circuit import circuit
from quadlens.config import ModelConfig
from quadlens.data import all_pairs, labels, make_split
from quadlens.errors import QuadlensError
from quadlens.model import Model

SMALL = dict(p=13, d_model=24, n_heads=3, d_head=8, d_mlp=40)
# 1,095 training pairs: 9 chunks of the fused kernels (the last one short), 2-3 in each part
CHUNKED = dict(SMALL, p=37)


def _perturb_biases(model: Model) -> None:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("b_"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


@pytest.mark.parametrize("activation", ["relu", "gelu", "quadratic", "bilinear"])
@pytest.mark.parametrize(
    "architecture,combine", [("transformer", "concat"), ("mlp", "concat"), ("mlp", "sum")]
)
def test_circuit_view_equals_plain_forward(activation, architecture, combine):
    cfg = ModelConfig(**SMALL, activation=activation, architecture=architecture, combine=combine)
    model = Model(cfg, seed=3).double()
    _perturb_biases(model)
    a, b = all_pairs(cfg.p)
    plain = model(a, b)
    c = circuit(model)
    assert torch.allclose(c.forward_all(), plain, rtol=0, atol=1e-10)
    assert torch.allclose(c.forward(a, b), plain, rtol=0, atol=1e-10)
    # the separable pre-activation itself
    if architecture == "transformer" and activation != "bilinear":
        pre_plain = model.resid_mid(a, b) @ model.W_in + model.b_in
        assert torch.allclose(c.pre(a, b), pre_plain, atol=1e-10)


def test_circuit_refuses_softmax_attention():
    model = Model(ModelConfig(**SMALL, attention_rate=0.5))
    with pytest.raises(QuadlensError, match="does not separate"):
        circuit(model)


def test_pre_activation_separates_only_for_constant_attention():
    """With softmax attention pre[a, b] is not U[a] + V[b]: its double difference is non-zero."""
    a, b = all_pairs(SMALL["p"])
    for rate, separable in ((1.0, True), (0.0, False)):
        model = Model(ModelConfig(**SMALL, attention_rate=rate), seed=0).double()
        pre = (model.resid_mid(a, b) @ model.W_in).reshape(SMALL["p"], SMALL["p"], -1)
        dd = pre - pre[:1] - pre[:, :1] + pre[:1, :1]  # zero iff pre = f(a) + g(b)
        assert (dd.abs().max() < 1e-10) == separable


@pytest.mark.parametrize("shape", [SMALL, CHUNKED], ids=["p13", "p37"])
@pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "torch"])
@pytest.mark.parametrize("activation", ["relu", "quadratic"])
def test_fast_path_gradients_equal_autograd(activation, kernels, shape):
    cfg = ModelConfig(**shape, activation=activation)
    model = Model(cfg, seed=5).double()
    _perturb_biases(model)
    split = make_split(cfg.p, 0, 0.7)
    y = labels(cfg.p)[split.train]
    P = {k: getattr(model, k).detach()[None] for k in fastpath.FAST_PARAMS}
    loss, grads = fastpath.Step(P, split.train[None], y[None], activation, kernels)()

    a, b = all_pairs(cfg.p)
    ref_loss = torch.nn.functional.cross_entropy(model(a[split.train], b[split.train]), y)
    ref = torch.autograd.grad(ref_loss, [getattr(model, k) for k in fastpath.FAST_PARAMS])
    assert abs(float(loss[0]) - float(ref_loss.detach())) < 1e-12
    for name, g in zip(fastpath.FAST_PARAMS, ref, strict=True):
        assert torch.allclose(grads[0][name], g, rtol=1e-9, atol=1e-12), name


@pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "torch"])
def test_fast_path_batched_models_equal_separate(kernels):
    """The leading model axis: two models with their own pairs give their own results."""
    cfg = ModelConfig(**SMALL)
    models = [Model(cfg, seed=s).double() for s in (0, 1)]
    splits = [make_split(cfg.p, s, 0.8) for s in (0, 1)]
    P = {k: torch.stack([getattr(m, k).detach() for m in models]) for k in fastpath.FAST_PARAMS}
    pairs = torch.stack([s.train for s in splits])
    y = labels(cfg.p)[pairs]
    loss, grads = fastpath.Step(P, pairs, y, "relu", kernels)()
    for i, m in enumerate(models):
        Pi = {k: getattr(m, k).detach()[None] for k in fastpath.FAST_PARAMS}
        li, gi = fastpath.Step(Pi, pairs[i : i + 1], y[i : i + 1], "relu", kernels)()
        assert abs(float(loss[i]) - float(li[0])) < 1e-12
        for k in fastpath.FAST_PARAMS:
            assert torch.allclose(grads[i][k], gi[0][k], atol=1e-12), k


def _chunked_batch(activation: str):
    cfg = ModelConfig(**CHUNKED, activation=activation)
    models = [Model(cfg, seed=s) for s in (3, 4, 5)]
    for m in models:
        _perturb_biases(m)
    P = {k: torch.stack([getattr(m, k).detach() for m in models]) for k in fastpath.FAST_PARAMS}
    pairs = torch.stack([make_split(cfg.p, s, 0.8).train for s in range(3)])
    return P, pairs, labels(cfg.p)[pairs]


@pytest.mark.parametrize("activation", ["relu", "quadratic"])
def test_fused_kernels_agree_with_the_torch_operations(activation):
    """In float32 the fused CPU step (chunks of pairs, partial sums) and the torch path (CUDA's:
    one product over all pairs) round differently but compute the same loss and gradients."""
    P, pairs, y = _chunked_batch(activation)
    lk, gk = fastpath.Step(P, pairs, y, activation, kernels=True)()
    lt, gt = fastpath.Step(P, pairs, y, activation, kernels=False)()
    assert torch.allclose(lk, lt, rtol=1e-6, atol=0)
    for s in range(3):
        for k in fastpath.FAST_PARAMS:
            scale = float(gt[s][k].abs().max())
            assert scale > 0, (s, k)
            assert float((gk[s][k] - gt[s][k]).abs().max()) < 1e-5 * scale, (s, k)


@pytest.mark.parametrize("activation", ["relu", "quadratic"])
def test_fused_kernels_bits_are_fixed(activation):
    """The fused step's bits depend on nothing but the model and its pairs: not on the number of
    threads, nor on the other models of a batch (each model of a batch of three equals its own
    single-model step bit for bit, in the layout AdamW sees)."""
    P, pairs, y = _chunked_batch(activation)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        l_one, g_one = fastpath.Step(P, pairs, y, activation, kernels=True)()
        torch.set_num_threads(2)
        lk, gk = fastpath.Step(P, pairs, y, activation, kernels=True)()
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(l_one, lk)
    for s in range(3):
        for k in fastpath.FAST_PARAMS:
            assert torch.equal(g_one[s][k], gk[s][k]), (s, k)
    P1 = {k: v[1:2].clone() for k, v in P.items()}
    l1, g1 = fastpath.Step(P1, pairs[1:2], y[1:2], activation, kernels=True)()
    assert torch.equal(l1[0], lk[1])
    for k in fastpath.FAST_PARAMS:
        assert torch.equal(g1[0][k], gk[1][k]), k
        assert g1[0][k].stride() == gk[1][k].stride(), k  # AdamW sees the same layout


def test_init_is_seeded_and_scaled():
    cfg = ModelConfig()
    m0, m0b, m1 = Model(cfg, 0), Model(cfg, 0), Model(cfg, 1)
    for (n, p), q, r in zip(m0.named_parameters(), m0b.parameters(), m1.parameters(), strict=True):
        assert torch.equal(p, q)
        if n.startswith("b_"):
            assert not p.any()
        else:
            assert not torch.equal(p, r)
    # the paper's init: N(0, 0.64 / d_model)
    var = float(m0.W_in.detach().var())
    assert abs(var - 0.64 / 128) / (0.64 / 128) < 0.02
