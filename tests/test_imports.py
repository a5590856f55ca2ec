"""Imports of checkpoints trained elsewhere, checked against independent reference forwards."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pytest
import torch

from quadlens.config import ModelConfig
from quadlens.data import all_pairs
from quadlens.errors import QuadlensError
from quadlens.evaluate import evaluate
from quadlens.imports import import_tl, import_zhong, safe_load
from quadlens.model import Model


def zhong_reference_forward(sd: dict[str, torch.Tensor], c: float, a, b) -> torch.Tensor:
    """Zhong et al.'s forward, written from their description (science.md §1): transposed
    weights, no causal mask, attn = c * softmax + (1 - c), logits at the last position."""
    sd = {k: v.double() for k, v in sd.items()}
    x = sd["embed.W_E"][:, torch.stack([a, b], 1)].permute(1, 2, 0) + sd["pos_embed.W_pos"]
    q = torch.einsum("ihd,bpd->biph", sd["blocks.0.attn.W_Q"], x)
    k = torch.einsum("ihd,bpd->biph", sd["blocks.0.attn.W_K"], x)
    v = torch.einsum("ihd,bpd->biph", sd["blocks.0.attn.W_V"], x)
    scores = torch.einsum("biph,biqh->biqp", k, q) / math.sqrt(q.shape[-1])
    attn = c * torch.softmax(scores, -1) + (1 - c)
    z = torch.einsum("biph,biqp->biqh", v, attn)
    z_flat = z.permute(0, 2, 1, 3).reshape(z.shape[0], z.shape[2], -1)
    x = x + torch.einsum("df,bqf->bqd", sd["blocks.0.attn.W_O"], z_flat)
    pre = torch.einsum("md,bpd->bpm", sd["blocks.0.mlp.W_in"], x) + sd["blocks.0.mlp.b_in"]
    x = x + torch.einsum("dm,bpm->bpd", sd["blocks.0.mlp.W_out"], torch.relu(pre))
    x = x + sd["blocks.0.mlp.b_out"]
    return (x @ sd["unembed.W_U"])[:, -1]


def test_zhong_fixture_imports_and_scores_100(zhong_paths):
    cfg, model = import_zhong(*zhong_paths)
    assert cfg.model.p == 59 and cfg.model.attention_rate == 1.0
    ev = evaluate(model)
    assert ev.accuracy == 1.0 and ev.n_inputs == 59 * 59
    assert 14.0 < ev.min_margin < 14.6  # the fixture's README: about 14.3


def test_zhong_import_matches_reference_forward(zhong_paths):
    sd = torch.load(zhong_paths[0], weights_only=True, map_location="cpu")
    _, model = import_zhong(*zhong_paths)
    a, b = all_pairs(59)
    ref = zhong_reference_forward(sd, 0.0, a, b)
    ours = model.double()(a, b)
    assert torch.allclose(ours, ref, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("c", [0.3, 1.0])
def test_zhong_mixed_attention_maps_to_attention_rate(zhong_paths, tmp_path, c):
    """attn_coeff c in (0, 1] becomes attention rate 2(1-c)/(2-c) with W_O scaled by 2-c."""
    import json

    cfg_json = json.loads(zhong_paths[1].read_text())
    cfg_json["attn_coeff"] = c
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg_json))
    cfg, model = import_zhong(zhong_paths[0], path)
    assert cfg.model.attention_rate == pytest.approx(2 * (1 - c) / (2 - c))
    sd = torch.load(zhong_paths[0], weights_only=True, map_location="cpu")
    a, b = all_pairs(59)
    idx = torch.arange(0, 59 * 59, 7)
    ref = zhong_reference_forward(sd, c, a[idx], b[idx])
    # W_O is scaled by (2 - c) in float32, hence the float32-level tolerance
    assert torch.allclose(model.double()(a[idx], b[idx]), ref, atol=1e-4, rtol=1e-5)


def test_tl_state_dict_roundtrip(tmp_path):
    """A bare TransformerLens-style state dict (with zero biases) imports to the same model."""
    cfg = ModelConfig(p=13, d_model=24, n_heads=3, d_head=8, d_mlp=40)
    model = Model(cfg, seed=2)
    sd = tl_state_dict(model)
    path = tmp_path / "m.pth"
    torch.save({"model": sd, "model_config": {"act_fn": "relu", "d_vocab": 13}}, path)
    rcfg, imported = import_tl(path, attention_rate=1.0)
    assert rcfg.model == cfg
    for n, p in model.named_parameters():
        assert torch.equal(p, getattr(imported, n)), n


def tl_state_dict(model: Model) -> dict[str, torch.Tensor]:
    g = {n: p.detach().clone() for n, p in model.named_parameters()}
    h, dh = model.cfg.n_heads, model.cfg.d_head
    return {
        "embed.W_E": g["W_E"],
        "pos_embed.W_pos": g["W_pos"],
        "blocks.0.attn.W_Q": g["W_Q"],
        "blocks.0.attn.W_K": g["W_K"],
        "blocks.0.attn.W_V": g["W_V"],
        "blocks.0.attn.W_O": g["W_O"],
        "blocks.0.attn.b_Q": torch.zeros(h, dh),
        "blocks.0.attn.b_K": torch.zeros(h, dh),
        "blocks.0.attn.b_V": torch.zeros(h, dh),
        "blocks.0.attn.b_O": torch.zeros(model.cfg.d_model),
        "blocks.0.mlp.W_in": g["W_in"],
        "blocks.0.mlp.b_in": g["b_in"],
        "blocks.0.mlp.W_out": g["W_out"],
        "blocks.0.mlp.b_out": g["b_out"],
        "unembed.W_U": g["W_U"],
        "unembed.b_U": torch.zeros(model.cfg.p),
    }


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_QUADLENS_TEST",))


def test_untrusted_pickle_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"model": _Evil()}, f)
    with pytest.raises(QuadlensError, match="refusing to load"):
        safe_load(path)
    assert not (tmp_path / "PWNED_BY_QUADLENS_TEST").exists()
    # the same inside a real torch zip checkpoint
    path2 = tmp_path / "evil2.pth"
    torch.save({"model": _Evil()}, path2)
    with pytest.raises(QuadlensError, match="refusing to load"):
        import_tl(path2, attention_rate=1.0)
    assert not (tmp_path / "PWNED_BY_QUADLENS_TEST").exists()


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "not a readable PyTorch checkpoint"),
        (b"this is not a checkpoint at all", "not a (readable )?PyTorch checkpoint"),
        (b'{"d_vocab": 59, "act_fn": "relu"}', "not a PyTorch checkpoint"),  # (JSON)
    ],
)
def test_corrupt_checkpoint(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(QuadlensError, match=match):
        safe_load(path)


def test_truncated_zip_checkpoint(tmp_path, zhong_paths):
    data = zhong_paths[0].read_bytes()
    path = tmp_path / "trunc.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(QuadlensError, match="not a readable PyTorch checkpoint"):
        import_zhong(path, zhong_paths[1])


def test_foreign_state_dict_refused(tmp_path, zhong_paths):
    path = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(10)}, path)
    with pytest.raises(QuadlensError, match="not a TransformerLens"):
        import_tl(path, attention_rate=1.0)
    with pytest.raises(QuadlensError, match="not a Zhong"):
        import_zhong(path, zhong_paths[1])
    # a TransformerLens file given to the Zhong importer has the wrong (untransposed) shapes
    model = Model(ModelConfig(), seed=0)
    torch.save(tl_state_dict(model), tmp_path / "tl.pth")
    with pytest.raises(QuadlensError, match=r"embed\.W_E has shape"):
        import_zhong(tmp_path / "tl.pth", zhong_paths[1])


def test_zhong_file_given_to_the_tl_importer_says_which_importer(zhong_paths):
    with pytest.raises(QuadlensError, match="quadlens import zhong"):
        import_tl(zhong_paths[0], attention_rate=1.0)


def test_missing_files(tmp_path, zhong_paths):
    with pytest.raises(QuadlensError, match="no such file"):
        import_zhong(tmp_path / "nope.pt", zhong_paths[1])
    with pytest.raises(QuadlensError, match="no such file"):
        import_zhong(zhong_paths[0], tmp_path / "nope.json")
    with pytest.raises(QuadlensError, match="no such file"):
        import_tl(Path(tmp_path / "nope.pth"), attention_rate=1.0)


def test_tl_state_dict_with_a_malformed_w_q(tmp_path):
    """A W_Q missing its head axis gave an IndexError."""
    from tests.conftest import TINY_MODEL

    sd = tl_state_dict(Model(TINY_MODEL, seed=0))
    sd["blocks.0.attn.W_Q"] = sd["blocks.0.attn.W_Q"][0]
    torch.save(sd, tmp_path / "q.pth")
    with pytest.raises(QuadlensError, match=r"W_Q \[heads, d_model, d_head\]"):
        import_tl(tmp_path / "q.pth", 1.0)


def test_a_float64_checkpoint_is_rounded_and_says_so(tmp_path):
    """It was rounded to float32 silently: the certificates are for the rounded model."""
    from tests.conftest import TINY_MODEL

    sd = {k: v.double() for k, v in tl_state_dict(Model(TINY_MODEL, seed=0)).items()}
    sd["blocks.0.mlp.W_in"] = sd["blocks.0.mlp.W_in"] + 1e-12  # not representable in float32
    torch.save(sd, tmp_path / "f64.pth")
    cfg, _ = import_tl(tmp_path / "f64.pth", 1.0)
    assert cfg.source["rounded_to_float32"] is True
    from tests.conftest import run_cli

    res = run_cli("import", "tl", str(tmp_path / "f64.pth"), "--attention-rate", "1",
                  "--out", str(tmp_path / "run"))  # fmt: skip
    assert res.code == 0 and "float64" in res.err, res.err
    exact = {k: v.double() for k, v in tl_state_dict(Model(TINY_MODEL, seed=0)).items()}
    torch.save(exact, tmp_path / "exact.pth")  # float64 holding float32 values: nothing lost
    cfg, _ = import_tl(tmp_path / "exact.pth", 1.0)
    assert "rounded_to_float32" not in cfg.source
