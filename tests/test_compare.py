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
