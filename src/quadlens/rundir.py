"""Run directories: the unit of reproducibility (style.md §4).

    RUN/config.json            the RunConfig (complete: enough to rebuild the model)
    RUN/weights.safetensors    final parameters, the config JSON in the metadata ("config")
    RUN/metrics.jsonl          one line of metrics every `log_every` epochs
    RUN/environment.json       package versions, git revision, platform, command line
    RUN/checkpoint.safetensors periodic training state (parameters + AdamW state), removed at
                               the end; `--resume` continues from it
    RUN/diverged.json          a zoo member whose training diverged: the message

Every file but metrics.jsonl is written to a temporary name in the same directory and renamed
into place, so an interrupted write never leaves a half-written file. metrics.jsonl is appended
to, a line per `log_every` epochs; a line cut short by a killed process or a full disk is
skipped when it is read (`read_metrics`), and `--resume` rewrites the file without it.
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
from collections.abc import Callable, Iterator
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
DIVERGED = "diverged.json"  # a zoo member whose training diverged: {"error": the message}


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
        tmp.write_text(json.dumps(finite_json(data), indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl, skipping blank lines and any line that is not a whole JSON
    object (an append cut short); [] when the file is missing."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("epoch"), int):
            rows.append(row)
    return rows


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
        if (run / DIVERGED).is_file():
            hint = " (its training diverged: see its diverged.json; train it with a smaller --lr)"
        elif (run / CHECKPOINT).exists():
            hint = " (training did not finish; continue it with --resume)"
        else:
            hint = ""
        raise QuadlensError(f"{run}: no {WEIGHTS}{hint}")
    tensors, meta = load_tensors(weights)
    model = model_from_tensors(cfg, tensors, str(weights))
    if "config" in meta:  # what save_model wrote beside the weights
        try:
            # (compared as config.json holds it: write_json makes NaN and infinities null)
            saved = RunConfig.from_dict(finite_json(json.loads(meta["config"])), str(weights))
        except (json.JSONDecodeError, QuadlensError):
            saved = None
        if saved != cfg:
            raise QuadlensError(f"{weights}: these weights were saved for a different config than "
                                f"{run / CONFIG} (copied from another run?)")  # fmt: skip
    return cfg, model


def read_checkpoint(run: Path, cfg: RunConfig) -> tuple[int, Model, dict[str, torch.Tensor]]:
    """An interrupted run's checkpoint: the epoch it was saved at, its model, and the optimizer
    state tensors; refused if it was written for another config."""
    path = run / CHECKPOINT
    tensors, meta = load_tensors(path)
    try:
        saved = RunConfig.from_dict(json.loads(meta.get("config", "null")), str(path))
        step = int(meta["step"])
    except (json.JSONDecodeError, QuadlensError, KeyError, ValueError):
        saved = None
    if saved != cfg:
        raise QuadlensError(f"{path}: checkpoint was written for a different config")
    params = {k.removeprefix("param/"): v for k, v in tensors.items() if k.startswith("param/")}
    state = {k.removeprefix("opt/"): v for k, v in tensors.items() if k.startswith("opt/")}
    return step, model_from_tensors(cfg, params, str(path)), state


def save_model(run: Path, cfg: RunConfig, model: Model) -> None:
    tensors = {n: p for n, p in model.named_parameters()}
    save_tensors(run / WEIGHTS, tensors, {"config": json.dumps(finite_json(cfg.to_dict()))})


def prepare_out_dir(out: Path, overwrite: bool, resume: bool = False,
                    resumable: bool = True) -> None:  # fmt: skip
    """Refuse to clobber an existing directory unless asked to (style.md §8); `resumable`: the
    command has a --resume to suggest."""
    if out.exists() and not out.is_dir():
        raise QuadlensError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if resume:
            return
        if not overwrite:
            raise QuadlensError(
                f"{out}: output directory already exists and is not empty; pass --overwrite to "
                "replace it" + (" (or --resume to continue an interrupted training run)"
                                if resumable else "")
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


@contextmanager
def fresh_out_dir(out: Path, overwrite: bool, resume: bool = False,
                  resumable: Callable[[], bool] | None = None) -> Iterator[None]:  # fmt: skip
    """`prepare_out_dir` around a command that fills `out`, undone if the command fails: a run
    that fails (diverged training, bad input found late) leaves no half-written directory, and
    with `overwrite` the directory it was to replace is put back as it was (it is set aside,
    renamed, until the command succeeds, then removed). An interrupted command (Ctrl-C: its
    checkpoint is what `--resume` continues) keeps what it wrote, as does a failed one for which
    `resumable()` says that what it wrote is worth continuing (a zoo with finished members); the
    directory it was replacing is then kept too, as `OUT.previous` (a line on stderr says so),
    since nothing has yet replaced it. With `resume` nothing is set aside or removed."""
    if resume:
        prepare_out_dir(out, overwrite=False, resume=True)
        yield
        return
    existed = out.is_dir()
    old = None
    if overwrite and existed and any(out.iterdir()):
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        out.rename(old)
    else:
        prepare_out_dir(out, overwrite=False)  # refuses a file, or a full dir (no --overwrite)
    try:
        out.mkdir(parents=True, exist_ok=True)
        yield
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt) or (resumable is not None and resumable()):
            if old is not None:
                kept = _keep_previous(old, out)
                print(f"quadlens: the directory {out} was replacing is kept as {kept} (delete "
                      "it when it is no longer needed)", file=sys.stderr)  # fmt: skip
            raise
        shutil.rmtree(out, ignore_errors=True)
        if old is not None:
            old.rename(out)
        elif existed:
            out.mkdir()
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _keep_previous(old: Path, out: Path) -> Path:
    """Rename the set-aside `old` to a visible OUT.previous (OUT.previous-2, ... if taken)."""
    target, i = out.with_name(f"{out.name}.previous"), 2
    while target.exists():
        target, i = out.with_name(f"{out.name}.previous-{i}"), i + 1
    old.rename(target)
    return target


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
