"""Configuration as data: frozen dataclasses validated on construction, and named presets.

`ModelConfig` fixes the architecture (science.md §1), `TrainConfig` the recipe (§2) and the seed.
A `RunConfig` pairs them; its JSON form is saved with every run and is enough to rebuild it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from quadlens.errors import QuadlensError

ACTIVATIONS = ("relu", "gelu", "quadratic", "bilinear")
ARCHITECTURES = ("transformer", "mlp")
COMBINES = ("concat", "sum")
# Fields a zoo may sweep with comma lists (quadlens zoo train --weight-decay 1,2 ...).
SWEEPABLE = ("attention_rate", "weight_decay", "lr", "d_mlp", "train_frac")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. `attention_rate` 1 = constant 1/2 attention (pizza), 0 = softmax (clock).

    `architecture="mlp"` is the MLP-only model: token embeddings of a and b (plus W_pos)
    concatenated or summed (`combine`), one hidden layer, unembed; no attention, no residual.
    """

    p: int = 59
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    activation: str = "relu"
    attention_rate: float = 1.0
    architecture: str = "transformer"
    combine: str = "concat"
    init_scale: float = 0.8  # weights ~ N(0, init_scale^2 / d_model), i.e. variance 0.64/d_model

    def __post_init__(self) -> None:
        _check_int(self, "p", 3)
        for name in ("d_model", "n_heads", "d_head", "d_mlp"):
            _check_int(self, name, 1)
        if self.activation not in ACTIVATIONS:
            raise QuadlensError(
                f"unknown activation {self.activation!r}: expected one of {', '.join(ACTIVATIONS)}"
            )
        if self.architecture not in ARCHITECTURES:
            raise QuadlensError(
                f"unknown architecture {self.architecture!r}: expected one of "
                f"{', '.join(ARCHITECTURES)}"
            )
        if self.combine not in COMBINES:
            raise QuadlensError(f"unknown combine {self.combine!r}: expected concat or sum")
        rate = self.attention_rate
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate <= 1.0:
            raise QuadlensError(f"attention_rate must be a number in [0, 1], got {rate!r}")
        if self.architecture == "transformer" and self.n_heads * self.d_head != self.d_model:
            raise QuadlensError(
                f"n_heads * d_head must equal d_model: {self.n_heads} * {self.d_head} != "
                f"{self.d_model}"
            )
        s = self.init_scale
        if not (isinstance(s, (int, float)) and math.isfinite(s) and s > 0):
            raise QuadlensError(f"init_scale must be a finite positive number, got {s!r}")

    @property
    def constant_attention(self) -> bool:
        """True when the pre-activation separates into U[a] + V[b] (science.md §1)."""
        return self.architecture == "mlp" or self.attention_rate == 1.0


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe of science.md §2 (full batch, AdamW, linear warm-up)."""

    seed: int = 0
    epochs: int = 10_000
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_epochs: int = 10
    train_frac: float = 0.8
    log_every: int = 100
    checkpoint_every: int = 1000

    def __post_init__(self) -> None:
        _check_int(self, "seed", 0)
        _check_int(self, "epochs", 0)
        _check_int(self, "warmup_epochs", 0)
        _check_int(self, "log_every", 1)
        _check_int(self, "checkpoint_every", 1)
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise QuadlensError(f"{name} must be a finite number >= 0, got {value!r}")
        b = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else ()
        if len(b) != 2 or not all(isinstance(x, (int, float)) and 0 <= x < 1 for x in b):
            raise QuadlensError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", (float(b[0]), float(b[1])))
        if not (isinstance(self.train_frac, (int, float)) and 0 < self.train_frac <= 1):
            raise QuadlensError(f"train_frac must be in (0, 1], got {self.train_frac!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to rebuild a run: the model, and the recipe (None for imports)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig | None = field(default_factory=TrainConfig)
    preset: str | None = None
    source: dict[str, Any] | None = None  # provenance of imported weights

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "quadlens-run/1",
            "model": dataclasses.asdict(self.model),
            "train": None if self.train is None else dataclasses.asdict(self.train),
            "preset": self.preset,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "config") -> RunConfig:
        if not isinstance(data, dict) or data.get("format") != "quadlens-run/1":
            raise QuadlensError(
                f"{where}: not a quadlens run config (missing format quadlens-run/1)"
            )
        model = _build(ModelConfig, data.get("model"), f"{where}: model")
        train_data = data.get("train")
        train = None if train_data is None else _build(TrainConfig, train_data, f"{where}: train")
        return cls(model=model, train=train, preset=data.get("preset"), source=data.get("source"))


def _build(kind: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise QuadlensError(f"{where}: expected an object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise QuadlensError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if "betas" in data and isinstance(data["betas"], list):
        data = {**data, "betas": tuple(data["betas"])}
    try:
        return kind(**data)
    except TypeError as exc:
        raise QuadlensError(f"{where}: {exc}") from None


def _check_int(obj: Any, name: str, minimum: int) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise QuadlensError(f"{name} must be an integer >= {minimum}, got {value!r}")


PRESETS: dict[str, RunConfig] = {
    # The paper's pizza model: constant attention, ReLU, weight decay 1, 10,000 epochs.
    "pizza": RunConfig(ModelConfig(), TrainConfig(), preset="pizza"),
    # The same transformer with learned softmax attention.
    "clock": RunConfig(ModelConfig(attention_rate=0.0), TrainConfig(), preset="clock"),
    # Zhong et al.'s recipe: weight decay 2.0, 20,000 epochs.
    "zhong": RunConfig(ModelConfig(), TrainConfig(weight_decay=2.0, epochs=20_000), preset="zhong"),
}


def preset(name: str, **overrides: Any) -> RunConfig:
    """A preset with fields of the model or training config overridden by name."""
    if not isinstance(name, str) or name not in PRESETS:
        raise QuadlensError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    base = PRESETS[name]
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    model_kw = {k: v for k, v in overrides.items() if k in model_fields and v is not None}
    train_kw = {k: v for k, v in overrides.items() if k in train_fields and v is not None}
    unknown = set(overrides) - model_fields - train_fields
    if unknown:
        raise QuadlensError(f"unknown setting(s) {', '.join(sorted(unknown))}")
    assert base.train is not None
    return RunConfig(
        model=dataclasses.replace(base.model, **model_kw),
        train=dataclasses.replace(base.train, **train_kw),
        preset=name,
    )


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for one purpose ("init", "split") derived from the run seed by hashing."""
    digest = hashlib.sha256(f"quadlens:{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)
