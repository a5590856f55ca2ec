"""Importing checkpoints people already have, without running code from them.

- TransformerLens HookedTransformer state dicts (`embed.W_E`, `pos_embed.W_pos`,
  `blocks.0.attn.W_Q`, ..., `unembed.W_U`), bare or inside `{"model": state_dict,
  "model_config": ..., ...}` as TransformerLens training code (e.g. the compact-proofs repo) saves.
- Zhong et al.'s clock/pizza repository (science.md §1): weights stored transposed, attention
  mixed as `attn_coeff * softmax + (1 - attn_coeff) * 1` (weight 1, not 1/2, on each token).

Files are read with `torch.load(weights_only=True)`: only tensors, containers and plain values
are rebuilt. A TransformerLens config object is read into an inert stand-in (its fields become a
dict; no TransformerLens code runs). Anything else that would need code execution is refused.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from quadlens.config import ModelConfig, RunConfig
from quadlens.errors import QuadlensError
from quadlens.model import Model
from quadlens.rundir import model_from_tensors

_TL_CONFIG_NAMES = (
    "transformer_lens.HookedTransformerConfig.HookedTransformerConfig",
    "transformer_lens.config.HookedTransformerConfig.HookedTransformerConfig",
    "transformer_lens.config.hooked_transformer_config.HookedTransformerConfig",
)


class _InertConfig:
    """Receives the fields of a pickled config object; has no behaviour of its own."""

    def __setstate__(self, state: Any) -> None:
        self.fields = state if isinstance(state, dict) else {}


def _as_path(path: object) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise QuadlensError(f"expected the path of a checkpoint file, got a {type(path).__name__}")
    return Path(path)


def safe_load(path: Path) -> Any:
    """torch.load with weights_only=True and clear messages for missing, corrupt or unsafe files."""
    if not path.is_file():
        raise QuadlensError(f"{path}: no such file")
    safe: list[Any] = [(_InertConfig, name) for name in _TL_CONFIG_NAMES]
    safe += _numpy_scalar_globals()
    try:
        with torch.serialization.safe_globals(safe), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": not for users
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] != b"\x80" and head != b"PK":  # neither a pickle nor a torch zip: JSON, text
            raise QuadlensError(f"{path}: not a PyTorch checkpoint (neither a pickle nor a torch "
                                "zip archive)") from None  # fmt: skip
        detail = next((ln for ln in first if "GLOBAL" in ln or "Unsupported" in ln),
                      first[0] if first else "")  # fmt: skip
        raise QuadlensError(
            f"{path}: refusing to load: the file needs arbitrary code to unpickle "
            f"({detail.strip()}); re-save it as a plain state dict of tensors "
            "(torch.save(model.state_dict(), ...))"
        ) from None
    except Exception as exc:  # the unpickler raises anything on garbage input
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QuadlensError(f"{path}: not a readable PyTorch checkpoint ({msg})") from None


def _numpy_scalar_globals() -> list[Any]:
    """numpy scalars and dtypes, which TransformerLens configs hold (e.g. attn_scale). Rebuilding
    them reads a dtype and raw bytes; no user code runs."""
    import numpy as np

    found: list[Any] = [
        np.dtype,
        type(np.dtype("float64")),
        type(np.dtype("float32")),
        type(np.dtype("int64")),
    ]
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    scalar = getattr(getattr(core, "multiarray", None), "scalar", None)
    if scalar is not None:
        found.append(scalar)
    return found


def _tensor_dict(obj: Any, path: Path, *keys: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in keys:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise QuadlensError(f"{path}: expected a state dict of tensors")
    return {str(k): v for k, v in obj.items()}


def _as_float32(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, bool]]:
    """The state dict in float32, quadlens's precision, and for the run's `source`
    {"rounded_to_float32": True} where that rounded a float64 checkpoint (every result is then
    for the rounded weights)."""
    out = {k: v.float() for k, v in sd.items()}
    rounded = any(v.dtype == torch.float64 and not torch.equal(v, out[k].double())
                  for k, v in sd.items())  # fmt: skip
    return out, {"rounded_to_float32": True} if rounded else {}


def _require(sd: dict[str, torch.Tensor], names: list[str], path: Path, kind: str) -> None:
    missing = [n for n in names if n not in sd]
    if missing:
        raise QuadlensError(
            f"{path}: not a {kind} checkpoint (missing {', '.join(missing[:4])}"
            f"{', ...' if len(missing) > 4 else ''}); keys found: {', '.join(list(sd)[:6])}"
        )


def _activation(name: Any, path: Path) -> str:
    act = str(name).lower()
    if act in ("relu", "gelu"):
        return act
    if act in ("gelu_new", "gelu_fast", "solu"):
        raise QuadlensError(f"{path}: activation {name!r} is not supported (relu, gelu)")
    raise QuadlensError(f"{path}: unknown activation {name!r}")


def import_tl(
    path: Path | str, attention_rate: float, activation: str | None = None
) -> tuple[RunConfig, Model]:
    """A TransformerLens one-layer model; `attention_rate` says how its attention was used
    (1 = the constant-1/2 'pizza' hook, 0 = ordinary softmax attention)."""
    path = _as_path(path)
    obj = safe_load(path)
    sd, rounded = _as_float32(_tensor_dict(obj, path, "model", "state_dict", "model_state_dict"))
    need = [
        "embed.W_E",
        "pos_embed.W_pos",
        "blocks.0.attn.W_Q",
        "blocks.0.attn.W_K",
        "blocks.0.attn.W_V",
        "blocks.0.attn.W_O",
        "blocks.0.mlp.W_in",
        "blocks.0.mlp.W_out",
        "unembed.W_U",
    ]
    _require(sd, need, path, "TransformerLens HookedTransformer")
    if any(k.startswith("blocks.1.") for k in sd):
        raise QuadlensError(f"{path}: the model has more than one layer; quadlens needs one")
    if any(k.startswith("blocks.0.ln") or k.startswith("ln_final") for k in sd):
        raise QuadlensError(f"{path}: the model has LayerNorm; quadlens models have none")
    tl_cfg: dict[str, Any] = {}
    if isinstance(obj, dict):
        raw = obj.get("model_config", obj.get("config"))
        tl_cfg = (
            raw.fields if isinstance(raw, _InertConfig) else raw if isinstance(raw, dict) else {}
        )
    act = activation or _activation(tl_cfg.get("act_fn", "relu"), path)
    for bias in (
        "blocks.0.attn.b_Q",
        "blocks.0.attn.b_K",
        "blocks.0.attn.b_V",
        "blocks.0.attn.b_O",
        "unembed.b_U",
    ):
        if bias in sd and sd[bias].abs().max() > 0:
            raise QuadlensError(
                f"{path}: {bias} is non-zero; quadlens models have no attention or unembedding bias"
            )
    W_E, W_Q = sd["embed.W_E"], sd["blocks.0.attn.W_Q"]
    if W_E.dim() != 2 or W_Q.dim() != 3:
        raise QuadlensError(f"{path}: embed.W_E must be [vocab, d_model] and blocks.0.attn.W_Q "
                            f"[heads, d_model, d_head]; got {tuple(W_E.shape)} and "
                            f"{tuple(W_Q.shape)}")  # fmt: skip
    if W_E.shape[1] != W_Q.shape[1] and W_E.shape[0] == W_Q.shape[2]:
        raise QuadlensError(
            f"{path}: the weights are stored transposed, as in Zhong et al.'s clock/pizza "
            "repository; import it with: quadlens import zhong MODEL.pt CONFIG.json"
        )
    if W_E.shape[0] != sd["unembed.W_U"].shape[1]:
        raise QuadlensError(f"{path}: input and output vocabularies differ (not modular addition)")
    n_heads, d_model, d_head = W_Q.shape
    if sd["pos_embed.W_pos"].shape[0] < 2:
        raise QuadlensError(f"{path}: the model's context is shorter than 2 tokens")
    model_cfg = ModelConfig(
        p=W_E.shape[0],
        d_model=d_model,
        n_heads=n_heads,
        d_head=d_head,
        d_mlp=sd["blocks.0.mlp.W_in"].shape[1],
        activation=act,
        attention_rate=attention_rate,
    )
    tensors = {
        "W_E": W_E,
        "W_pos": sd["pos_embed.W_pos"][:2],
        "W_Q": W_Q,
        "W_K": sd["blocks.0.attn.W_K"],
        "W_V": sd["blocks.0.attn.W_V"],
        "W_O": sd["blocks.0.attn.W_O"],
        "W_in": sd["blocks.0.mlp.W_in"],
        "b_in": sd.get("blocks.0.mlp.b_in", torch.zeros(model_cfg.d_mlp)),
        "W_out": sd["blocks.0.mlp.W_out"],
        "b_out": sd.get("blocks.0.mlp.b_out", torch.zeros(d_model)),
        "W_U": sd["unembed.W_U"],
    }
    source = {
        "format": "transformer_lens",
        "file": str(path),
        "attention_rate": attention_rate,
        "tl_config": _jsonable(tl_cfg),
        **rounded,
    }
    cfg = RunConfig(model=model_cfg, train=None, preset=None, source=source)
    return cfg, model_from_tensors(cfg, tensors, str(path))


def import_zhong(model_path: Path | str, config_path: Path | str) -> tuple[RunConfig, Model]:
    """A model from Zhong et al.'s clock/pizza repository (checkpoint + its config JSON)."""
    model_path, config_path = _as_path(model_path), _as_path(config_path)
    if not config_path.is_file():
        raise QuadlensError(f"{config_path}: no such file")
    try:
        zcfg = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QuadlensError(f"{config_path}: not valid JSON ({exc})") from None
    for key in ("C", "n_heads", "d_model", "attn_coeff"):
        if not isinstance(zcfg, dict) or key not in zcfg:
            raise QuadlensError(f"{config_path}: not a Zhong et al. config (missing {key!r})")
    if zcfg.get("n_layers", 1) != 1:
        raise QuadlensError(f"{config_path}: n_layers is {zcfg['n_layers']}; quadlens needs 1")
    if zcfg.get("diff_vocab") or zcfg.get("eqn_sign"):
        raise QuadlensError(f"{config_path}: a variant task (diff_vocab/eqn_sign); need a + b")
    sd, rounded = _as_float32(_tensor_dict(safe_load(model_path), model_path, "model",
                                           "state_dict"))
    need = [
        "embed.W_E",
        "pos_embed.W_pos",
        "blocks.0.attn.W_Q",
        "blocks.0.attn.W_K",
        "blocks.0.attn.W_V",
        "blocks.0.attn.W_O",
        "blocks.0.mlp.W_in",
        "blocks.0.mlp.b_in",
        "blocks.0.mlp.W_out",
        "blocks.0.mlp.b_out",
        "unembed.W_U",
    ]
    _require(sd, need, model_path, "Zhong et al. clock/pizza")
    c = float(zcfg["attn_coeff"])
    if not 0.0 <= c <= 1.0:
        raise QuadlensError(f"{config_path}: attn_coeff {c} outside [0, 1]")
    p, d, h = int(zcfg["C"]), int(zcfg["d_model"]), int(zcfg["n_heads"])
    W_E = sd["embed.W_E"].T  # theirs [d_model, vocab]
    if tuple(W_E.shape) != (p, d):
        raise QuadlensError(
            f"{model_path}: embed.W_E has shape {tuple(sd['embed.W_E'].shape)}, the config "
            f"(C={p}, d_model={d}) needs {(d, p)}"
        )
    # Their attention: c * softmax + (1 - c) * 1 = (2 - c) [rate * 1/2 + (1 - rate) * softmax]
    # with rate = 2 (1 - c) / (2 - c). The factor (2 - c) is absorbed into W_O.
    rate = 2.0 * (1.0 - c) / (2.0 - c)
    W_O = sd["blocks.0.attn.W_O"]  # [d_model, head * d_head]: out_d = sum_f W_O[d, f] z_f
    d_head = W_O.shape[1] // h
    act = _activation(zcfg.get("act_fn", "relu"), config_path)
    model_cfg = ModelConfig(
        p=p,
        d_model=d,
        n_heads=h,
        d_head=d_head,
        d_mlp=sd["blocks.0.mlp.W_in"].shape[0],
        activation=act,
        attention_rate=rate,
    )
    tensors = {
        "W_E": W_E,
        "W_pos": sd["pos_embed.W_pos"][:2],
        # theirs [head, d_head, d_model] (k = W_K x): ours [head, d_model, d_head]
        "W_Q": sd["blocks.0.attn.W_Q"].transpose(1, 2),
        "W_K": sd["blocks.0.attn.W_K"].transpose(1, 2),
        "W_V": sd["blocks.0.attn.W_V"].transpose(1, 2),
        "W_O": (2.0 - c) * W_O.T.reshape(h, d_head, d),
        "W_in": sd["blocks.0.mlp.W_in"].T,
        "b_in": sd["blocks.0.mlp.b_in"],
        "W_out": sd["blocks.0.mlp.W_out"].T,
        "b_out": sd["blocks.0.mlp.b_out"],
        "W_U": sd["unembed.W_U"],
    }
    source = {
        "format": "zhong",
        "file": str(model_path),
        "config_file": str(config_path),
        "attn_coeff": c,
        "zhong_config": _jsonable(zcfg),
        **rounded,
    }
    cfg = RunConfig(model=model_cfg, train=None, preset=None, source=source)
    return cfg, model_from_tensors(cfg, tensors, str(model_path))


def _jsonable(obj: Any) -> Any:
    """A JSON-safe copy (unknown values become their repr)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)
