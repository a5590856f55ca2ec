"""quadlens: train, explain and prove things about the MLPs of modular-addition models.

The public API is what this module re-exports; the pipeline reads in file order:
config -> data -> model -> circuit -> train -> evaluate -> rundir / imports.
"""

from quadlens.circuit import Circuit, circuit
from quadlens.config import ModelConfig, RunConfig, TrainConfig, preset
from quadlens.errors import QuadlensError
from quadlens.evaluate import EvalResult, evaluate
from quadlens.imports import import_tl, import_zhong
from quadlens.model import Model
from quadlens.rundir import load_run
from quadlens.train import TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "Circuit",
    "EvalResult",
    "Model",
    "ModelConfig",
    "QuadlensError",
    "RunConfig",
    "TrainConfig",
    "TrainResult",
    "circuit",
    "evaluate",
    "import_tl",
    "import_zhong",
    "load_run",
    "preset",
    "train",
]
