"""Neurons that mix two key frequencies, against what the compact proofs achieve, over a zoo.

Reads a zoo's study (`quadlens zoo study ZOO`: each member's `frac_key_mixing`, the share of its
key-cluster neurons whose second-strongest input frequency is another key frequency with >= 5%
of their input power, and whether its compact bounds are non-vacuous) and its certificates
(`quadlens certify ZOO --all-strategies`), prints a table of the members grouped by that share,
and a table of the key clusters grouped by whether the key frequencies their neurons mix in are
among the harmonics h k (h = 1..harmonics, folded) that the bounds' neuron fit already carries,
and draws the figure of docs/zoo.md:

    .venv/bin/python tools/mixing_figure.py zoos/pizza docs/figures/pizza152-truegrad-mixing.png
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from quadlens.bound import harmonic_orders
from quadlens.lens import MIX_OUTLIER

GROUPS = ("none", "under 5%", "5% or more")  # models by the share of key-cluster neurons that mix
CLUSTER_GROUPS = ("no mixing", "mixes only harmonics the fit carries", "mixes another frequency")


def rows(zoo: Path) -> list[dict]:
    study = {r["name"]: r for r in json.loads((zoo / "study" / "study.json").read_text())
             ["per_model"]}  # fmt: skip
    cert = json.loads((zoo / "certify" / "certify.json").read_text())
    out = []
    for member in cert["per_model"]:
        s = study.get(member["name"])
        if s is None or s.get("frac_key_mixing") is None:
            continue  # (not studied, or no key cluster)
        c = {x["strategy"]: x["certified_accuracy"] for x in member["certificates"]}
        out.append({"name": member["name"], "mix": s["frac_key_mixing"],
                    "nonvacuous": bool(s["nonvacuous_bounds"]), **c})  # fmt: skip
    return out


def cluster_rows(zoo: Path) -> list[dict]:
    """Every key cluster with a compact bound, from each member's analysis.json and bound.json
    (written by `zoo study`): its mixing, and whether the key frequencies it mixes in are
    harmonics h k (folded, h = 1..the bound's harmonics) that the bound's fit carries."""
    out = []
    for ana in sorted(zoo.glob("runs/*/analysis")):
        try:
            an = json.loads((ana / "analysis.json").read_text())
            bd = json.loads((ana / "bound.json").read_text())
        except FileNotFoundError:
            continue
        p, bounds = an["p"], {c["freq"]: c for c in bd["clusters"]}
        for c in an["clusters"]:
            if not c.get("key") or c["freq"] not in bounds or c.get("mixed_with") is None:
                continue
            k = c["freq"]
            orders = harmonic_orders(p, k, bd["harmonics"])
            carried = {min(h * k % p, p - h * k % p) for h in orders}
            mix, other = c["frac_key_mixing"], set(c["mixed_with"]) - carried
            group = CLUSTER_GROUPS[0 if mix == 0 else 2 if other else 1]
            b = bounds[k]
            out.append({"group": group, "big": mix >= MIX_OUTLIER, "bound": b["bound"],
                        "actual": b["actual"], "input": b["terms"]["input_residual"]})  # fmt: skip
    return out


def cluster_table(data: list[dict]) -> str:
    lines = ["| key cluster | share of its neurons that mix | clusters | non-vacuous bound | "
             "median bound | median actual | median input-remainder line |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for group in CLUSTER_GROUPS:
        for big in (False, True):
            g = [r for r in data if r["group"] == group and r["big"] == big]
            if not g:
                continue
            bound, actual, inp = (statistics.median(r[key] for r in g)
                                  for key in ("bound", "actual", "input"))  # fmt: skip
            share = "0" if group == CLUSTER_GROUPS[0] else ">= 5%" if big else "under 5%"
            lines.append(f"| {group} | {share} | {len(g)} | {sum(r['bound'] < 1 for r in g)} | "
                         f"{bound:.2f} | {actual:.2f} | {inp:.2f} |")  # fmt: skip
    return "\n".join(lines)


def group_of(mix: float) -> int:
    """The index in GROUPS of a model whose key-cluster neurons mix at this share."""
    return 0 if mix == 0 else 1 if mix < MIX_OUTLIER else 2


def table(data: list[dict]) -> str:
    lines = ["| key-cluster neurons with a second key frequency | models | non-vacuous bounds | "
             "`cluster` 100% | `interpolation` 100% | `quadrature`, median certified |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for i, name in enumerate(GROUPS):
        g = [r for r in data if group_of(r["mix"]) == i]
        if not g:
            continue
        quad = statistics.median(r["quadrature"] for r in g)
        lines.append(f"| {name} | {len(g)} | {sum(r['nonvacuous'] for r in g)} | "
                     f"{sum(r['cluster'] == 1 for r in g)} | "
                     f"{sum(r['interpolation'] == 1 for r in g)} | {quad:.1%} |")  # fmt: skip
    return "\n".join(lines)


def figure(data: list[dict], out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    mix = [100 * r["mix"] for r in data]
    for key, color, label in (("quadrature", "tab:red", "quadrature"),
                              ("interpolation", "tab:orange", "interpolation")):  # fmt: skip
        axes[0].scatter(mix, [100 * r[key] for r in data], s=12, alpha=0.6, color=color,
                        label=label)  # fmt: skip
    axes[0].axvline(100 * MIX_OUTLIER, color="grey", ls="--", lw=1)
    axes[0].set_xlabel("key-cluster neurons with a second key frequency (%)")
    axes[0].set_ylabel("certified accuracy (%)")
    axes[0].set_title("Compact certificates, one point per model", fontsize=10)
    axes[0].legend(fontsize=8)
    width = 0.27
    for j, (key, label) in enumerate((("nonvacuous", "bounds non-vacuous"),
                                      ("cluster", "cluster certifies 100%"),
                                      ("interpolation", "interpolation certifies 100%"))):
        shares = []
        for i in range(len(GROUPS)):
            g = [r for r in data if group_of(r["mix"]) == i]
            ok = sum(bool(r[key]) if key == "nonvacuous" else r[key] == 1 for r in g)
            shares.append(100 * ok / len(g) if g else 0.0)
        axes[1].bar([i + (j - 1) * width for i in range(len(GROUPS))], shares, width,
                    label=label)  # fmt: skip
    counts = [sum(group_of(r["mix"]) == i for r in data) for i in range(len(GROUPS))]
    axes[1].set_xticks(range(len(GROUPS)), [f"{n}\n({c} models)" for n, c in
                                            zip(GROUPS, counts, strict=True)])  # fmt: skip
    axes[1].set_ylabel("share of the models (%)")
    axes[1].set_xlabel("key-cluster neurons with a second key frequency")
    axes[1].set_title("Bounds and certificates that rest on the one-frequency fit", fontsize=10)
    axes[1].legend(fontsize=8)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    zoo, out = Path(argv[0]), Path(argv[1])
    for need in (zoo / "study" / "study.json", zoo / "certify" / "certify.json"):
        if not need.is_file():
            print(f"{need} is missing: run `quadlens zoo study {zoo}` and `quadlens certify "
                  f"{zoo} --all-strategies` first", file=sys.stderr)  # fmt: skip
            return 2
    data = rows(zoo)
    if not data:
        print(f"{zoo}: no studied member has key clusters (or the study predates "
              "frac_key_mixing: run `quadlens zoo study` again)", file=sys.stderr)  # fmt: skip
        return 2
    print(table(data))
    clusters = cluster_rows(zoo)
    if clusters:
        print()
        print(cluster_table(clusters))
    figure(data, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
