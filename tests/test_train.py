"""Training: reaches 100%, is reproducible bit for bit, and resumes bit-identically."""

from __future__ import annotations

import json

import pytest
import torch

from quadlens import rundir
from quadlens.config import ModelConfig, RunConfig, TrainConfig
from quadlens.errors import QuadlensError
from quadlens.train import lr_at, train, uses_fast_path
from tests.conftest import tiny


def _weights(run):
    tensors, _ = rundir.load_tensors(run / rundir.WEIGHTS)
    return tensors


def test_tiny_pizza_reaches_100_percent(tmp_path):
    out = tmp_path / "run"
    rundir.prepare_out_dir(out, overwrite=False)
    result = train(tiny(), out, device="cpu", progress=False)
    assert uses_fast_path(result.model)
    assert result.eval.accuracy == 1.0 and result.eval.min_margin > 0
    rows = [json.loads(x) for x in (out / rundir.METRICS).read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(0, 1001, 100))
    assert rows[-1]["test_acc"] == 1.0 and rows[-1]["train_acc"] == 1.0
    assert rows[0]["test_acc"] < 0.2  # it starts at chance
    for name in (rundir.CONFIG, rundir.WEIGHTS, rundir.ENVIRONMENT):
        assert (out / name).is_file()
    assert not (out / rundir.CHECKPOINT).exists()
    env = json.loads((out / rundir.ENVIRONMENT).read_text())
    assert env["versions"]["torch"].startswith("2.13.0")
    # weights carry the config in their metadata
    _, meta = rundir.load_tensors(out / rundir.WEIGHTS)
    assert RunConfig.from_dict(json.loads(meta["config"])) == tiny()


