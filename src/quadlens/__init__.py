"""quadlens: train, explain and prove things about the MLPs of modular-addition models.

The public API is what this module re-exports; the pipeline reads in file order:
config -> data -> model -> circuit -> fastpath / optim / train -> evaluate -> rundir / imports
-> fourier / lens (the quadrature lens) -> masks / bilinear / approx / synth (other lenses)
-> zoo / study (many seeds) -> plots; cli on top.
"""

from quadlens.circuit import Circuit, circuit
from quadlens.config import ModelConfig, RunConfig, TrainConfig, preset
from quadlens.errors import QuadlensError
from quadlens.evaluate import EvalResult, evaluate
from quadlens.imports import import_tl, import_zhong
from quadlens.lens import Analysis, analyze
from quadlens.model import Model
from quadlens.rundir import load_run
from quadlens.train import TrainResult, train, train_batch

__version__ = "0.1.0"

__all__ = [
    "Analysis",
    "Circuit",
    "EvalResult",
    "Model",
    "ModelConfig",
    "QuadlensError",
    "RunConfig",
    "TrainConfig",
    "TrainResult",
    "analyze",
    "circuit",
    "evaluate",
    "import_tl",
    "import_zhong",
    "load_run",
    "preset",
    "train",
    "train_batch",
]
