"""Our forward equals TransformerLens's HookedTransformer on the same weights (to 1e-5).

TransformerLens is an optional extra (`pip install quadlens[tl]`); CI installs it."""

from __future__ import annotations

import pytest
import torch

from quadlens.config import ModelConfig
from quadlens.data import all_pairs
from quadlens.imports import import_tl
from quadlens.model import Model

tl = pytest.importorskip("transformer_lens", reason="TransformerLens extra not installed")


def hooked(model: Model):
    cfg = model.cfg
    tcfg = tl.HookedTransformerConfig(
        n_layers=1,
        d_model=cfg.d_model,
        d_head=cfg.d_head,
        n_heads=cfg.n_heads,
        d_mlp=cfg.d_mlp,
        d_vocab=cfg.p,
        d_vocab_out=cfg.p,
        n_ctx=2,
        act_fn=cfg.activation,
        normalization_type=None,
        device="cpu",
        seed=0,
    )
    ht = tl.HookedTransformer(tcfg)
    from tests.test_imports import tl_state_dict

    sd = ht.state_dict()
    sd.update(tl_state_dict(model))
    ht.load_state_dict(sd)
    return ht, tcfg


def constant_attention_hook(rate: float):
    def hook(pattern, hook):
        uniform = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=pattern.dtype)
        return rate * uniform + (1 - rate) * pattern

    return hook


@pytest.mark.parametrize("rate", [1.0, 0.0, 0.4])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_forward_matches_hooked_transformer(rate, activation):
    cfg = ModelConfig(
        p=23, d_model=32, n_heads=4, d_head=8, d_mlp=64, activation=activation, attention_rate=rate
    )
    model = Model(cfg, seed=7)
    with torch.no_grad():
        model.b_in.normal_(generator=torch.Generator().manual_seed(0))
        model.b_out.normal_(generator=torch.Generator().manual_seed(1))
    ht, _ = hooked(model)
    a, b = all_pairs(cfg.p)
    tokens = torch.stack([a, b], 1)
    with torch.no_grad():
        ref = ht.run_with_hooks(
            tokens, fwd_hooks=[("blocks.0.attn.hook_pattern", constant_attention_hook(rate))]
        )[:, -1]
        ours = model(a, b)
    assert torch.allclose(ours, ref, atol=1e-5, rtol=1e-5), float((ours - ref).abs().max())


def test_import_file_saved_with_tl_config_object(tmp_path):
    """A {model, model_config: HookedTransformerConfig} file, as TransformerLens training code
    saves it, imports without running TransformerLens code, and matches its forward."""
    cfg = ModelConfig(p=23, d_model=32, n_heads=4, d_head=8, d_mlp=64)
    model = Model(cfg, seed=1)
    ht, tcfg = hooked(model)
    path = tmp_path / "model.pth"
    torch.save({"model": ht.state_dict(), "model_config": tcfg, "epoch": 10}, path)
    rcfg, imported = import_tl(path, attention_rate=1.0)
    assert rcfg.model == cfg
    assert rcfg.source["tl_config"]["d_vocab"] == 23
    a, b = all_pairs(cfg.p)
    with torch.no_grad():
        ref = ht.run_with_hooks(
            torch.stack([a, b], 1),
            fwd_hooks=[("blocks.0.attn.hook_pattern", constant_attention_hook(1.0))],
        )[:, -1]
        assert torch.allclose(imported(a, b), ref, atol=1e-5)