def test_same_seed_same_weights_bit_for_bit(tmp_path):
    cfg = tiny(epochs=150)
    a = train(cfg, None, device="cpu", progress=False).model
    b = train(cfg, None, device="cpu", progress=False).model
    c = train(tiny(epochs=150, seed=1), None, device="cpu", progress=False).model
    for (name, x), y, z in zip(a.named_parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(x, y), name
        assert not torch.equal(x, z), name  # another seed: another init and training


@pytest.mark.parametrize("how", ["ctrl-c", "killed"])
def test_resume_is_bit_identical(tmp_path, how):
    cfg = tiny(epochs=600)
    full = tmp_path / "full"
    rundir.prepare_out_dir(full, overwrite=False)
    train(cfg, full, device="cpu", progress=False)

    part = tmp_path / "part"
    rundir.prepare_out_dir(part, overwrite=False)
    stop_at = 300 if how == "ctrl-c" else 500  # "killed": no save at the interrupt

    def interrupt(row):
        if row["epoch"] == stop_at:
            raise KeyboardInterrupt if how == "ctrl-c" else SystemExit("killed")

    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(cfg, part, device="cpu", progress=False, on_metrics=interrupt)
    assert (part / rundir.CHECKPOINT).exists() and not (part / rundir.WEIGHTS).exists()
    _, meta = rundir.load_tensors(part / rundir.CHECKPOINT)
    assert int(meta["step"]) == (300 if how == "ctrl-c" else 400)  # last periodic checkpoint

    resumed = train(cfg, part, device="cpu", progress=False, resume=True)
    assert resumed.epochs_run == 600 - int(meta["step"])
    wf, wp = _weights(full), _weights(part)
    for name in wf:
        assert torch.equal(wf[name], wp[name]), name
    assert (full / rundir.METRICS).read_text() == (part / rundir.METRICS).read_text()


def test_general_path_trains_clock_and_gelu_models():
    """Softmax attention and GELU go through autograd; the loss falls and accuracy rises."""
    for model_cfg in (
        ModelConfig(p=23, d_model=32, n_heads=4, d_head=8, d_mlp=64, attention_rate=0.0),
        ModelConfig(p=23, d_model=32, n_heads=4, d_head=8, d_mlp=64, activation="gelu"),
        ModelConfig(p=23, d_model=32, d_mlp=64, architecture="mlp", activation="quadratic"),
    ):
        rows = []
        cfg = RunConfig(model_cfg, TrainConfig(epochs=400, lr=3e-3, log_every=400))
        res = train(cfg, None, device="cpu", progress=False, on_metrics=rows.append)
        assert not uses_fast_path(res.model)
        assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"]
        assert rows[-1]["train_acc"] > 0.5


def test_warmup_schedule():
    cfg = tiny()
    assert lr_at(0, cfg) == 0.0
    assert lr_at(5, cfg) == pytest.approx(0.5 * 3e-3)
    assert lr_at(10, cfg) == lr_at(500, cfg) == 3e-3


def test_divergence_is_reported():
    cfg = RunConfig(
        ModelConfig(p=5, d_model=8, n_heads=2, d_head=4, d_mlp=8),
        TrainConfig(epochs=50, lr=1e30, warmup_epochs=0, log_every=10),
    )
    with pytest.raises(QuadlensError, match="diverged"):
        train(cfg, None, device="cpu", progress=False)


def test_adamw_equals_torch_fused_adamw_bit_for_bit():
    from quadlens.model import Model
    from quadlens.optim import AdamW

    cfg = ModelConfig(p=13, d_model=24, n_heads=3, d_head=8, d_mlp=40)
    a, b = Model(cfg, seed=0), Model(cfg, seed=0)
    ours = AdamW(a.trainable(), betas=(0.9, 0.98), weight_decay=1.0)
    ref = torch.optim.AdamW(
        [p for _, p in b.trainable()], lr=1e-3, betas=(0.9, 0.98), weight_decay=1.0, fused=True
    )
    gen = torch.Generator().manual_seed(0)
    for step in range(5):
        lr = 1e-3 * min(step / 2, 1)
        for (_, p), (_, q) in zip(a.trainable(), b.trainable(), strict=True):
            g = torch.randn(p.shape, generator=gen)
            p.grad, q.grad = g.clone(), g.clone()
        ref.param_groups[0]["lr"] = lr
        ours.step(lr)
        ref.step()
    for (n, p), (_, q) in zip(a.trainable(), b.trainable(), strict=True):
        assert torch.equal(p, q), n


def test_adamw_reads_gradients_in_any_layout():
    """torch's CPU fused AdamW kernel reads a gradient's memory in its parameter's layout; a
    permuted gradient (the fast path's W_V gradient was one until 2026-12-06) must still give
    the update of the unfused reference, which honours strides."""
    from quadlens.optim import AdamW

    gen = torch.Generator().manual_seed(0)
    shape = (3, 5, 4)
    p0 = torch.randn(shape, generator=gen)
    ours_p, ref_p = torch.nn.Parameter(p0.clone()), torch.nn.Parameter(p0.clone())
    ours = AdamW([("w", ours_p)], betas=(0.9, 0.98), weight_decay=1.0)
    ref = torch.optim.AdamW([ref_p], lr=1e-2, betas=(0.9, 0.98), weight_decay=1.0,
                            foreach=False, fused=False)  # fmt: skip
    for _ in range(3):
        g = torch.randn(5, 3, 4, generator=gen).permute(1, 0, 2)  # [3, 5, 4], not contiguous
        assert not g.is_contiguous()
        ours_p.grad, ref_p.grad = g, g.clone()
        ours.step(1e-2)
        ref.step()
    assert torch.allclose(ours_p, ref_p, rtol=0, atol=1e-6)
    assert float((ours_p.detach() - p0).abs().median()) > 1e-3  # the parameter moved


@pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "torch"])
def test_fast_path_training_steps_equal_autograd_and_reference_adamw(kernels):
    """Three training steps of the fast path (its gradients, then our AdamW) equal autograd
    through the plain forward followed by torch's unfused AdamW, parameter by parameter (in
    float64, so that no gradient is small enough for rounding to flip an update's sign)."""
    from quadlens import fastpath
    from quadlens.data import all_pairs, labels, make_split
    from quadlens.model import Model
    from quadlens.optim import AdamW

    cfg = ModelConfig(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=24)
    fast, ref = Model(cfg, seed=2).double(), Model(cfg, seed=2).double()
    P = {k: torch.stack([getattr(fast, k).detach()]) for k in fastpath.FAST_PARAMS}
    for k in fastpath.FAST_PARAMS:
        getattr(fast, k).data = P[k][0]  # the model views the stack, as in training
    split = make_split(cfg.p, 0, 0.8)
    y = labels(cfg.p)[split.train]
    step = fastpath.Step(P, split.train[None], y[None], "relu", kernels)
    ours = AdamW(fast.trainable(), betas=(0.9, 0.98), weight_decay=1.0)
    ref_opt = torch.optim.AdamW([q for _, q in ref.trainable()], lr=1e-2, betas=(0.9, 0.98),
                                weight_decay=1.0, foreach=False, fused=False)  # fmt: skip
    a, b = all_pairs(cfg.p)
    for _ in range(3):
        _, grads = step()
        for k in fastpath.FAST_PARAMS:
            getattr(fast, k).grad = grads[0][k]
        ours.step(1e-2)
        ref_opt.zero_grad()
        torch.nn.functional.cross_entropy(ref(a[split.train], b[split.train]), y).backward()
        ref_opt.step()
    for k in fastpath.FAST_PARAMS:
        assert torch.allclose(getattr(fast, k), getattr(ref, k), rtol=0, atol=1e-9), k


