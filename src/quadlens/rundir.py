"""Run directories: the unit of reproducibility (style.md §4).

    RUN/config.json            the RunConfig (complete: enough to rebuild the model)
    RUN/weights.safetensors    final parameters, the config JSON in the metadata ("config")
    RUN/metrics.jsonl          one line of metrics every `log_every` epochs
    RUN/environment.json       package versions, git revision, platform, command line
    RUN/checkpoint.safetensors periodic training state (parameters + AdamW state), removed at
                               the end; `--resume` continues from it

Every file is written to a temporary name in the same directory and renamed into place, so an
interrupted write never leaves a half-written file.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from quadlens.config import RunConfig
from quadlens.errors import QuadlensError
from quadlens.model import Model, param_shapes

CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
METRICS = "metrics.jsonl"
ENVIRONMENT = "environment.json"
CHECKPOINT = "checkpoint.safetensors"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644 & ~_umask())  # mkstemp makes 0600; results are for sharing
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def finite_json(obj: Any) -> Any:
    """A copy that is strict JSON: NaN and infinities become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite_json(v) for v in obj]
    return obj


def write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(cpu, str(tmp), metadata=metadata)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, with clear errors for bad files."""
    if not path.is_file():
        raise QuadlensError(f"{path}: no such file")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise QuadlensError(f"{path}: not a readable safetensors file ({exc})") from None


def read_config(run: Path) -> RunConfig:
    path = run / CONFIG
    if not run.is_dir():
        raise QuadlensError(f"{run}: no such run directory")
    if not path.is_file():
        raise QuadlensError(f"{run}: not a quadlens run directory (no {CONFIG})")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QuadlensError(f"{path}: not valid JSON ({exc})") from None
    return RunConfig.from_dict(data, where=str(path))


def model_from_tensors(cfg: RunConfig, tensors: dict[str, torch.Tensor], where: str) -> Model:
    """A Model with the given parameters, after checking names and shapes against the config."""
    expected = param_shapes(cfg.model)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise QuadlensError(
            f"{where}: parameters do not match the config"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(extra)}" if extra else "")
        )
    model = Model(cfg.model)
    with torch.no_grad():
        for name, shape in expected.items():
            value = tensors[name]
            if tuple(value.shape) != shape:
                raise QuadlensError(
                    f"{where}: {name} has shape {tuple(value.shape)}, the config needs {shape}"
                )
            if not torch.is_floating_point(value) or not torch.isfinite(value).all():
                raise QuadlensError(f"{where}: {name} is not a finite floating-point tensor")
            getattr(model, name).copy_(value)
    return model


def load_run(run: str | Path) -> tuple[RunConfig, Model]:
    """The config and final model of a finished (trained or imported) run directory."""
    run = Path(run)
    cfg = read_config(run)
    weights = run / WEIGHTS
    if not weights.is_file():
        hint = (
            " (training did not finish; continue it with --resume)"
            if (run / CHECKPOINT).exists()
            else ""
        )
        raise QuadlensError(f"{run}: no {WEIGHTS}{hint}")
    tensors, _ = load_tensors(weights)
    return cfg, model_from_tensors(cfg, tensors, str(weights))


def save_model(run: Path, cfg: RunConfig, model: Model) -> None:
    tensors = {n: p for n, p in model.named_parameters()}
    save_tensors(run / WEIGHTS, tensors, {"config": json.dumps(cfg.to_dict())})


def prepare_out_dir(out: Path, overwrite: bool, resume: bool = False) -> None:
    """Refuse to clobber an existing directory unless asked to (style.md §8)."""
    if out.exists() and not out.is_dir():
        raise QuadlensError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if resume:
            return
        if not overwrite:
            raise QuadlensError(
                f"{out}: output directory already exists and is not empty; pass --overwrite to "
                "replace it (or --resume to continue an interrupted training run)"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def environment(command: list[str] | None = None) -> dict[str, Any]:
    """Versions, platform, git revision of the quadlens source, and the command line."""
    from importlib import metadata

    versions = {}
    for pkg in ("quadlens", "torch", "numpy", "safetensors"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "versions": {"python": platform.python_version(), **versions},
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "git_revision": _git_revision(),
        "command": list(sys.argv if command is None else command),
    }


def _git_revision() -> str | None:
    src = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None
