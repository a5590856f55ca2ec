"""Training with the paper's recipe (science.md §2): full batch, AdamW, linear warm-up,
cross-entropy with the log-softmax in float64.

For the constant-attention transformer with ReLU or x^2 the step runs through `fastpath`
(the circuit view, hand-written backward); every other model goes through autograd on the
plain forward. Both compute the same function of the same parameters.

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
from quadlens.errors import QuadlensError
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


class _Stepper:
    """One full-batch training step (forward, loss, backward) on the training pairs."""

    def __init__(self, model: Model, train_idx: torch.Tensor, y: torch.Tensor) -> None:
        self.model = model
        self.fast = uses_fast_path(model)
        self.idx = train_idx
        self.y = y[train_idx]
        self.a, self.b = all_pairs(model.cfg.p)
        self.a, self.b = self.a[train_idx].to(y.device), self.b[train_idx].to(y.device)

    def __call__(self) -> float:
        m = self.model
        if self.fast:
            P = {k: getattr(m, k).detach()[None] for k in fastpath.FAST_PARAMS}
            logits, cache = fastpath.forward(P, self.idx, m.cfg.activation)
            loss, G = fastpath.loss_and_grad(logits, self.y[None])
            grads = fastpath.backward(P, cache, G, m.cfg.activation)
            for k in fastpath.FAST_PARAMS:
                getattr(m, k).grad = grads[k][0]
            return float(loss[0])
        for p in m.parameters():
            p.grad = None
        loss = torch.nn.functional.cross_entropy(m(self.a, self.b).double(), self.y)
        loss.backward()
        return float(loss.detach())


@torch.no_grad()
def metrics(model: Model, split_mask: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, Any]:
    """Train/test loss and accuracy (float64 cross-entropy) and the weight norm."""
    logits = all_logits(model).double()
    lp = torch.log_softmax(logits, -1).gather(-1, y[:, None])[:, 0]
    ok = margins(logits, y) > 0
    out: dict[str, Any] = {"epoch": step}
    for name, mask in (("train", split_mask), ("test", ~split_mask)):
        n = int(mask.sum())
        out[f"{name}_loss"] = float(-lp[mask].mean()) if n else None
        out[f"{name}_acc"] = float(ok[mask].double().mean()) if n else None
    out["weight_norm"] = model.weight_norm()
    return out


def _save_checkpoint(run: Path, cfg: RunConfig, model: Model, opt: AdamW, step: int) -> None:
    tensors = {f"param/{n}": p for n, p in model.named_parameters()}
    tensors.update({f"opt/{k}": v for k, v in opt.state_tensors().items()})
    meta = {"step": str(step), "config": json.dumps(cfg.to_dict())}
    rundir.save_tensors(run / rundir.CHECKPOINT, tensors, meta)


def _load_checkpoint(run: Path, cfg: RunConfig, model: Model, opt: AdamW) -> int:
    path = run / rundir.CHECKPOINT
    tensors, meta = rundir.load_tensors(path)
    try:
        saved = RunConfig.from_dict(json.loads(meta.get("config", "null")), str(path))
    except (json.JSONDecodeError, QuadlensError):
        saved = None
    if saved != cfg:
        raise QuadlensError(f"{path}: checkpoint was written for a different config")
    params = {k.removeprefix("param/"): v for k, v in tensors.items() if k.startswith("param/")}
    loaded = rundir.model_from_tensors(cfg, params, str(path))
    dev = model.W_E.device
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(getattr(loaded, name).to(dev))
    state = {k.removeprefix("opt/"): v for k, v in tensors.items() if k.startswith("opt/")}
    try:
        opt.load_state_tensors(state)
    except KeyError as exc:
        raise QuadlensError(f"{path}: optimizer state incomplete (no {exc})") from None
    return int(meta["step"])


def _read_metrics(path: Path, upto: int) -> list[str]:
    if not path.exists():
        return []
    keep = []
    for line in path.read_text().splitlines():
        if line.strip() and json.loads(line)["epoch"] <= upto:
            keep.append(line + "\n")
    return keep


def train(
    cfg: RunConfig,
    out: Path | None = None,
    *,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
    on_metrics: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train the model of `cfg`; with `out`, write a run directory (see `rundir`).

    `out` must already be prepared (`rundir.prepare_out_dir`). With `resume`, training continues
    from `out/checkpoint.safetensors` if there is one."""
    if cfg.train is None:
        raise QuadlensError("this config has no training recipe (an imported run?)")
    t = cfg.train
    dev = resolve_device(device)
    tune_allocator()
    model = Model(cfg.model, seed=t.seed).to(dev)
    split = make_split(cfg.model.p, t.seed, t.train_frac)
    y = labels(cfg.model.p).to(dev)
    stepper = _Stepper(model, split.train.to(dev), y)
    opt = make_optimizer(model, cfg)
    mask = split.train_mask.to(dev)
    start = 0
    metric_lines: list[str] = []
    if out is not None:
        if resume and (out / rundir.CHECKPOINT).exists():
            start = _load_checkpoint(out, cfg, model, opt)
            metric_lines = _read_metrics(out / rundir.METRICS, start)
        rundir.write_json(out / rundir.CONFIG, cfg.to_dict())
        rundir.write_json(out / rundir.ENVIRONMENT, rundir.environment(command))
        rundir.write_text(out / rundir.METRICS, "".join(metric_lines))

    def log(step: int) -> dict[str, Any]:
        row = metrics(model, mask, y, step)
        if out is not None:
            with open(out / rundir.METRICS, "a") as f:
                f.write(json.dumps(row) + "\n")
        if on_metrics:
            on_metrics(row)
        return row

    t0 = time.perf_counter()
    bar = tqdm(
        total=t.epochs, initial=start, disable=not progress, unit="epoch",
        desc=f"train {cfg.preset or 'model'} seed {t.seed}", dynamic_ncols=True,
        mininterval=0.2 if sys.stderr.isatty() else 30.0,  # a log file gets a line per 30 s
    )  # fmt: skip
    completed = start  # optimizer steps applied to the parameters
    with _deferred_sigint() as interrupted:
        try:
            if start == 0:
                _postfix(bar, log(0))
            for step in range(start, t.epochs):
                if interrupted():  # Ctrl-C lands here, between steps, never inside one
                    raise KeyboardInterrupt
                loss = stepper()
                if not math.isfinite(loss):
                    raise QuadlensError(f"training diverged at epoch {step}: loss is {loss}")
                opt.step(lr_at(step, cfg))
                completed = step + 1
                bar.update(1)
                if completed % t.log_every == 0 or completed == t.epochs:
                    _postfix(bar, log(completed))
                if out is not None and completed % t.checkpoint_every == 0 and completed < t.epochs:
                    _save_checkpoint(out, cfg, model, opt, completed)
        except KeyboardInterrupt:
            if out is not None:  # the state after the last completed step is a full checkpoint
                _save_checkpoint(out, cfg, model, opt, completed)
                metric_file = out / rundir.METRICS
                rundir.write_text(metric_file, "".join(_read_metrics(metric_file, completed)))
            raise
        finally:
            bar.close()
    seconds = time.perf_counter() - t0
    model = model.cpu()
    if out is not None:
        rundir.save_model(out, cfg, model)
        (out / rundir.CHECKPOINT).unlink(missing_ok=True)
    return TrainResult(model, cfg, evaluate(model), seconds, t.epochs - start, out)


@contextmanager
def _deferred_sigint() -> Iterator[Callable[[], bool]]:
    """Turn Ctrl-C into a flag the loop checks between steps (main thread only)."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: object) -> None:
        flag["set"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: flag["set"]
    finally:
        signal.signal(signal.SIGINT, previous)


def _postfix(bar: tqdm, row: dict[str, Any]) -> None:
    bar.set_postfix(
        loss=f"{row['train_loss']:.3g}",
        train=f"{row['train_acc']:.1%}",
        test="-" if row["test_acc"] is None else f"{row['test_acc']:.1%}",
        refresh=False,
    )
