"""quadlens: train, explain and prove things about the MLPs of modular-addition models.

The public API is what this module re-exports; the pipeline reads in file order:
config -> data -> model -> circuit -> fastpath / optim / train -> evaluate -> rundir / imports
-> fourier / lens (the quadrature lens) -> bound (compact bounds) -> masks / bilinear / approx /
synth (other lenses) -> certify (accuracy certificates) -> zoo / study (many seeds) -> plots ->
report / reproduce; cli on top.
"""

# first: its import makes MKL's vector math library set itself up before anything runs in
# parallel (training's bits and the bounds' rounding analysis depend on it; see _vml)
from quadlens import _vml  # noqa: F401
from quadlens.bound import BoundReport
from quadlens.bound import bound as bounds  # (the module quadlens.bound keeps its name)
from quadlens.certify import Certificate
from quadlens.certify import certify as certificate
from quadlens.circuit import Circuit, circuit
from quadlens.config import ModelConfig, RunConfig, TrainConfig, preset
from quadlens.errors import QuadlensError
from quadlens.evaluate import EvalResult, evaluate
from quadlens.imports import import_tl, import_zhong
from quadlens.lens import Analysis, analyze
from quadlens.model import Model
from quadlens.report import build as build_report
from quadlens.reproduce import reproduce
from quadlens.rundir import load_run
from quadlens.train import TrainResult, train, train_batch

__version__ = "0.1.0"

__all__ = [
    "Analysis",
    "BoundReport",
    "Certificate",
    "Circuit",
    "EvalResult",
    "Model",
    "ModelConfig",
    "QuadlensError",
    "RunConfig",
    "TrainConfig",
    "TrainResult",
    "analyze",
    "bounds",
    "build_report",
    "certificate",
    "circuit",
    "evaluate",
    "import_tl",
    "import_zhong",
    "load_run",
    "preset",
    "reproduce",
    "train",
    "train_batch",
]
