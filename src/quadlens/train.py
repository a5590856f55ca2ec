"""Training with the paper's recipe (science.md §2): full batch, AdamW, linear warm-up,
cross-entropy with the log-softmax in float64.

For the constant-attention transformer with ReLU or x^2 the step runs through `fastpath`
(the circuit view, hand-written backward); every other model goes through autograd on the
plain forward. Both compute the same function of the same parameters. `train_batch` trains
several models of one shape at once (the seed zoo); `train` is a batch of one.

Reproducibility: the initial weights and the split come from generators seeded from the run
seed; nothing reads global random state. A run interrupted (Ctrl-C or killed) continues from its
last checkpoint with `resume=True` and ends bit-identical on CPU to an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from quadlens import fastpath, rundir
from quadlens._alloc import tune_allocator
from quadlens.config import RunConfig
from quadlens.data import all_pairs, labels, make_split
from quadlens.errors import DivergedError, QuadlensError
from quadlens.evaluate import EvalResult, all_logits, evaluate, margins
from quadlens.model import Model
from quadlens.optim import AdamW


@dataclass
class TrainResult:
    model: Model
    config: RunConfig
    eval: EvalResult  # on all p^2 inputs
    seconds: float  # wall-clock of this invocation's training loop
    epochs_run: int  # epochs run by this invocation (less than the total after a resume)
    run_dir: Path | None


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise QuadlensError(f"device {device!r} requested but CUDA is not available")
    try:
        return torch.device(device)
    except RuntimeError:
        raise QuadlensError(f"unknown device {device!r}: expected auto, cpu or cuda") from None


def uses_fast_path(model: Model) -> bool:
    cfg = model.cfg
    return (
        cfg.architecture == "transformer"
        and cfg.constant_attention
        and cfg.activation in ("relu", "quadratic")
    )


def make_optimizer(model: Model, cfg: RunConfig) -> AdamW:
    assert cfg.train is not None
    return AdamW(model.trainable(), betas=cfg.train.betas, weight_decay=cfg.train.weight_decay)


def lr_at(step: int, cfg: RunConfig) -> float:
    """Linear warm-up from 0 over the first `warmup_epochs` steps (science.md §2)."""
    assert cfg.train is not None
    t = cfg.train
    return t.lr * min(step / t.warmup_epochs, 1.0) if t.warmup_epochs else t.lr


@dataclass
class _Member:
    """One model of a training batch, with its own seed, split, optimizer and run directory."""

    cfg: RunConfig
    out: Path | None
    model: Model
    opt: AdamW
    train_idx: torch.Tensor
    mask: torch.Tensor  # train pairs among all p^2


class _BatchStepper:
    """One full-batch training step (forward, loss, backward) of every member.

    On the fast path the members' parameters are views into stacked tensors with a leading
    model axis, so one `fastpath` call steps them all; each slice gets exactly the bits a
    single run would (the tests compare). Otherwise each member runs autograd on the plain
    forward in turn. In stacked mode (`train_batch`) one optimizer steps the stacked
    parameters (`optimize`), and the members' optimizer states are views of its state."""

    def __init__(self, members: list[_Member], y: torch.Tensor, kernels: bool | None = None,
                 stacked: bool | None = None) -> None:  # fmt: skip
        self.members = members
        self.fast = all(uses_fast_path(m.model) for m in members)
        self.opt: AdamW | None = None  # the stacked optimizer, in stacked mode
        self.grads: dict[str, torch.Tensor] | None = None
        p = members[0].cfg.model.p
        if self.fast:
            self.P = {
                k: torch.stack([getattr(m.model, k).detach() for m in members])
                for k in fastpath.FAST_PARAMS
            }
            for s, m in enumerate(members):
                for k in fastpath.FAST_PARAMS:
                    getattr(m.model, k).data = self.P[k][s]  # the model now views the stack
            pairs = torch.stack([m.train_idx for m in members])
            act = members[0].cfg.model.activation
            self.step = fastpath.Step(self.P, pairs, y[pairs], act, kernels)
            if (y.device.type != "cpu" if stacked is None else stacked) and _one_schedule(members):
                self.opt = _stacked_optimizer(members, self.P)
        else:
            a, b = all_pairs(p)
            self.inputs = [(a[m.train_idx].to(y.device), b[m.train_idx].to(y.device),
                            y[m.train_idx]) for m in members]  # fmt: skip

    def __call__(self) -> list[float]:
        if self.opt is not None:
            loss, self.grads = self.step.stacked()
            return loss.tolist()
        if self.fast:
            loss, grads = self.step()
            for m, g in zip(self.members, grads, strict=True):
                for k in fastpath.FAST_PARAMS:
                    getattr(m.model, k).grad = g[k]
            return loss.tolist()
        losses = []
        for m, (a, b, y) in zip(self.members, self.inputs, strict=True):
            for param in m.model.parameters():
                param.grad = None
            loss = torch.nn.functional.cross_entropy(m.model(a, b).double(), y)
            loss.backward()
            losses.append(float(loss.detach()))
        return losses

    def optimize(self, step: int) -> None:
        """AdamW on every member, at the learning rate of `step`: in stacked mode one fused
        call on the stacked parameters, else each member's own optimizer (grouped)."""
        if self.opt is None:
            AdamW.step_all([m.opt for m in self.members],
                           [lr_at(step, m.cfg) for m in self.members])  # fmt: skip
            return
        assert self.grads is not None, "optimize() before the step's gradients"
        self.opt.step_grads([self.grads[k] for k in self.opt.names],
                            lr_at(step, self.members[0].cfg))  # fmt: skip
        self.grads = None


