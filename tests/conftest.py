"""Shared fixtures: tiny configurations that train in about a second, and a CLI runner."""

from __future__ import annotations

import io
import math
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from quadlens.circuit import Circuit
from quadlens.cli import main
from quadlens.config import ModelConfig, RunConfig, TrainConfig
from quadlens.synth import pizza_circuit

# Property tests draw the same examples on every run (a red CI run can be rerun and seen again;
# a green one does not depend on luck). QUADLENS_EXPLORE=K draws fresh random examples instead,
# K times as many per test: a search for counterexamples to run by hand after changing a bound
# (docs/certificates.md).
EXPLORE = int(os.environ.get("QUADLENS_EXPLORE") or 0)
settings.register_profile("fixed", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile("explore" if EXPLORE else "fixed")


def examples(n: int) -> int:
    """A property test's number of examples: n, or n times QUADLENS_EXPLORE when exploring."""
    return n * max(EXPLORE, 1)


FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
ZHONG_DIR = FIXTURES / "zhong-model-a"
ZHONG_MODEL = ZHONG_DIR / "model_p99zdpze5l.pt"
ZHONG_CONFIG = ZHONG_DIR / "config_p99zdpze5l.json"

# A p = 23 pizza model that reaches 100% on all pairs in ~1 s on 2 cores. (Since W_V is trained
# on its true gradient (2026-12-06), not every seed of this size does in 1,000 epochs: of seeds
# 0-11, 4, 6, 7, 8 and 9 do; TINY_SEED is the one the tests train.)
TINY_SEED = 4
TINY_MODEL = ModelConfig(p=23, d_model=32, n_heads=4, d_head=8, d_mlp=64)
TINY_TRAIN = TrainConfig(seed=TINY_SEED, epochs=1000, lr=3e-3, log_every=100,
                         checkpoint_every=200)  # fmt: skip
TINY_ARGS = [
    "--p",
    "23",
    "--d-model",
    "32",
    "--n-heads",
    "4",
    "--d-head",
    "8",
    "--d-mlp",
    "64",
    "--epochs",
    "1000",
    "--lr",
    "3e-3",
    "--checkpoint-every",
    "200",
    "--quiet",
    "--device",
    "cpu",
]


def tiny(**train_overrides: object) -> RunConfig:
    import dataclasses

    return RunConfig(TINY_MODEL, dataclasses.replace(TINY_TRAIN, **train_overrides), preset="pizza")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def zhong_paths() -> tuple[Path, Path]:
    if not ZHONG_MODEL.is_file():
        pytest.fail(f"Zhong fixture missing at {ZHONG_MODEL} (shared/ must sit beside the repo)")
    return ZHONG_MODEL, ZHONG_CONFIG


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny pizza model trained once through the CLI, shared by read-only tests."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    res = run_cli("train", *TINY_ARGS, "--seed", str(TINY_SEED), "--out", str(out))
    assert res.code == 0, res.err
    return out


def mixing_circuit(p: int = 59, k: int = 24, partners: tuple[int, ...] = (23, 25), n: int = 60,
                   amount: float = 0.5, seed: int = 3, noise: float = 0.01,
                   secondary: float = 0.2, others: tuple[int, ...] = ()) -> Circuit:
    """A pizza cluster at k (and clusters at `others`) whose every other neuron also carries the
    frequencies `partners` in its input (as the neurons of the zoo's mixing models do;
    docs/zoo.md)."""
    c = pizza_circuit(p, n, freqs=[k, *others], noise=noise, secondary=secondary, seed=seed,
                      stratified=True)
    U, V = c.U.double().clone(), c.V.double().clone()
    x = torch.arange(p, dtype=torch.float64)
    for i, k2 in enumerate(partners):
        wave = amount * torch.cos(2 * math.pi * k2 * x / p + 0.7 + 1.3 * i)
        U[:, ::2] += wave[:, None]
        V[:, ::2] += wave[:, None]
    return Circuit(c.cfg, U, V, c.b_in.double(), c.O.double(), c.D_a, c.D_b, c.logit_bias)
