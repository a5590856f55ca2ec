"""Frozen masks: the path and neuron decompositions are exact; a region's map is exact on it."""

from __future__ import annotations

import json

import pytest
import torch

from quadlens.circuit import circuit
from quadlens.config import ModelConfig
from quadlens.data import all_pairs
from quadlens.errors import QuadlensError
from quadlens.masks import analyze_masks, neuron_contributions, paths
from quadlens.model import Model
from tests.conftest import run_cli


def _model(**kw):
    shape = {"p": 13, "d_model": 24, "n_heads": 3, "d_head": 8, "d_mlp": 40, **kw}
    model = Model(ModelConfig(**shape), seed=4)
    with torch.no_grad():
        model.b_in.normal_(generator=torch.Generator().manual_seed(0))
        model.b_out.normal_(generator=torch.Generator().manual_seed(1))
    return model.double()


@pytest.mark.parametrize("architecture", ["transformer", "mlp"])
def test_paths_sum_to_the_logits_on_every_input(architecture):
    model = _model(architecture=architecture)
    a, b = all_pairs(13)
    with torch.no_grad():
        logits = model(a, b)
    total = sum(paths(model).values())
    assert torch.allclose(total, logits, rtol=0, atol=1e-10)
    c = circuit(model)
    for x, y in ((0, 0), (3, 11), (12, 5)):
        mlp = neuron_contributions(model, x, y).sum(0)
        expected = logits[x * 13 + y] - c.D_a[x] - c.D_b[y] - c.logit_bias
        assert torch.allclose(mlp, expected.detach(), atol=1e-10)


def test_region_map_is_exact_on_its_region():
    model = _model(d_mlp=6)  # few neurons: large regions
    rep = analyze_masks(model, n_reuse=3)
    assert sum(rep.region_sizes) == 13 * 13 and rep.n_patterns == len(rep.region_sizes)
    assert rep.reconstruction_max_error < 1e-10
    assert abs(sum(rep.path_share.values()) - 1) < 1e-12
    c = circuit(model)
    with torch.no_grad():
        pre = (c.U[:, None, :] + c.V[None, :, :] + c.b_in).reshape(169, -1)
    patterns = pre > 0
    a_all, b_all = all_pairs(13)
    with torch.no_grad():
        logits = model(a_all, b_all)
    for r in rep.reuse:
        a, b = r.example
        same = (patterns == patterns[a * 13 + b]).all(1)
        assert int(same.sum()) == r.size
        # the frozen map of this region reproduces the model exactly on the whole region
        mask = patterns[a * 13 + b].double()
        with torch.no_grad():
            frozen = (pre * mask) @ c.O + c.D_a[a_all] + c.D_b[b_all] + c.logit_bias
        assert torch.allclose(frozen[same], logits[same], atol=1e-10)
        assert r.size < 169 or r.max_abs_error < 1e-10
    assert rep.reuse[0].size == max(rep.region_sizes)


def test_masks_refuse_non_relu_and_cli(tmp_path, tiny_run):
    with pytest.raises(QuadlensError, match="ReLU"):
        analyze_masks(_model(activation="gelu"))
    res = run_cli("masks", str(tiny_run), "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["n_inputs"] == 529 and data["reconstruction_max_error"] < 1e-9
    assert (tiny_run / "analysis" / "masks.json").is_file()
    assert (tiny_run / "analysis" / "masks.png").stat().st_size > 1000


@pytest.mark.parametrize("architecture", ["transformer", "mlp"])
def test_region_map_is_exact_affine_on_the_region(architecture):
    from quadlens.masks import region_map

    model = _model(architecture=architecture, d_mlp=6)
    a, b = all_pairs(13)
    with torch.no_grad():
        x = model.mlp_input(a, b)
        pre = x @ model.W_in + model.b_in
        logits = model(a, b)
    pattern = pre > 0
    M, bias = region_map(model, 4, 9)
    same = (pattern == pattern[4 * 13 + 9]).all(1)
    assert int(same.sum()) >= 1
    assert torch.allclose(x[same] @ M + bias, logits[same], atol=1e-10)
    if (~same).any():  # and, in general, not elsewhere
        assert not torch.allclose(x[~same] @ M + bias, logits[~same], atol=1e-6)
