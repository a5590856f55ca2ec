"""Accuracy certificates vs brute force as the model grows (issue: accuracy certificates).

The 152-seed zoo is p = 59, where the proof's fixed costs (building the circuit, the bounds'
grid) are a large share of brute force. Training pizza models at p = 509 is out of reach on a
CPU, so this benchmark certifies synthetic pizza models (`quadlens.synth.pizza`: five key
frequencies drawn from the seed, stratified phases, noise 0.01, secondary 0.1, bias 0.2; an
MLP-only ReLU model whose circuit view is the construction, 100% accurate at every size here).
For each size, side by side in one run: every strategy's certificate and the alternative a user
would run, `brute` (every logit of every input through the circuit view), in counted FLOPs and
seconds, each checked against the model's own float64 forward. Writes
benchmarks/out/certify_scaling.json and benchmarks/figures/certify_scaling.png.

    python -m benchmarks.certify_scaling            # ~2-3 minutes on 2 cores
    python -m benchmarks.certify_scaling --quick    # the two smallest sizes
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.common import save_figure, write_results
from quadlens import certify as ce
from quadlens.synth import pizza

SIZES = [(59, 512), (113, 1024), (257, 2048), (509, 2048)]
STRATEGIES = ["brute", "subcubic", "cluster", "quadrature", "interpolation", "cluster+brute",
              "interpolation+brute", "adaptive"]  # fmt: skip


def measure(p: int, d_mlp: int, seed: int) -> dict:
    cfg, model = pizza(p, d_mlp, seed)
    rows = {}
    certs = ce.certify_all(model, STRATEGIES, check=True)  # the truth once, beside each
    for s, c in zip(STRATEGIES, certs, strict=True):
        assert c.sound, (p, d_mlp, s)  # a certificate that claims more than the truth: a bug
        rows[s] = {"certified_accuracy": c.certified_accuracy, "flops": c.flops,
                   "seconds": round(c.seconds, 3), "min_margin_bound": c.min_margin_bound}
    brute = rows["brute"]
    for r in rows.values():
        r["flop_ratio"] = round(brute["flops"] / r["flops"], 2)
        r["time_ratio"] = round(brute["seconds"] / r["seconds"], 2)
    return {"p": p, "d_mlp": d_mlp, "seed": seed, "freqs": cfg.source["freqs"],
            "true_accuracy": certs[0].true_accuracy, "true_min_margin": certs[0].true_min_margin,
            "strategies": rows}  # fmt: skip


def plot(results: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ps = [r["p"] for r in results]
    for s in STRATEGIES[1:]:
        ratio = [r["strategies"][s]["flop_ratio"] for r in results]
        acc = [r["strategies"][s]["certified_accuracy"] for r in results]
        line = axes[0].loglog(ps, ratio, "o-", label=s)[0]
        axes[1].semilogx(ps, acc, "o-", color=line.get_color(), label=s)
    axes[0].axhline(1, color="gray", lw=0.8)
    axes[0].axhline(10, color="gray", lw=0.8, ls=":")
    axes[0].set_ylabel("brute-force FLOPs / certificate FLOPs")
    axes[1].set_ylabel("certified accuracy")
    for ax in axes:
        ax.set_xlabel("p (d_mlp: " + ", ".join(str(r["d_mlp"]) for r in results) + ")")
        ax.set_xticks(ps, [str(p) for p in ps])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes[0].legend(fontsize=7)
    fig.suptitle("certificates vs brute force on synthetic pizza models (above 1: cheaper)")
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the two smallest sizes")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    results = []
    for p, d in SIZES[:2] if args.quick else SIZES:
        r = measure(p, d, args.seed)
        results.append(r)
        print(f"p={p} d_mlp={d} freqs={r['freqs']} true accuracy {r['true_accuracy']:.2%}, "
              f"min margin {r['true_min_margin']:.3g}; brute "
              f"{r['strategies']['brute']['seconds']:.2f} s", flush=True)  # fmt: skip
        for s, x in r["strategies"].items():
            print(f"  {s:20s} certified {x['certified_accuracy']:8.2%}   brute / this: FLOPs "
                  f"{x['flop_ratio']:7.2f}x, seconds {x['time_ratio']:6.2f}x", flush=True)
    write_results("certify_scaling", results, plot)


if __name__ == "__main__":
    main()