def schedule_key(cfg: RunConfig) -> tuple[Any, ...]:
    """Configs with equal keys share AdamW's hyperparameters and learning-rate schedule, so
    their models can share one stacked optimizer (`train_batch`'s stacked mode)."""
    assert cfg.train is not None
    t = cfg.train
    return (t.lr, t.warmup_epochs, tuple(t.betas), t.weight_decay)


def _one_schedule(members: list[_Member]) -> bool:
    """Whether the members can share one stacked optimizer: one `schedule_key` (and AdamW's
    eps), and the fast path's parameters as their trainable ones."""
    names = set(fastpath.FAST_PARAMS)
    same = len({(schedule_key(m.cfg), m.opt.eps) for m in members}) == 1
    return same and all(set(m.opt.names) == names for m in members)


def _stacked_optimizer(members: list[_Member], P: dict[str, torch.Tensor]) -> AdamW:
    """One AdamW over the stacked parameters P, its state stacked from the members' (fresh or
    loaded from checkpoints), which then view it: each member's optimizer state, and so its
    checkpoints, stay its own slice. The stacked step is elementwise, so each member is
    updated as its own optimizer would update it, up to float rounding (the fused kernel's
    vector and scalar paths round differently, so the bits differ from a single run's)."""
    first = members[0].opt
    opt = AdamW([(k, P[k]) for k in first.names], betas=(first.beta1, first.beta2),
                weight_decay=first.weight_decay, eps=first.eps)  # fmt: skip
    for j, name in enumerate(first.names):
        pairs = [(m, m.opt.names.index(name)) for m in members]
        opt.exp_avg[j] = torch.stack([m.opt.exp_avg[i] for m, i in pairs])
        opt.exp_avg_sq[j] = torch.stack([m.opt.exp_avg_sq[i] for m, i in pairs])
        counts = {float(m.opt.steps[i]) for m, i in pairs}
        if len(counts) != 1:
            raise QuadlensError(f"members of a batch are at different optimizer steps: {counts}")
        opt.steps[j] = first.steps[pairs[0][1]].clone()
        for s, (m, i) in enumerate(pairs):
            m.opt.exp_avg[i], m.opt.exp_avg_sq[i] = opt.exp_avg[j][s], opt.exp_avg_sq[j][s]
            m.opt.steps[i] = opt.steps[j]
    return opt


