"""The `interpolation` certificate with and without extra input waves, over a zoo's members,
grouped by their key-frequency mixing: the table of docs/zoo.md.

    .venv/bin/python tools/extra_inputs_table.py zoos/pizza [--configs 32:0,128:0,128:4]
                                                 [--figure docs/figures/extra-inputs.png]

Each config is GRID:EXTRA_INPUTS. Reads the zoo's study (`quadlens zoo study ZOO`: each
member's `frac_key_mixing`), certifies every member with `interpolation` under each config with
the brute-force truth beside it (in this process; ~6 minutes for the 152-seed zoo on one core),
and prints: per config, the members certified 100% (all, and per mixing group), the median
certified accuracy of those that mix most, the median cost against `brute` and whether every
certificate was sound. Writes nothing, except with `--figure`: each model's certified accuracy
under each config, one panel per mixing group, the configs' median costs on the axis.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from mixing_figure import group_of, plt  # the groups of docs/zoo.md's first table; Agg backend

from quadlens import certify as ce
from quadlens.rundir import load_run

NAMES = ("without mixing", "under 5%", "5% or more")  # group_of's groups, as this table names them


def configs(text: str) -> list[tuple[int, int]]:
    try:
        out = [tuple(int(x) for x in c.split(":")) for c in text.split(",")]
    except ValueError:
        out = []
    if not out or any(len(c) != 2 for c in out):
        raise argparse.ArgumentTypeError(f"expected GRID:EXTRA_INPUTS[,...], got {text!r}")
    return out  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("zoo", type=Path)
    ap.add_argument("--configs", type=configs, default=configs("32:0,128:0,128:4"))
    ap.add_argument("--figure", type=Path, help="also plot the certified accuracies (PNG)")
    args = ap.parse_args(argv)
    study_path = args.zoo / "study" / "study.json"
    if not study_path.is_file():
        print(f"{study_path} is missing: run `quadlens zoo study {args.zoo}` first",
              file=sys.stderr)  # fmt: skip
        return 2
    mix = {r["name"]: r["frac_key_mixing"]
           for r in json.loads(study_path.read_text())["per_model"]
           if r.get("frac_key_mixing") is not None}  # fmt: skip
    rows: dict[tuple[int, int], dict[str, tuple[float, float, bool]]]
    rows = {c: {} for c in args.configs}
    for name in sorted(mix):
        _, model = load_run(args.zoo / "runs" / name)
        truth = ce.true_margins(model)
        for grid, extra in args.configs:
            c = ce.certify(model, "interpolation", check=True, grid=grid, extra_inputs=extra,
                           truth=truth)  # fmt: skip
            rows[(grid, extra)][name] = (c.certified_accuracy, c.flops / c.brute_flops,
                                         bool(c.sound))  # fmt: skip
    head = ["config", f"all {len(mix)}: certified 100%"]
    head += [f"{g} ({sum(group_of(m) == i for m in mix.values())})" for i, g in enumerate(NAMES)]
    head += [f"{NAMES[-1]}: median certified", "median cost x brute", "all sound"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for (grid, extra), r in rows.items():
        full = [n for n in r if r[n][0] == 1]
        cells = [f"grid {grid}, --extra-inputs {extra}", str(len(full))]
        cells += [str(sum(group_of(mix[n]) == i for n in full)) for i in range(len(NAMES))]
        most = [r[n][0] for n in r if group_of(mix[n]) == len(NAMES) - 1]
        cells += [f"{statistics.median(most):.1%}" if most else "-",
                  f"{statistics.median(v[1] for v in r.values()):.2f}",
                  "yes" if all(v[2] for v in r.values()) else "NO"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    if args.figure:
        figure(rows, mix, args.figure)
    return 0 if all(v[2] for r in rows.values() for v in r.values()) else 1


def figure(rows: dict[tuple[int, int], dict[str, tuple[float, float, bool]]],
           mix: dict[str, float], out: Path) -> None:
    """Each model's certified accuracy (a dot) under each config (a column, its median cost
    against `brute` below it), one panel per mixing group; the count certified 100% on top."""
    cfgs = list(rows)
    fig, axes = plt.subplots(1, len(NAMES), figsize=(4 * len(NAMES), 4), sharey=True,
                             layout="constrained")  # fmt: skip
    for i, (ax, name) in enumerate(zip(axes, NAMES, strict=True)):
        members = sorted(n for n in mix if group_of(mix[n]) == i)
        for x, cfg in enumerate(cfgs):
            acc = [100 * rows[cfg][n][0] for n in members]
            jitter = [x + 0.3 * ((j * 0.618) % 1 - 0.5) for j in range(len(acc))]
            ax.scatter(jitter, acc, s=10, alpha=0.6, color=f"C{x}")
            ax.text(x, 103, f"{sum(a == 100 for a in acc)}", ha="center", fontsize=8)
        ax.set_xticks(range(len(cfgs)), [
            f"grid {g}\n+{e} inputs\n{statistics.median(v[1] for v in rows[(g, e)].values()):.1f}x"
            for g, e in cfgs], fontsize=8)  # fmt: skip
        ax.set_ylim(-3, 108)
        ax.set_title(f"{name} ({len(members)} models)", fontsize=10)
    axes[0].set_ylabel("interpolation: certified accuracy (%)")
    fig.suptitle("Extra input waves (--extra-inputs) on the certificates; above each column the "
                 "models certified 100%, below it the median cost x brute", fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
