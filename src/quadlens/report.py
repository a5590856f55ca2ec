"""The report: one HTML page (self-contained: figures embedded, works offline from disk) and the
same content as Markdown, built only from the artifacts a run or zoo already holds
(config.json, metrics.jsonl, analysis/*.json and figures, study/, certify/). Nothing is
recomputed; the one figure drawn here, the training curves, is plotted from metrics.jsonl.
A section whose artifact is missing says which command makes it.
"""

from __future__ import annotations

import base64
import html
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quadlens import rundir
from quadlens._text import count
from quadlens.bilinear import smallest_k
from quadlens.config import RunConfig
from quadlens.errors import QuadlensError
from quadlens.lens import MIX_OUTLIER, PSI_TOLERANCE

CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #c0392b; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; max-width: 900px; }
.missing { color: #999; font-style: italic; }
.warning { color: #a00; font-weight: bold; } .kv td { text-align: left; }
"""


@dataclass
class Section:
    title: str
    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)

    def text(self, s: str) -> None:
        self.html.append(f"<p>{html.escape(s)}</p>")
        self.md.append(s + "\n")

    def warning(self, s: str) -> None:
        self.html.append(f'<p class="warning">{html.escape(s)}</p>')
        self.md.append(f"**Warning: {s}**\n")

    def missing(self, what: str, command: str) -> None:
        self.html.append(f'<p class="missing">{html.escape(what)} not computed yet: run '
                         f"<code>{html.escape(command)}</code>.</p>")  # fmt: skip
        self.md.append(f"*{what} not computed yet: run `{command}`.*\n")

    def table(self, ident: str, header: list[str], rows: list[list[Any]]) -> None:
        """A table; with an empty header, a left-aligned key-value table."""
        h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
        head = f"<thead><tr>{h}</tr></thead>" if any(header) else ""
        cls = "" if any(header) else ' class="kv"'
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>"
                       for r in rows)  # fmt: skip
        self.html.append(f'<table id="{ident}"{cls}>{head}<tbody>{body}</tbody></table>')
        self.md.append("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
                       + "".join("| " + " | ".join(_fmt(c) for c in r) + " |\n" for r in rows))

    def figure(self, path: Path, caption: str, figdir: Path) -> None:
        if not path.is_file():
            self.html.append(f'<p class="missing">figure {path.name} not found</p>')
            return
        data = base64.b64encode(path.read_bytes()).decode()
        self.html.append(f'<figure><img src="data:image/png;base64,{data}" alt="{path.stem}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip
        figdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, figdir / path.name)
        self.md.append(f"![{path.stem}](figures/{path.name})\n\n{caption}\n")


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        if x != x:
            return "-"
        return f"{x:.3g}" if abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3) else f"{x:.3f}"
    return "-" if x is None else str(x)


def _mixing_cell(cluster: dict[str, Any]) -> str:
    """The share of a cluster's neurons that carry a second key frequency, and which ("-" in an
    analysis written before 2026-12-06, which did not measure it)."""
    mix = cluster.get("frac_key_mixing")
    if mix is None:
        return "-"
    with_ = cluster.get("mixed_with") or []
    return f"{mix:.0%}" + (f" ({', '.join(map(str, with_))})" if with_ else "")


def _pct(x: Any) -> str:
    """A share as a percentage; "-" where the lens did not compute it (e.g. not ReLU)."""
    return "-" if x is None or x != x else f"{x:.0%}"


def _load(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise QuadlensError(
            f"{path}: not valid JSON ({exc}); re-run the command that wrote it"
        ) from None


def build(target: Path, warnings: list[str] | None = None) -> Path:
    """Write TARGET/report/index.html and report.md; return the HTML path. `warnings`, if
    given, receives the warnings the page opens with (a run without final, readable weights)."""
    target = Path(target)
    if (target / "zoo.json").is_file():
        title, sections = f"quadlens zoo report: {target.name}", _zoo_sections(target)
    elif (target / rundir.CONFIG).is_file():
        title = f"quadlens report: {target.name}"
        sections = _run_sections(target, [] if warnings is None else warnings)
    else:
        raise QuadlensError(f"{target}: neither a run directory (no {rundir.CONFIG}) nor a zoo "
                            "(no zoo.json)")  # fmt: skip
    out = target / "report"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]  # fmt: skip
    md = [f"# {title}\n"]
    for s in sections:
        sid = s.title.lower().replace(" ", "-").replace(",", "")
        parts.append(f'<section id="{sid}"><h2>{html.escape(s.title)}</h2>' + "".join(s.html)
                     + "</section>")  # fmt: skip
        md.append(f"\n## {s.title}\n\n" + "\n".join(s.md))
    parts.append("</body></html>")
    rundir.write_text(out / "index.html", "".join(parts))
    rundir.write_text(out / "report.md", "".join(md))
    return out / "index.html"


def _weights_warning(run: Path) -> str | None:
    """Why the report of RUN does not describe final, readable weights (training interrupted,
    weights missing or unreadable), or None; the report is built from the saved artifacts,
    which then cannot be (re)computed."""
    try:
        rundir.load_run(run)
    except QuadlensError as exc:
        return f"{exc}; the analyses cannot be run on this run as it is"
    return None


def _training_caption(rows: list[dict[str, Any]]) -> str:
    """What the curves show, from the metrics themselves (not every run groks)."""
    last = rows[-1]
    train_at = next((r["epoch"] for r in rows if r["train_acc"] >= 0.999), None)
    test_at = next((r["epoch"] for r in rows if r["test_acc"] >= 0.99), None)
    if test_at is None:
        return (f"Training curves. The run ends at epoch {last['epoch']} with train accuracy "
                f"{last['train_acc']:.1%} and test accuracy {last['test_acc']:.1%}: it has not "
                "generalised (yet).")  # fmt: skip
    if train_at is None or test_at <= train_at:
        return (f"Training curves. Test accuracy reaches 99% at epoch {test_at}, by the time "
                "train accuracy reaches 100%.")  # fmt: skip
    text = (f"Training curves. Train accuracy reaches 100% at epoch {train_at}, test accuracy "
            f"99% at epoch {test_at}")
    if test_at >= 2 * max(train_at, 1):
        text += ": generalisation lags memorisation (grokking)"
        norm = {r["epoch"]: r.get("weight_norm") for r in rows}
        before, after = norm.get(train_at), norm.get(test_at)
        if before is not None and after is not None and after < before:
            text += (f", as weight decay shrinks the memorising solution into the general one "
                     f"(the weight norm falls from {before:.1f} to {after:.1f} meanwhile)")
    return text + "."


def _spectrum_caption(an: dict[str, Any]) -> str:
    """The spectrum's caption, from the shares it draws (not every model is a clean pizza)."""
    keys, spec = an["key_frequencies"], an["input_spectrum"]
    share = sum(spec[k - 1] for k in keys if 0 < k <= len(spec))
    keys_text = count(len(keys), "key frequency", "key frequencies")
    text = (f"Share of the MLP input's power per frequency (red: the {keys_text}, {share:.0%} of "
            "it together). ")  # fmt: skip
    if share >= 0.9:
        text += "A handful of frequencies carry almost everything"
    else:
        text += f"The other frequencies carry {1 - share:.0%}"
    dom = an["frac_dominant"]
    if dom is None:
        return text + "."
    if dom >= 0.95:
        text += f"; {dom:.0%} of live neurons read mainly one of them."
    else:
        text += f"; only {dom:.0%} of live neurons read mainly one frequency."
    mix = an.get("frac_key_mixing")  # (absent from analyses written before 2026-12-06)
    if mix is not None and mix >= MIX_OUTLIER:
        text += (f" {mix:.0%} of the key-cluster neurons also carry a second key frequency (>= 5% "
                 "of their input power), which the one-frequency fit of the closed forms and the "
                 "bounds does not describe.")  # fmt: skip
    return text


def _wheels_caption(clusters: list[dict[str, Any]]) -> str:
    """The phase wheels' caption: whether each key cluster's phases cover the circle."""
    text = ("Each key cluster's neurons on the circle of their input phase phi (dot size: "
            "weight). ")  # fmt: skip
    gappy = [c["freq"] for c in clusters if c["largest_gap"] > math.pi / 2]
    if not gappy:
        return text + ("In every cluster the phases spread around the whole circle (no gap "
                       "wider than a quarter turn): each neuron is one rectangle of a "
                       "quadrature rule over phi.")  # fmt: skip
    which = ", ".join(f"k = {k}" for k in gappy)
    return text + (f"The phases leave a gap wider than a quarter turn in {which}: there the "
                   "quadrature rule over phi is coarse, and the closed form fits less well.")


def _quadrature_error(clusters: list[dict[str, Any]]) -> str:
    """' (relative error ...)' over the key clusters' quadrature fits, or ''."""
    errs = [c["quadrature_rel_error"] for c in clusters
            if c.get("quadrature_rel_error") is not None]  # fmt: skip
    if not errs:
        return ""
    if len(errs) == 1:
        return f" (relative error {errs[0]:.2f})"
    return f" (relative error {min(errs):.2f} to {max(errs):.2f} over the key clusters)"


def _logits_caption(fve: dict[str, Any]) -> str:
    """The logit figure's caption, from the closed forms' fit."""
    text = ("The MLP's logit for c = 0 over all (a, b), beside the pizza and clock closed "
            "forms. ")  # fmt: skip
    pizza, clock = fve["pizza"], fve["clock"]
    if pizza is None or clock is None:
        return text.rstrip()
    fit = f"(share of variance explained: pizza {pizza:.2f}, clock {clock:.2f})"
    if max(pizza, clock) < 0.5:
        return text + f"Neither closed form explains the real logits well {fit}."
    if pizza >= clock:
        return text + (f"The real logits follow the pizza form's |cos(w(a-b)/2)| stripes "
                       f"{fit}.")  # fmt: skip
    return text + (f"The pizza form's |cos(w(a-b)/2)| stripes are softened toward the clock "
                   f"form in the real logits {fit}.")  # fmt: skip


def _secondary_caption(an: dict[str, Any]) -> str:
    """The secondary figure's caption: how many neurons have the predicted phase."""
    text = "Each key neuron's input component at twice its frequency against 2 phi + pi. "
    errs = [n["secondary_phase_err"] for n in an["neurons"]
            if not n["dead"] and n["freq"] in an["key_frequencies"]
            and n.get("secondary_phase_err") is not None]  # fmt: skip
    if not errs:
        return text.rstrip()
    near = sum(abs(e) < PSI_TOLERANCE for e in errs) / len(errs)
    tol = f"{math.degrees(PSI_TOLERANCE):.0f} degrees"
    if near >= 0.5:
        return text + (f"{near:.0%} of them lie within {tol} of it: through the linear half "
                       "of ReLU they cancel part of the pizza form's harmonics, which pulls the "
                       "logits toward the clock form.")  # fmt: skip
    return text + (f"Only {near:.0%} of them lie within {tol} of it: the cancellation of the "
                   "pizza form's harmonics that this phase gives does not describe this model.")


def _bilinear_section(bil: dict[str, Any], accuracy: float | None, ana: Path,
                      figs: Path) -> Section:  # fmt: skip
    """The bilinear reading (`quadlens bilinear`), for the models it is exact for."""
    s = Section("The bilinear reading")
    acc = bil["topk_accuracy"]
    k = None if accuracy is None else smallest_k(acc, accuracy)
    if accuracy is None:
        full = f"the top {len(acc) - 1} eigenvectors per class give {acc[-1]:.1%} accuracy"
    elif k is not None:
        full = (f"keeping the top {k} eigenvectors of every class is as accurate as the model "
                f"({acc[k]:.1%}; the model {accuracy:.1%})")  # fmt: skip
    else:
        full = (f"no truncation to k <= {len(acc) - 1} eigenvectors per class is as accurate as "
                f"the model ({acc[-1]:.1%} against {accuracy:.1%})")  # fmt: skip
    s.text(f"Each class's logit is a quadratic form x~^T Q_c x~ in the token vector x~ = [one-hot "
           f"a; one-hot b; 1], exactly (max error {bil['exact_max_error']:.2e} against the "
           f"model). Read by eigendecomposition: {full}.")  # fmt: skip
    s.table("bilinear-table", ["eigenvalue of Q_0", "multiplicity", "frequency", "share"],
            [[e["eigenvalue"], e["multiplicity"], e["freq"], _pct(e["freq_share"])]
             for e in bil["eigenspaces_class0"][:8]])  # fmt: skip
    s.figure(ana / "bilinear.png", "Left: the largest |eigenvalues| of Q_c for the first "
             "classes. Right: accuracy on all inputs when every class keeps only its top-k "
             "eigenvectors.", figs)  # fmt: skip
    return s


def _circuit_relu(cfg: dict[str, Any]) -> str | None:
    """What the bounds, certificates and lens comparison need that this run's model (config
    as stored) lacks, or None."""
    m = RunConfig.from_dict(cfg).model
    if m.activation != "relu":
        return f"a ReLU MLP (activation here: {m.activation})"
    if not m.constant_attention:
        return (f"the circuit view, which needs constant attention (attention rate "
                f"{m.attention_rate:g} here)")  # fmt: skip
    return None


def _run_sections(run: Path, warnings: list[str]) -> list[Section]:
    from quadlens import plots

    cfg = _load(run / rundir.CONFIG)
    ana = run / "analysis"
    figs = run / "report" / "figures"
    an, bnd = _load(ana / "analysis.json"), _load(ana / "bound.json")
    cert, comp = _load(ana / "certify.json"), _load(ana / "compare.json")
    secs = []

    s = Section("The model")
    warning = _weights_warning(run)
    if warning:
        s.warning(warning)
        warnings.append(warning)
    m = cfg["model"]
    if m.get("architecture", "transformer") == "mlp":  # no attention, no residual stream
        rows = [["vocabulary p", m["p"]], ["architecture", f"MLP only (embeddings "
                 f"{m.get('combine', 'concat')}, d_model {m['d_model']})"], ["d_mlp", m["d_mlp"]],
                ["activation", m["activation"]]]  # fmt: skip
    else:
        rows = [["vocabulary p", m["p"]], ["d_model / heads x d_head", f"{m['d_model']} / "
                 f"{m['n_heads']} x {m['d_head']}"], ["d_mlp", m["d_mlp"]],
                ["activation", m["activation"]], ["attention rate (1 = constant: pizza)",
                                                  m["attention_rate"]]]  # fmt: skip
    if cfg.get("train"):
        t = cfg["train"]
        rows += [["preset, seed", f"{cfg.get('preset')}, {t['seed']}"], ["epochs", t["epochs"]],
                 ["lr, weight decay", f"{t['lr']}, {t['weight_decay']}"]]  # fmt: skip
    if cfg.get("source"):
        src = cfg["source"]
        rows.append(["source", f"{src.get('format', '?')}: {src.get('file', '')}".rstrip(": ")])
    if an:
        rows.append(["accuracy on all p^2 inputs", f"{an['accuracy']:.2%}"])
    s.table("model-table", ["", ""], rows)
    metrics = run / rundir.METRICS
    rows_m = rundir.read_metrics(metrics)
    if rows_m:
        plots.training_curves(rows_m, ana)
        s.figure(ana / "training.png", _training_caption(rows_m), figs)
    else:
        s.text("No training metrics (an imported or constructed model).")
    secs.append(s)

    s = Section("Key frequencies")
    if an is None:
        s.missing("The quadrature lens", f"quadlens analyze {run}")
    elif not an["applicable"]:
        s.text("The quadrature view does not apply: " + "; ".join(an["notes"]))
    else:
        s.text(f"Key frequencies: {', '.join(map(str, an['key_frequencies']))}. "
               f"{an['frac_dominant']:.0%} of live neurons have a dominant frequency; "
               f"{count(an['n_dead'], 'neuron')} {'is' if an['n_dead'] == 1 else 'are'} dead.")
        for note in an["notes"]:
            s.text(f"Note: {note}.")
        s.figure(ana / "spectrum.png", _spectrum_caption(an), figs)
    secs.append(s)

    if an and an["applicable"]:
        s = Section("The quadrature picture per cluster")
        key_clusters = [c for c in an["clusters"] if c["key"]]
        s.table("clusters-table", ["k", "neurons", "C_k", "phase spread (MRL)", "largest gap",
                                   "psi = 2 phi", "quadrature error", "votes right",
                                   "carry a second key frequency"],
                [[c["freq"], c["n_neurons"], c["C_k"], c["mean_resultant_length"],
                  c["largest_gap"], _pct(c["frac_psi_2phi"]), c["quadrature_rel_error"],
                  _pct(c["vote_frac"]), _mixing_cell(c)] for c in key_clusters])  # fmt: skip
        s.figure(ana / "phase_wheels.png", _wheels_caption(key_clusters), figs)
        s.figure(ana / "quadrature.png", "The integrand ReLU(cos(x + phi)) cos(2 phi) and the "
                 "neurons' rectangles under it: their weighted sum approximates the integral "
                 "that gives the closed form" + _quadrature_error(key_clusters) + ".", figs)
        secs.append(s)

        s = Section("Closed forms and their fit")
        f = an["fve"]
        if f["pizza"] is None:
            s.text(f"Not computed: the closed forms come from ReLU's integral identity "
                   f"(activation here: {m['activation']}).")  # fmt: skip
        else:
            s.text(f"Share of the MLP logits' variance explained: pizza form "
                   f"{_fmt(f['pizza'])}, clock form {_fmt(f['clock'])}, pizza + secondary "
                   f"frequencies {_fmt(f['pizza_secondary'])}.")  # fmt: skip
        s.figure(ana / "logits.png", _logits_caption(f), figs)
        secs.append(s)

        s = Section("Secondary frequencies")
        if not (ana / "secondary.png").is_file():
            s.text(f"Not drawn: the secondary components are read through ReLU's linear half "
                   f"(activation here: {m['activation']}).")  # fmt: skip
        s.figure(ana / "secondary.png", _secondary_caption(an), figs)
        secs.append(s)

    bil = _load(ana / "bilinear.json")
    if bil is not None:
        secs.append(_bilinear_section(bil, an["accuracy"] if an else None, ana, figs))

    why_not = _circuit_relu(cfg)
    s = Section("Bounds")
    if bnd is None and why_not:
        s.text(f"Not applicable: the compact bounds need {why_not}.")
    elif bnd is None:
        s.missing("The compact bounds", f"quadlens bound {run}")
    else:
        s.text("For each key cluster: the largest deviation over all p^3 inputs of its |x|/2 "
               "contribution from its closed form, by brute force, and a bound proved in time "
               "linear in p x d_mlp (relative to C_k; docs/bounds.md).")  # fmt: skip
        s.table("bound-table", ["k", "neurons", "actual (brute)", "bound (compact)", "ratio",
                                "quadrature", "interp.", "input rem.", "output rem.",
                                "FLOPs compact", "FLOPs brute", "s compact", "s brute"],
                [[c["freq"], c["n_neurons"], c["actual"], c["bound"], c["ratio"],
                  c["terms"]["quadrature"], c["terms"]["interpolation"],
                  c["terms"]["input_residual"], c["terms"]["output_residual"],
                  float(c["compact_flops"]), _num(c["brute_flops"]), c["compact_seconds"],
                  c["brute_seconds"]] for c in bnd["clusters"]])  # fmt: skip
        s.figure(ana / "bound.png", "The bound's terms stacked per cluster, the brute-force "
                 "truth as a black tick, and the line above which a bound says nothing.", figs)
    secs.append(s)

    s = Section("Certificates")
    if cert is None and why_not:
        s.text(f"Not applicable: the certificates need {why_not}.")
    elif cert is None:
        s.missing("Accuracy certificates", f"quadlens certify {run} --all-strategies --check")
    else:
        s.text("Proved lower bounds on the accuracy over all p^2 inputs, per strategy, with their "
               "counted cost (docs/certificates.md).")  # fmt: skip
        s.table("certify-table", ["strategy", "certified accuracy", "min margin bound", "FLOPs",
                                  "FLOPs vs brute force", "vs the model's own forward",
                                  "true accuracy", "sound"],
                [[c["strategy"], f"{c['certified_accuracy']:.2%}", c["min_margin_bound"],
                  float(c["flops"]), _vs(c["flops"], c["brute_flops"]),
                  _vs(c["flops"], c["forward_flops"]) if "forward_flops" in c else "-",
                  "-" if c["true_accuracy"] is None else f"{c['true_accuracy']:.2%}",
                  c["sound"]] for c in cert["certificates"]])  # fmt: skip
    secs.append(s)

    s = Section("Lens comparison")
    if comp is None and why_not:
        s.text(f"Not applicable: the lens comparison needs {why_not}.")
    elif comp is None:
        s.missing("The lens comparison", f"quadlens compare {run}")
    else:
        s.table("compare-table", ["lens", "numbers", "FLOPs", "FVE", "accuracy", "proves"],
                [[r["lens"], r["size"], float(r["flops"]), r["fve"],
                  "-" if r["accuracy"] is None else f"{r['accuracy']:.1%}", r["proves"]]
                 for r in comp["lenses"]])  # fmt: skip
    secs.append(s)
    return secs


def _vs(flops: float, brute: float) -> str:
    return f"{brute / flops:.1f}x fewer" if flops <= brute else f"{flops / brute:.1f}x more"


def _num(x: Any) -> Any:
    return None if x is None else float(x)


def _zoo_sections(zoo: Path) -> list[Section]:
    study = _load(zoo / "study" / "study.json")
    cert = _load(zoo / "certify" / "certify.json")
    figs = zoo / "report" / "figures"
    secs = []
    s = Section("The zoo")
    manifest = _load(zoo / "zoo.json")
    fixed = ", ".join(f"{k} = {v}" for k, v in manifest.get("fixed", {}).items())
    sweep = "; ".join(f"{k} in {v}" for k, v in manifest["sweep"].items()) or "no sweep"
    recipe = f"preset {manifest['preset']}" + (f" with {fixed}" if fixed else "")
    s.text(f"{count(len(manifest['members']), 'member')}: {recipe}; {sweep}.")
    if study is None:
        s.missing("The zoo study", f"quadlens zoo study {zoo}")
        secs.append(s)
    else:
        med = study["median"]
        s.table("zoo-table", ["quantity", "value"], [
            ["models studied", study["n_models"]],
            ["100% accurate", study["accuracy_all_100"]],
            ["fit the quadrature picture", study["n_fit_quadrature"]],
            ["every key cluster votes right", study["n_all_key_votes_correct"]],
            ["bounds non-vacuous on every key cluster", _pct(study["frac_nonvacuous_bounds"])],
            ["the compact bounds' options", ", ".join(
                f"{k.replace('_', ' ')} {v}" for k, v in study.get("bound_options", {}).items())
             or "the defaults"],
            ["models with a key cluster >= C_k from its closed form (brute force)",
             study.get("n_actual_over_1")],
            ["median FVE pizza / clock / pizza+secondary",
             f"{_fmt(med['fve_pizza'])} / {_fmt(med['fve_clock'])} / "
             f"{_fmt(med['fve_pizza_secondary'])}"],
            ["median largest bound / actual", med.get("max_bound_over_actual")],
            ["cluster bounds checked against brute force / below the truth",
             f"{study.get('n_clusters_bounded', '-')} / {study.get('n_bounds_below_actual', '-')}"],
        ])  # fmt: skip
        secs.append(s)
        s = Section("Distributions")
        s.figure(zoo / "study" / "distributions.png", "Each metric's distribution over the "
                 "zoo's models: where most seeds sit, and which ones stray.", figs)  # fmt: skip
        for param in study["sweep"]:
            s.figure(zoo / "study" / f"sweep_{param}.png", f"Each metric against {param} (one "
                     "point per model, black line: medians).", figs)  # fmt: skip
        secs.append(s)
        s = Section("Outliers")
        if study["outliers"]:
            s.table("outliers-table", ["model", "why"],
                    [[o["name"], "; ".join(o["reasons"])] for o in study["outliers"]])
        else:
            s.text("No outliers.")
        secs.append(s)
    s = Section("Certificates")
    members = [_load(zoo / m["run"] / rundir.CONFIG) for m in manifest["members"]]
    reasons = {_circuit_relu(c) for c in members if c is not None}
    if cert is None and reasons and None not in reasons:
        s.text(f"Not applicable: the certificates need {sorted(reasons)[0]}.")
    elif cert is None:
        s.missing("Zoo certificates", f"quadlens certify {zoo} --all-strategies --check")
    else:
        skipped = cert.get("skipped", [])
        text = f"{count(cert['n_models'], 'model')} certified"
        if skipped:
            why = "; ".join(f"{k['name']}: {k['reason']}" for k in skipped[:3])
            text += (f"; {len(skipped)} skipped, which the certificates do not fit ({why}"
                     f"{'; ...' if len(skipped) > 3 else ''})")
        s.text(text + ".")
        s.table("certify-table", ["strategy", "models certified 100%", "median certified",
                                  "median FLOPs vs brute force", "vs the model's own forward"],
                [[k, f"{v['n_certified_100']} ({v['frac_certified_100']:.0%})",
                  f"{v['median_certified_accuracy']:.2%}", _vs(v["median_cost_ratio"], 1.0),
                  _vs(v["median_cost_ratio_forward"], 1.0)
                  if v.get("median_cost_ratio_forward") is not None else "-"]
                 for k, v in cert["strategies"].items()])  # fmt: skip
        s.figure(zoo / "certify" / "pareto.png", "Certified accuracy against proof cost, one "
                 "point per model and strategy: up and to the left is better.", figs)
    secs.append(s)
    return secs