def _split_indices(split_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The train and test inputs' indices, ascending (as boolean indexing takes them)."""
    return split_mask.nonzero().flatten(), (~split_mask).nonzero().flatten()


@torch.no_grad()
def metrics_rows(models: list[Model], splits: list[tuple[torch.Tensor, torch.Tensor]],
                 y: torch.Tensor, step: int) -> list[dict[str, Any]]:  # fmt: skip
    """Each model's train/test loss and accuracy (float64 cross-entropy) and weight norm
    (splits: each one's `_split_indices`), with one transfer from the device for all of them:
    on a GPU each float() of a result waits for the device, and a batch of 152 models made ~20
    such waits per model at every log. The same operations in the same order as the model's
    own `weight_norm` and boolean indexing: the same bits."""
    values: list[torch.Tensor] = []
    for model, idx in zip(models, splits, strict=True):
        logits = all_logits(model).double()
        lp = torch.log_softmax(logits, -1).gather(-1, y[:, None])[:, 0]
        ok = (margins(logits, y) > 0).double()
        for part in idx:
            if len(part):
                values += [-lp.index_select(0, part).mean(), ok.index_select(0, part).mean()]
        values += [(q.double() ** 2).sum() for q in model.parameters()]
    flat = iter(torch.stack(values).tolist() if values else [])
    rows = []
    for model, idx in zip(models, splits, strict=True):
        row: dict[str, Any] = {"epoch": step}
        for name, part in zip(("train", "test"), idx, strict=True):
            row[f"{name}_loss"], row[f"{name}_acc"] = (
                (next(flat), next(flat)) if len(part) else (None, None))
        row["weight_norm"] = math.sqrt(sum(next(flat) for _ in model.parameters()))
        rows.append(row)
    return rows


def _save_checkpoint(run: Path, cfg: RunConfig, model: Model, opt: AdamW, step: int) -> None:
    tensors = {f"param/{n}": p for n, p in model.named_parameters()}
    tensors.update({f"opt/{k}": v for k, v in opt.state_tensors().items()})
    meta = {"step": str(step), "config": json.dumps(cfg.to_dict())}
    rundir.save_tensors(run / rundir.CHECKPOINT, tensors, meta)


def _load_checkpoint(run: Path, cfg: RunConfig, model: Model, opt: AdamW) -> int:
    step, loaded, state = rundir.read_checkpoint(run, cfg)
    dev = model.W_E.device
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(getattr(loaded, name).to(dev))
    try:
        opt.load_state_tensors(state)
    except KeyError as exc:
        path = run / rundir.CHECKPOINT
        raise QuadlensError(f"{path}: optimizer state incomplete (no {exc})") from None
    return step


def _read_metrics(path: Path, upto: int) -> list[str]:
    """The metrics lines up to epoch `upto` (a line cut short is dropped: `rundir.read_metrics`)."""
    return [json.dumps(row) + "\n" for row in rundir.read_metrics(path) if row["epoch"] <= upto]


def progress_bar(progress: bool, tty_interval: float, **kw: Any) -> tqdm:
    """A tqdm bar on stderr (off without `progress`): redrawn every `tty_interval` s on a
    terminal; a log file gets a line per 30 s."""
    return tqdm(disable=not progress, dynamic_ncols=True,
                mininterval=tty_interval if sys.stderr.isatty() else 30.0, **kw)  # fmt: skip


def train(
    cfg: RunConfig,
    out: Path | str | None = None,
    *,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
    on_metrics: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train the model of `cfg`; with `out`, write a run directory (see `rundir`).

    `out` must be a new or empty directory (`rundir.prepare_out_dir` makes one). With `resume`,
    training continues from `out/checkpoint.safetensors` if there is one."""
    _check_configs([cfg])
    if cfg.train is None:
        raise QuadlensError("this config has no training recipe (an imported run?)")
    _check_outs([out], resume)  # (train_batch checks too; here before the bar is drawn)
    bar = progress_bar(progress, 0.2, total=cfg.train.epochs, unit="epoch",
                       desc=f"train {cfg.preset or 'model'} seed {cfg.train.seed}")  # fmt: skip
    callback = None if on_metrics is None else (lambda _, row: on_metrics(row))
    try:
        return train_batch([cfg], [out], device=device, resume=resume, bar=bar,
                           command=command, on_metrics=callback)[0]  # fmt: skip
    finally:
        bar.close()


def _check_configs(cfgs: list[RunConfig]) -> None:
    for c in cfgs:
        if not isinstance(c, RunConfig):
            raise QuadlensError(f"expected a RunConfig (e.g. quadlens.preset('pizza', seed=1)), "
                                f"got a {type(c).__name__}")  # fmt: skip


def _check_outs(outs: list[Path | str | None], resume: bool) -> list[Path | None]:
    """The run directories as Paths, refused where training would write over something: a
    file, a directory that is not empty (unless resuming), a finished run, one directory for
    two models."""
    paths = [None if o is None else Path(o) for o in outs]
    given = [o.resolve() for o in paths if o is not None]
    if len(set(given)) != len(given):
        raise QuadlensError("two models of the batch were given the same run directory")
    for out in paths:
        if out is None:
            continue
        if out.exists() and not out.is_dir():
            raise QuadlensError(f"{out}: exists and is not a directory")
        if resume and (out / rundir.WEIGHTS).is_file():
            raise QuadlensError(f"{out}: this run is already complete (nothing to resume)")
        if not resume and out.is_dir() and any(out.iterdir()):
            raise QuadlensError(f"{out}: not empty; give a new or empty directory, or "
                                "resume=True to continue the run there")  # fmt: skip
    return paths


def step_function(cfgs: list[RunConfig], device: str = "cpu", kernels: bool | None = None,
                  stacked: bool | None = None) -> Callable[[], None]:  # fmt: skip
    """One training step (forward, backward, AdamW) of fresh models of these configs, as a
    callable, for benchmarks and FLOP counts. Each call advances the models by one epoch.
    `kernels` chooses the fast path's fused CPU kernels or its torch operations (default:
    the kernels on the CPU); `stacked`, one optimizer over the stacked parameters (default:
    off the CPU; see `train_batch`)."""
    dev = resolve_device(device)
    y = labels(cfgs[0].model.p).to(dev)
    members = []
    for cfg in cfgs:
        assert cfg.train is not None
        model = Model(cfg.model, seed=cfg.train.seed).to(dev)
        split = make_split(cfg.model.p, cfg.train.seed, cfg.train.train_frac)
        members.append(_Member(cfg, None, model, make_optimizer(model, cfg),
                               split.train.to(dev), split.train_mask.to(dev)))  # fmt: skip
    stepper = _BatchStepper(members, y, kernels, stacked)
    state = {"step": 0}

    def step() -> None:
        stepper()
        stepper.optimize(state["step"])
        state["step"] += 1

    return step


def step_bytes(cfg: RunConfig) -> int:
    """About how much device memory one model takes in a stacked training step (the fast
    path's torch operations): its pre-activations and their gradient [N, d_mlp] in float32, its
    logits, softmax and their gradient [N, p] (in float64 where the loss is taken), and its
    parameters, gradients and AdamW moments. 22 MB for the pizza recipe."""
    assert cfg.train is not None
    m = cfg.model
    n_pairs = int(cfg.train.train_frac * m.p * m.p) + 1
    n_params = sum(q.numel() for _, q in Model(m).trainable())
    return 8 * n_pairs * m.d_mlp + 40 * n_pairs * m.p + 20 * n_params


def batch_key(cfg: RunConfig) -> tuple[Any, ...]:
    """Configs with equal keys can train together: same shapes and cadence (their seeds,
    learning rates, weight decays, betas and warm-ups may differ)."""
    assert cfg.train is not None
    t = cfg.train
    return (cfg.model, t.epochs, t.train_frac, t.log_every, t.checkpoint_every)


def train_batch(
    cfgs: list[RunConfig],
    outs: list[Path | str | None],
    *,
    device: str = "auto",
    resume: bool = False,
    bar: tqdm | None = None,
    command: list[str] | None = None,
    on_metrics: Callable[[int, dict[str, Any]], None] | None = None,
    stacked: bool | None = None,
) -> list[TrainResult]:
    """Train several models of one shape at once (see `batch_key`), each exactly as `train`
    would, each into its own run directory. With `resume`, every member with a checkpoint
    continues from it; all members must then be at the same epoch.

    `stacked` (default: off the CPU, where the members share AdamW's hyperparameters and a
    learning-rate schedule) steps them with one optimizer over their stacked parameters and
    the fast path's torch operations over the whole stack: a step is then a few dozen GPU
    kernels for any batch size, where each member's own optimizer costs Python work per member
    and step. Stacked members agree with single runs to float rounding, not bit for bit; on
    the CPU the default keeps each member bit-identical to its own run."""
    if not cfgs or len(cfgs) != len(outs):
        raise QuadlensError("train_batch needs one output (or None) per config")
    _check_configs(cfgs)
    outs = _check_outs(outs, resume)
    if any(c.train is None for c in cfgs):
        raise QuadlensError("a config has no training recipe (an imported run?)")
    if len({batch_key(c) for c in cfgs}) != 1:
        raise QuadlensError("these configs cannot train in one batch (shapes or cadence differ)")
    dev = resolve_device(device)
    tune_allocator()
    first = cfgs[0]
    assert first.train is not None
    t = first.train
    p = first.model.p
    y = labels(p).to(dev)
    members = []
    for cfg in cfgs:
        assert cfg.train is not None
        model = Model(cfg.model, seed=cfg.train.seed).to(dev)
        split = make_split(p, cfg.train.seed, cfg.train.train_frac)
        opt = make_optimizer(model, cfg)
        members.append(_Member(cfg, None, model, opt, split.train.to(dev),
                               split.train_mask.to(dev)))  # fmt: skip
    starts = []
    for m, out in zip(members, outs, strict=True):
        m.out = out
        start, lines = 0, []
        if out is not None:
            if resume and (out / rundir.CHECKPOINT).exists():
                start = _load_checkpoint(out, m.cfg, m.model, m.opt)
                lines = _read_metrics(out / rundir.METRICS, start)
            rundir.write_json(out / rundir.CONFIG, m.cfg.to_dict())
            rundir.write_json(out / rundir.ENVIRONMENT, rundir.environment(command))
            rundir.write_text(out / rundir.METRICS, "".join(lines))
        starts.append(start)
    if len(set(starts)) != 1:
        raise QuadlensError(f"members of a batch resume from different epochs: {starts}")
    start = starts[0]
    # after loading: the stack copies the loaded values
    stepper = _BatchStepper(members, y, stacked=stacked)

    splits = [_split_indices(m.mask) for m in members]

    def log(step: int) -> None:
        rows = metrics_rows([m.model for m in members], splits, y, step)
        for m, row in zip(members, rows, strict=True):
            if m.out is not None:
                with open(m.out / rundir.METRICS, "a") as f:
                    f.write(json.dumps(row) + "\n")
        if bar is not None:
            _postfix(bar, rows[0])
        # after every member's row is written: a callback that raises (an interrupt) leaves
        # no member without this epoch's row, which a resume from here would not write again
        for s, row in enumerate(rows):
            if on_metrics:
                on_metrics(s, row)

    t0 = time.perf_counter()
    if bar is not None:
        bar.update(start * len(members))
    completed = start  # optimizer steps applied to the parameters
    with deferred_interrupt() as interrupted:
        try:
            if start == 0:
                log(0)
            for step in range(start, t.epochs):
                if interrupted():  # Ctrl-C lands here, between steps, never inside one
                    raise Interrupted(interrupted())
                losses = stepper()
                for i, (m, loss) in enumerate(zip(members, losses, strict=True)):
                    if not math.isfinite(loss):
                        raise DivergedError(f"training diverged at epoch {step} ({_who(m)}): "
                                            f"loss is {loss}; try a smaller --lr", i)  # fmt: skip
                stepper.optimize(step)
                completed = step + 1
                if bar is not None:
                    bar.update(len(members))
                if completed % t.log_every == 0 or completed == t.epochs:
                    log(completed)
                if completed % t.checkpoint_every == 0 and completed < t.epochs:
                    _save_checkpoints(members, completed)
        except KeyboardInterrupt:
            _save_checkpoints(members, completed)  # the state after the last completed step
            for m in members:
                if m.out is not None:
                    metric_file = m.out / rundir.METRICS
                    rundir.write_text(metric_file, "".join(_read_metrics(metric_file, completed)))
            raise
    seconds = time.perf_counter() - t0
    for i, m in enumerate(members):  # (the loss is checked before each step, not after the last)
        bad = [n for n, q in m.model.named_parameters() if not torch.isfinite(q).all()]
        if bad:
            raise DivergedError(f"training diverged at epoch {t.epochs - 1} ({_who(m)}): its last "
                                f"step left {', '.join(bad)} non-finite; try a smaller --lr", i)
    results = []
    for m in members:
        model = _detached_copy(m.model).cpu()
        if m.out is not None:
            rundir.save_model(m.out, m.cfg, model)
            (m.out / rundir.CHECKPOINT).unlink(missing_ok=True)
        results.append(TrainResult(model, m.cfg, evaluate(model), seconds, t.epochs - start, m.out))
    return results


def _who(m: _Member) -> str:
    assert m.cfg.train is not None
    return m.out.name if m.out is not None else f"seed {m.cfg.train.seed}"


def _detached_copy(model: Model) -> Model:
    """A model with its own storage (batch members view a shared stack)."""
    copy = Model(model.cfg)
    with torch.no_grad():
        for name, param in model.named_parameters():
            getattr(copy, name).copy_(param)
    return copy.to(model.W_E.device)


def _save_checkpoints(members: list[_Member], step: int) -> None:
    for m in members:
        if m.out is not None:
            _save_checkpoint(m.out, m.cfg, m.model, m.opt, step)


class Interrupted(KeyboardInterrupt):
    """Training stopped at a checkpoint by a signal (`signum`: SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = signum


# Ctrl-C, `kill PID` and a closed terminal all stop a run the same way: at a checkpoint
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, n))  # fmt: skip


@contextmanager
def deferred_interrupt() -> Iterator[Callable[[], int]]:
    """Turn Ctrl-C (SIGINT), SIGTERM and SIGHUP into a flag the loop checks between steps: it
    returns the signal's number, 0 while none has come (main thread only)."""
    flag = {"signum": 0}
    if threading.current_thread() is not threading.main_thread():
        yield lambda: 0
        return

    def handler(signum: int, frame: object) -> None:
        flag["signum"] = flag["signum"] or signum

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield lambda: flag["signum"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _postfix(bar: tqdm, row: dict[str, Any]) -> None:
    bar.set_postfix(
        loss=f"{row['train_loss']:.3g}",
        train=f"{row['train_acc']:.1%}",
        test="-" if row["test_acc"] is None else f"{row['test_acc']:.1%}",
        refresh=False,
    )
