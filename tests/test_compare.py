"""The side-by-side comparison of lenses."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def test_compare_table(tiny_run):
    res = run_cli("compare", str(tiny_run), "--json")
    assert res.code == 0, res.err
    rows = {r["lens"]: r for r in json.loads(res.out)["lenses"]}
    full = rows["full MLP (the model)"]
    assert full["fve"] == 1.0 and full["size"] == 64 * (3 * 23 + 1)
    analysis = json.loads(run_cli("analyze", str(tiny_run), "--json", "--no-figures").out)
    n_key = len(analysis["key_frequencies"])
    assert rows["closed form: pizza"]["size"] == n_key
    assert rows["closed form: pizza"]["fve"] == analysis["fve"]["pizza"]
    assert rows["closed form: pizza + secondary"]["size"] == 5 * n_key
    assert "compact bound" in rows["closed form: pizza"]["proves"]
    approx = json.loads(run_cli("approx", str(tiny_run), "--json").out)
    assert rows["quadratic approximant"]["accuracy"] == approx["accuracy"]["quadratic"]
    assert all(r["flops"] < full["flops"] for name, r in rows.items()
               if name.startswith("closed form"))  # fmt: skip
    assert (tiny_run / "analysis" / "compare.txt").read_text().startswith("lens")


def test_compare_refuses_non_relu(tmp_path):
    out = tmp_path / "g"
    assert run_cli("synth", "gromov", "--p", "11", "--width", "30", "--out", str(out)).code == 0
    res = run_cli("compare", str(out))
    assert res.code == 2 and "ReLU" in res.err


def test_closed_forms_match_their_formulas(tiny_run):
    """closed_form evaluates the p^3 table as one matmul (angle addition); here each entry is
    computed from the formula itself, a cosine per (a, b, c, k)."""
    import math

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from quadlens import rundir
    from quadlens.lens import analyze, closed_form, closed_form_flops

    an = analyze(rundir.load_run(tiny_run)[1])
    key = [cl for cl in an.clusters if cl.key]
    p = an.p
    a, b, c = torch.meshgrid(*[torch.arange(p, dtype=torch.float64)] * 3, indexing="ij")
    kinds = ("pizza", "clock", "pizza_secondary")
    ref = {k: torch.zeros(p, p, p, dtype=torch.float64) for k in kinds}
    for cl in key:
        w = 2 * math.pi * cl.freq / p
        wave = torch.cos(w * (a + b - c))
        ref["clock"] += 2 / math.pi * cl.C_k * wave
        pizza = cl.C_k * torch.cos(w * (a - b) / 2).abs() * wave
        ref["pizza"] += pizza
        ref["pizza_secondary"] += pizza
        for D, x in ((cl.D_a, a), (cl.D_b, b)):
            phase = w * (2 * x - c)
            ref["pizza_secondary"] += D[0] * torch.cos(phase) - D[1] * torch.sin(phase)
    for kind, table in ref.items():
        got = closed_form(p, key, kind).reshape(p, p, p)
        assert torch.allclose(got, table, rtol=0, atol=1e-12 * float(table.abs().max())), kind
        # the count compare reports: its matmul part is what torch counts, the rest O(p^2 |K|)
        with FlopCounterMode(display=False) as counter:
            closed_form(p, key, kind)
        matmul = 4 * p**3 * len(key)
        assert counter.get_total_flops() == matmul, kind
        assert 0 < closed_form_flops(p, len(key), kind) - matmul <= 30 * p * p * len(key), kind
    assert float(closed_form(p, [], "pizza").abs().max()) == 0.0


def test_compare_reuses_what_it_is_given(tiny_run):
    """reproduce hands compare its analysis and bounds: the same rows as computing them."""
    from quadlens import rundir
    from quadlens.bound import bound
    from quadlens.compare import compare
    from quadlens.lens import analyze

    model = rundir.load_run(tiny_run)[1]
    assert compare(model, analyze(model), bound(model)) == compare(model)
