"""The `interpolation` certificate with and without extra input waves, over a zoo's members,
grouped by their key-frequency mixing: the table of docs/zoo.md.

    .venv/bin/python tools/extra_inputs_table.py zoos/pizza [--configs 32:0,128:0,128:4]

Each config is GRID:EXTRA_INPUTS. Reads the zoo's study (`quadlens zoo study ZOO`: each
member's `frac_key_mixing`), certifies every member with `interpolation` under each config with
the brute-force truth beside it (in this process; ~6 minutes for the 152-seed zoo on one core),
and prints: per config, the members certified 100% (all, and per mixing group), the median
certified accuracy of those that mix most, the median cost against `brute` and whether every
certificate was sound. Writes nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from mixing_figure import group_of  # the models grouped as in docs/zoo.md's first table

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
    return 0 if all(v[2] for r in rows.values() for v in r.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
