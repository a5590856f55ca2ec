"""Figures of the quadrature lens (matplotlib, PNG and SVG). Plotting only: every number comes
from an `Analysis` (and, for the heatmaps, from `lens.logit_maps`)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from quadlens._text import count
from quadlens.lens import MIX_OUTLIER, Analysis, ClusterStats

KEY_COLOR, OTHER_COLOR = "#c0392b", "#95a5a6"


def _save(fig: plt.Figure, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = out / f"{name}.{ext}"
        tmp = out / f".{name}.tmp.{ext}"
        fig.savefig(tmp, dpi=130, bbox_inches="tight")
        tmp.replace(path)
        paths.append(path)
    plt.close(fig)
    return paths


def spectrum(an: Analysis, out: Path) -> list[Path]:
    freqs = np.arange(1, len(an.input_spectrum) + 1)
    colors = [KEY_COLOR if k in an.key_frequencies else OTHER_COLOR for k in freqs]
    rows = 2 if an.embedding_spectrum is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.6 * rows), squeeze=False,
                             layout="constrained")  # (no title over the panel above)
    panels = [("MLP input (U and V)", an.input_spectrum)]
    if an.embedding_spectrum is not None:
        panels.insert(0, ("embedding W_E", an.embedding_spectrum))
    for ax, (label, values) in zip(axes[:, 0], panels, strict=True):
        ax.bar(freqs, values, color=colors)
        ax.set_ylabel("share of power")
        ax.set_title(f"Fourier spectrum of the {label}; key frequencies in red: "
                     f"{', '.join(map(str, an.key_frequencies))}", fontsize=10)  # fmt: skip
    axes[-1, 0].set_xlabel("frequency k")
    return _save(fig, out, "spectrum")


def _key(an: Analysis) -> list[ClusterStats]:
    return [cl for cl in an.clusters if cl.key]


def phase_wheels(an: Analysis, out: Path) -> list[Path]:
    clusters = _key(an)
    fig, axes = plt.subplots(1, len(clusters), figsize=(3.2 * len(clusters), 3.6),
                             subplot_kw={"projection": "polar"}, squeeze=False,
                             layout="constrained")  # (no angle label over the next wheel)
    for ax, cl in zip(axes[0], clusters, strict=True):
        phi = np.array([an.neurons[i].phi for i in cl.neurons])
        v = np.array([2 * an.neurons[i].A * an.neurons[i].B for i in cl.neurons])
        ax.scatter(phi, v, s=10, color=KEY_COLOR)
        ax.set_yticklabels([])
        ax.set_title(f"k = {cl.freq}: {cl.n_neurons} neurons\nMRL {cl.mean_resultant_length:.2f}, "
                     f"largest gap {cl.largest_gap:.2f} rad", fontsize=9)  # fmt: skip
    fig.suptitle("Neuron phases phi_i (angle) and weights v_i = 2 A_i B_i (radius)", fontsize=10)
    return _save(fig, out, "phase_wheels")


def quadrature_picture(an: Analysis, out: Path, x: float = 0.0) -> list[Path]:
    """Each neuron is a rectangle under the integrand ReLU(cos(x + phi)) cos(2 (x + phi)),
    centred at its phase, its width its share of the cluster weight times 2 pi."""
    clusters = _key(an)
    fig, axes = plt.subplots(len(clusters), 1, figsize=(9, 2.4 * len(clusters)), squeeze=False)
    grid = np.linspace(-math.pi, math.pi, 721)
    for ax, cl in zip(axes[:, 0], clusters, strict=True):
        phi = np.array([an.neurons[i].phi for i in cl.neurons])
        v = np.array([2 * an.neurons[i].A * an.neurons[i].B for i in cl.neurons])
        widths = 2 * math.pi * v / v.sum()

        def f(t: np.ndarray) -> np.ndarray:
            return np.maximum(np.cos(x + t), 0) * np.cos(2 * (x + t))

        for p_i, w_i in zip(phi, widths, strict=True):
            h = float(f(np.array([p_i]))[0])
            ax.add_patch(Rectangle((p_i - w_i / 2, min(h, 0)), w_i, abs(h), alpha=0.35,
                                   facecolor=KEY_COLOR, edgecolor="k", linewidth=0.3))  # fmt: skip
        ax.plot(grid, f(grid), color="k", linewidth=1.2)
        approx = float((widths * f(phi)).sum())
        ax.set_xlim(-math.pi, math.pi)
        ax.set_title(f"k = {cl.freq}: the rectangles sum to {approx:.4f}, the integral is 2/3 = "
                     f"{2 / 3:.4f}; over all 2p points x, max |G_k - C_k| / C_k = "
                     f"{cl.quadrature_rel_error:.3f}", fontsize=9)  # fmt: skip
    axes[-1, 0].set_xlabel(f"phase phi (x = {x:g})")
    fig.suptitle("The MLP as numerical integration: one rectangle per neuron", fontsize=11)
    fig.tight_layout()
    return _save(fig, out, "quadrature")


def logit_heatmaps(maps: dict[str, np.ndarray], c: int, out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, len(maps), figsize=(3.6 * len(maps), 3.4))
    vmax = max(float(np.abs(m).max()) for m in maps.values())
    for ax, (name, m) in zip(axes, maps.items(), strict=True):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, origin="lower")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("b")
        ax.set_ylabel("a")
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.suptitle(f"MLP logit for c = {c} over all (a, b), centred over c", fontsize=10)
    return _save(fig, out, "logits")


def secondary_phases(an: Analysis, out: Path) -> list[Path]:
    live = [f for f in an.neurons if not f.dead and f.freq in an.key_frequencies]
    amp = np.array([f.secondary_amp_U / max(f.A_U, 1e-12) for f in live])
    chi = np.array([f.secondary_phase_U for f in live])
    pred = np.array([(2 * f.phi + 2 * math.pi) % (2 * math.pi) - math.pi for f in live])
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    sc = ax.scatter(pred, chi, c=amp, s=10, cmap="viridis")
    ax.plot([-math.pi, math.pi], [-math.pi, math.pi], color="k", linewidth=0.8)
    ax.set_xlabel("2 phi + pi (wrapped)")
    ax.set_ylabel("phase chi of the 2k component of U")
    fig.colorbar(sc, ax=ax, label="amplitude A2 / A")
    ax.set_title("Secondary frequency: phase vs 2 phi + pi", fontsize=10)
    return _save(fig, out, "secondary")


STUDY_METRICS = ("fve_pizza", "fve_clock", "fve_pizza_secondary", "frac_psi_2phi",
                 "frac_key_mixing", "n_key_frequencies", "max_quadrature_rel_error", "max_bound",
                 "max_bound_over_actual")  # fmt: skip


# reference lines: the fit threshold, a vacuous bound (>= C_k), the tightness target, the share
# of key-frequency mixing that makes a model an outlier (lens.MIX_OUTLIER)
STUDY_MARKS = {"fve_pizza_secondary": (0.9, "fit threshold"), "max_bound": (1.0, "vacuous"),
               "max_bound_over_actual": (2.0, "target 2"),
               "frac_key_mixing": (MIX_OUTLIER, "outlier")}


def study_distributions(study: dict, out: Path) -> list[Path]:
    rows = study["per_model"]
    fig, axes = plt.subplots(3, 3, figsize=(13, 9.6))
    for ax, key in zip(axes.flat, STUDY_METRICS, strict=True):
        vals = [r[key] for r in rows if r.get(key) is not None]
        ax.hist(vals, bins=min(30, max(5, len(vals) // 3)), color=KEY_COLOR, alpha=0.8)
        ax.set_title(key, fontsize=10)
        ax.set_ylabel("models")
        if key in STUDY_MARKS:
            x, label = STUDY_MARKS[key]
            ax.axvline(x, color=OTHER_COLOR, ls="--", lw=1)
            ax.text(x, ax.get_ylim()[1] * 0.95, f" {label}", fontsize=7, va="top")
    title = (f"{count(study['n_models'], 'model')}; {study['accuracy_all_100']} at 100% accuracy; "
             f"{study['n_fit_quadrature']} fit the quadrature picture")  # fmt: skip
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, out, "distributions")


def study_sweeps(study: dict, out: Path) -> list[Path]:
    """Each metric against each swept hyperparameter (one point per model, medians joined)."""
    paths: list[Path] = []
    for param in study["sweep"]:
        fig, axes = plt.subplots(3, 3, figsize=(13, 9.6))
        for ax, key in zip(axes.flat, STUDY_METRICS, strict=True):
            pts = [(r[param], r[key]) for r in study["per_model"] if r.get(key) is not None]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            ax.scatter(xs, ys, s=10, alpha=0.6, color=KEY_COLOR)
            levels = sorted(set(xs))
            meds = [float(np.median([y for x, y in pts if x == lv])) for lv in levels]
            ax.plot(levels, meds, color="k", linewidth=1)
            ax.set_xlabel(param)
            ax.set_title(key, fontsize=10)
        fig.suptitle(f"Metrics against {param} (black: median)", fontsize=11)
        fig.tight_layout()
        paths += _save(fig, out, f"sweep_{param}")
    return paths


def bilinear_spectrum(report: dict, out: Path) -> list[Path]:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for vals in report["eigenvalues_top"][:8]:
        ax1.plot(range(1, len(vals) + 1), sorted((abs(v) for v in vals), reverse=True),
                 marker="o", markersize=3, alpha=0.6)  # fmt: skip
    ax1.set_xlabel("rank")
    ax1.set_ylabel("|eigenvalue| of Q_c")
    ax1.set_title("Eigenvalue spectra (first 8 classes)", fontsize=10)
    acc = report["topk_accuracy"]
    ax2.plot(range(len(acc)), acc, marker="o", markersize=3, color=KEY_COLOR)
    ax2.set_xlabel("k (top eigenvectors kept per class)")
    ax2.set_ylabel("accuracy on all inputs")
    ax2.set_ylim(0, 1.02)
    ax2.set_title("Accuracy of the top-k truncation", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "bilinear")


def masks_figure(report: dict, out: Path) -> list[Path]:
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.6))
    sizes = report["region_sizes"]
    ax1.hist(sizes, bins=min(40, max(5, len(set(sizes)))), color=KEY_COLOR)
    ax1.set_yscale("log")
    ax1.set_xlabel("inputs in a region")
    ax1.set_ylabel("regions")
    patterns = count(report["n_patterns"], "activation pattern")
    ax1.set_title(f"{patterns} for {report['n_inputs']} inputs", fontsize=10)
    shares = report["path_share"]  # (None where no logit has any contribution: a dead MLP)
    ax2.bar(list(shares), [math.nan if v is None else v for v in shares.values()],
            color=KEY_COLOR)  # fmt: skip
    ax2.set_ylabel("share of |contributions| to the correct logit")
    ax2.set_title("Exact decomposition by path", fontsize=10)
    reuse = report["reuse"]
    ax3.bar([str(r["region"]) for r in reuse], [r["accuracy"] for r in reuse], color=OTHER_COLOR)
    ax3.set_ylim(0, 1)
    ax3.set_xlabel("region (by size)")
    ax3.set_ylabel("accuracy of its frozen map on all inputs")
    ax3.set_title("Reusing one region's map everywhere", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "masks")


def approx_figure(actual: np.ndarray, approx: dict[str, np.ndarray], report: dict,
                  out: Path) -> list[Path]:  # fmt: skip
    """Approximant vs actual MLP logits (centred over c), a random subsample of points."""
    rng = np.random.default_rng(0)
    idx = rng.choice(actual.size, size=min(5000, actual.size), replace=False)
    fig, axes = plt.subplots(1, len(approx), figsize=(4.4 * len(approx), 4))
    lim = float(np.abs(actual).max())
    for ax, (name, values) in zip(np.atleast_1d(axes), approx.items(), strict=True):
        ax.scatter(actual.flat[idx], values.flat[idx], s=2, alpha=0.3, color=KEY_COLOR)
        ax.plot([-lim, lim], [-lim, lim], color="k", linewidth=0.8)
        ax.set_xlabel("actual MLP logit")
        ax.set_ylabel(f"{name} approximant")
        ax.set_title(f"{name}: FVE {report['fve'][name]:.3f}, accuracy "
                     f"{report['accuracy'][name]:.1%}", fontsize=10)  # fmt: skip
    fig.tight_layout()
    return _save(fig, out, "approx")


BOUND_COLORS = {"quadrature": "#2980b9", "interpolation": "#85c1e9", "input_residual": "#e67e22",
                "output_residual": "#f5cba7", "rounding": "#7f8c8d"}  # fmt: skip


def bound_figure(report: dict, out: Path) -> list[Path]:
    """Per key cluster: the compact bound as stacked error terms, the brute-force actual as a
    black tick, and the vacuity line at 1 (all relative to C_k)."""
    rows = report["clusters"]
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * max(len(rows), 1), 3.4))
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for term, color in BOUND_COLORS.items():
        h = np.array([r["terms"][term] for r in rows], dtype=float)
        ax.bar(x, h, bottom=bottom, color=color, width=0.6, label=term.replace("_", " "))
        bottom += h
    actual = [r["actual"] for r in rows]
    if all(a is not None for a in actual):
        ax.scatter(x, actual, marker="_", s=700, color="black", zorder=3,
                   label="actual (brute force)")  # fmt: skip
    ax.axhline(1.0, color=KEY_COLOR, lw=1, ls="--", label="vacuous above")
    ax.set_xticks(x, [f"k = {r['freq']}" for r in rows])
    ax.set_ylabel("max deviation / C_k")
    ax.set_title("compact bound (stacked terms) vs brute force")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(fig, out, "bound")


STRATEGY_COLORS = {"brute": "#2c3e50", "subcubic": "#2980b9", "cluster": "#27ae60",
                   "quadrature": "#c0392b", "interpolation": "#e67e22", "cluster+brute": "#82e0aa",
                   "quadrature+brute": "#f1948a", "interpolation+brute": "#f5b041",
                   "adaptive": "#8e44ad"}  # fmt: skip


def certify_pareto(res: dict, out: Path) -> list[Path]:
    """Certified accuracy against proof cost (counted FLOPs, log scale), one point per model and
    strategy: the compact-proofs Pareto picture."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, s in enumerate(res["strategies"]):
        xs = [m["certificates"][i]["flops"] for m in res["per_model"]]
        ys = [m["certificates"][i]["certified_accuracy"] for m in res["per_model"]]
        ax.scatter(xs, ys, s=18, alpha=0.7, color=STRATEGY_COLORS.get(s, "gray"), label=s,
                   marker="x" if "+" in s else "o")  # fmt: skip
    first = [m["certificates"][0] for m in res["per_model"]]
    for key, label, style in (("brute_flops", "brute force (circuit view)", ":"),
                              ("forward_flops", "running the model itself", "--")):
        vals = sorted(c[key] for c in first if key in c)
        if vals:
            ax.axvline(vals[len(vals) // 2], color=OTHER_COLOR, ls=style, lw=1, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("proof cost (counted FLOPs, log scale)")
    ax.set_ylabel("certified accuracy (lower bound)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"{count(res['n_models'], 'model')}: certified accuracy vs proof cost")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(fig, out, "pareto")


def training_curves(rows: list[dict], out: Path) -> list[Path]:
    """Loss (log scale) and accuracy against epoch, train and test, with the weight norm."""
    ep = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    for key, style in (("train", "-"), ("test", "--")):
        ax1.semilogy(ep, [max(r[f"{key}_loss"], 1e-300) for r in rows], style, label=key)
        ax2.plot(ep, [r[f"{key}_acc"] for r in rows], style, label=f"{key} accuracy")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy loss")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    norm = ax2.twinx()
    norm.plot(ep, [r["weight_norm"] for r in rows], color=OTHER_COLOR, lw=1, label="weight norm")
    norm.set_ylabel("weight norm", color=OTHER_COLOR)
    ax2.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return _save(fig, out, "training")


def lens_figures(model: object, an: Analysis, out: Path) -> None:
    """All figures of `quadlens analyze` for a model and its analysis."""
    from quadlens.circuit import circuit
    from quadlens.lens import logit_maps

    spectrum(an, out)
    if an.activation != "relu" or not an.key_frequencies:
        return
    phase_wheels(an, out)
    quadrature_picture(an, out)
    maps = {k: v.numpy() for k, v in logit_maps(circuit(model), an).items()}
    logit_heatmaps(maps, 0, out)
    secondary_phases(an, out)