def test_batched_training_matches_single_runs(tmp_path):
    """Three models of one shape with their own seeds, learning rates and weight decays,
    trained in one batch on the CPU: each is bit-identical to its own `train` run (and a batch
    of one writing a run directory to `train` without one)."""
    from quadlens.train import train_batch

    cfgs = [tiny(seed=4), tiny(seed=6, lr=2.5e-3), tiny(seed=7, weight_decay=1.5)]
    out = tmp_path / "one"
    rundir.prepare_out_dir(out, overwrite=False)
    (alone,) = train_batch([tiny(epochs=300, seed=5)], [out], device="cpu")
    single = train(tiny(epochs=300, seed=5), None, device="cpu", progress=False)
    assert all(
        torch.equal(x, y)
        for x, y in zip(alone.model.parameters(), single.model.parameters(), strict=True)
    )
    full = train_batch(cfgs, [None] * 3, device="cpu")
    for cfg, res in zip(cfgs, full, strict=True):
        ref = train(cfg, None, device="cpu", progress=False)
        assert res.eval.accuracy == ref.eval.accuracy == 1.0, cfg.train.seed
        for (name, x), y in zip(ref.model.named_parameters(), res.model.parameters(),
                                strict=True):  # fmt: skip
            assert torch.equal(x, y), (cfg.train.seed, name)


def test_batch_refuses_mixed_shapes():
    from quadlens.train import train_batch

    other = RunConfig(ModelConfig(p=23, d_model=32, n_heads=4, d_head=8, d_mlp=32),
                      TrainConfig(epochs=300))  # fmt: skip
    with pytest.raises(QuadlensError, match="cannot train in one batch"):
        train_batch([tiny(epochs=300), other], [None, None], device="cpu")


def test_stacked_batch_matches_single_runs_and_resumes_bit_identically(tmp_path):
    """The stacked mode (the default off the CPU: one optimizer over the stacked parameters,
    the torch operations over the whole stack), forced here on the CPU. Each member agrees
    with its own single run to float rounding and reaches the same accuracy; its optimizer
    state is its own slice of the stack (a checkpoint holds it); an interrupted stacked batch
    resumes to the same bits as an uninterrupted one; and members with different learning
    rates are not stacked (each keeps its own optimizer, bit-identical to its single run)."""
    from quadlens.train import _BatchStepper, _Member, make_optimizer, train_batch

    cfgs = [tiny(seed=4), tiny(seed=6)]
    outs = [tmp_path / "full" / str(i) for i in range(2)]
    for o in outs:
        rundir.prepare_out_dir(o, overwrite=False)
    full = train_batch(cfgs, outs, device="cpu", stacked=True)
    for cfg, res in zip(cfgs, full, strict=True):
        ref = train(cfg, None, device="cpu", progress=False)
        assert res.eval.accuracy == ref.eval.accuracy == 1.0
        for (name, x), y in zip(ref.model.named_parameters(), res.model.parameters(),
                                strict=True):  # fmt: skip
            assert torch.allclose(x, y, rtol=1e-3, atol=1e-4), name

    parts = [tmp_path / "part" / str(i) for i in range(2)]
    for o in parts:
        rundir.prepare_out_dir(o, overwrite=False)

    def interrupt(s, row):  # at the first member's row: every member's row is written first
        if row["epoch"] == 500 and s == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_batch(cfgs, parts, device="cpu", stacked=True, on_metrics=interrupt)
    tensors, meta = rundir.load_tensors(parts[1] / rundir.CHECKPOINT)
    assert int(meta["step"]) == 500 and float(tensors["opt/W_in/step"]) == 500.0
    assert float(tensors["opt/W_in/exp_avg_sq"].abs().sum()) > 0  # the member's own state
    train_batch(cfgs, parts, device="cpu", stacked=True, resume=True)
    for a, b in zip(outs, parts, strict=True):
        wf, wp = _weights(a), _weights(b)
        for name in wf:
            assert torch.equal(wf[name], wp[name]), name
        assert (a / rundir.METRICS).read_text() == (b / rundir.METRICS).read_text()

    from quadlens.data import labels, make_split
    from quadlens.model import Model

    mixed = [tiny(seed=4), tiny(seed=6, lr=2.5e-3)]
    members = []
    for cfg in mixed:
        model = Model(cfg.model, seed=cfg.train.seed)
        split = make_split(cfg.model.p, cfg.train.seed, cfg.train.train_frac)
        members.append(_Member(cfg, None, model, make_optimizer(model, cfg), split.train,
                               split.train_mask))  # fmt: skip
    assert _BatchStepper(members, labels(cfgs[0].model.p), stacked=True).opt is None


def test_stacked_step_agrees_with_per_member_steps():
    """A stacked batch of the torch-operations path (as on a GPU) against the same models
    stepped with their own optimizers: the same parameters to float rounding after 50 steps,
    for three models with their own seeds."""
    from quadlens.train import step_function

    cfgs = [tiny(seed=s) for s in (1, 2, 3)]
    models = {}
    for stacked in (False, True):
        step = step_function(cfgs, kernels=False, stacked=stacked)
        for _ in range(50):
            step()
        cells = {type(c.cell_contents).__name__: c.cell_contents for c in step.__closure__}
        stepper = cells["_BatchStepper"]
        assert (stepper.opt is not None) == stacked
        models[stacked] = [m.model for m in stepper.members]
    for a, b in zip(models[False], models[True], strict=True):
        for (name, x), y in zip(a.named_parameters(), b.parameters(), strict=True):
            assert torch.allclose(x, y, rtol=1e-4, atol=1e-5), name
