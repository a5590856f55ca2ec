"""The tutorial (docs/tutorial.md) as one script: train -> analyse -> bound -> certify -> report.

    python examples/tutorial.py                 # the paper's model, ~2 minutes on 2 cores
    python examples/tutorial.py --quick         # a small p = 31 model, a few seconds

Everything below is the public API (`import quadlens as ql`); each step also has a CLI command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import quadlens as ql


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small model instead of the paper's")
    ap.add_argument("--out", default="runs/tutorial", help="run directory to (re)create")
    args = ap.parse_args()

    # 1. Train. A preset is the paper's recipe; any field can be changed.
    cfg = ql.preset("pizza", seed=0)
    if args.quick:
        cfg = dataclasses.replace(
            cfg,
            model=dataclasses.replace(cfg.model, p=31, d_model=32, n_heads=4, d_head=8, d_mlp=128),
            train=dataclasses.replace(cfg.train, epochs=1500, lr=3e-3),
        )
    out = Path(args.out)
    if (out / "weights.safetensors").is_file():
        _, model = ql.load_run(out)  # reuse a finished run
    else:
        model = ql.train(cfg, out, progress=True).model
    print("accuracy:", ql.evaluate(model))

    # 2. Analyse: which frequencies, which clusters, how well the closed forms fit.
    an = ql.analyze(model)
    print("key frequencies:", an.key_frequencies, " FVE:", an.fve)

    # 3. Bound: each key cluster's |x|/2 half vs its closed form, compact bound vs brute force.
    rep = ql.bounds(model)
    for c in rep.clusters:
        print(f"k = {c.freq}: actual {c.actual:.3f}, bound {c.bound:.3f} (of C_k), "
              f"{c.compact_flops:.2g} vs {c.brute_flops:.2g} FLOPs")

    # 4. Certify: proved lower bounds on the accuracy, with the truth beside them.
    for strategy in ("subcubic", "quadrature"):
        cert = ql.certificate(model, strategy, check=True)
        r = cert.brute_flops / cert.flops
        cost = f"{r:.1f}x fewer" if r >= 1 else f"{1 / r:.1f}x more"
        print(f"{strategy}: certified {cert.certified_accuracy:.1%} "
              f"(true {cert.true_accuracy:.1%}, sound: {cert.sound}), "
              f"{cost} FLOPs than brute force")

    # 5. Report: the whole pipeline's artifacts as one page (what `quadlens reproduce` does).
    summary = ql.reproduce(from_run=out, quiet=True)
    print(json.dumps({k: summary[k] for k in ("report", "total_seconds")}, indent=2))


if __name__ == "__main__":
    main()
