"""Compact bound vs brute force as the circuit grows (issue: compact bounds, scaling).

Synthetic idealised-plus-noise pizza circuits (`quadlens.synth.pizza_circuit`: three spread
frequencies, random phases, noise 0.05, secondary 0.1, bias 0.2) at p up to 1009 and d_mlp up to
4096. For each size, side by side over every key cluster: the compact bound (`compact_bound`,
default grid 32, 6 harmonics, 4 extra output waves; O(p d_mlp)) and the brute-force actual over
all p^3 (a, b, c) (`brute_actual` without the ReLU context; O(p^3 d_mlp)), both in seconds and
counted FLOPs, with the bound checked >= the actual at every size. Writes
benchmarks/out/bound_scaling.json and benchmarks/figures/bound_scaling.png (log-log).

    python -m benchmarks.bound_scaling            # ~10 minutes on 2 cores
    python -m benchmarks.bound_scaling --quick    # the three smallest sizes
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.common import save_figure, write_results
from quadlens import bound as bd
from quadlens.synth import pizza_circuit

SIZES = [(59, 512), (127, 1024), (257, 2048), (509, 4096), (1009, 4096)]


def measure(p: int, d_mlp: int) -> dict:
    c = pizza_circuit(p, d_mlp, seed=0)
    t0 = time.perf_counter()
    fit_ops = bd.Ops()
    f = bd.fit(c, fit_ops)
    t_fit = time.perf_counter() - t0
    rows, t_compact, t_brute = [], t_fit, 0.0
    flops_compact, flops_brute = 0, 0
    for k in bd.key_clusters(f):
        t0 = time.perf_counter()
        ops = bd.Ops()
        bound, _, _, C = bd.compact_bound(f, k, ops=ops)
        t_compact += time.perf_counter() - t0
        t0 = time.perf_counter()
        brute = bd.Ops()
        actual, _ = bd.brute_actual(f, k, C, brute, context=False)
        t_brute += time.perf_counter() - t0
        assert bound >= actual, (p, d_mlp, k, bound, actual)
        flops_compact += ops.total
        flops_brute += brute.total
        rows.append({"freq": k, "actual": round(actual, 4), "bound": round(bound, 4),
                     "ratio": round(bound / actual, 2)})  # fmt: skip
    flops_compact += fit_ops.total
    return {
        "p": p, "d_mlp": d_mlp, "clusters": rows,
        "compact_seconds": round(t_compact, 3), "brute_seconds": round(t_brute, 3),
        "time_ratio": round(t_brute / t_compact, 1),
        "compact_flops": flops_compact, "brute_flops": flops_brute,
        "flop_ratio": round(flops_brute / flops_compact, 1),
    }  # fmt: skip


def plot(results: list[dict], path: Path) -> None:
    pd = [r["p"] * r["d_mlp"] for r in results]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((axes[0], "seconds", "seconds"), (axes[1], "flops", "counted FLOPs")):
        ax.loglog(pd, [r[f"compact_{key}"] for r in results], "o-", label="compact bound")
        ax.loglog(pd, [r[f"brute_{key}"] for r in results], "s-", label="brute force (all p^3)")
        ref = results[-1][f"compact_{key}"]
        ax.loglog(pd, [ref * x / pd[-1] for x in pd], ":", color="gray", label="slope 1 (p d_mlp)")
        for r, x in zip(results, pd, strict=True):
            ax.annotate(f"p={r['p']}\nd={r['d_mlp']}", (x, r[f"brute_{key}"]), fontsize=6,
                        textcoords="offset points", xytext=(-10, 6))  # fmt: skip
        ax.set_xlabel("p x d_mlp (circuit parameters ~ 3 p d_mlp)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.suptitle("compact bound vs brute force on synthetic pizza circuits")
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the three smallest sizes")
    args = ap.parse_args()
    results = []
    for p, d in SIZES[:3] if args.quick else SIZES:
        results.append(measure(p, d))
        r = results[-1]
        print(f"p={p:5d} d_mlp={d:5d}  compact {r['compact_seconds']:8.2f} s "
              f"{r['compact_flops']:.3g} FLOPs | brute {r['brute_seconds']:8.2f} s "
              f"{r['brute_flops']:.3g} FLOPs | time ratio {r['time_ratio']:7.1f}x, FLOP ratio "
              f"{r['flop_ratio']:7.1f}x | bound/actual "
              + " ".join(str(c["ratio"]) for c in r["clusters"]), flush=True)  # fmt: skip
    write_results("bound_scaling", results, plot)


if __name__ == "__main__":
    main()
