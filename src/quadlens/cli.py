"""The `quadlens` command line. Every command that produces numbers has --json.

User errors (QuadlensError) print one line and exit with code 2; nothing is overwritten.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from quadlens import rundir
from quadlens._alloc import tune_allocator
from quadlens._text import count
from quadlens.config import PRESETS, SWEEPABLE, RunConfig, preset
from quadlens.errors import QuadlensError
from quadlens.evaluate import finite_model

EPILOG_TRAIN = """examples:
  quadlens train --preset pizza --seed 0                 # the paper's model -> runs/pizza-seed0
  quadlens train --preset clock --seed 3 --epochs 3000 --out runs/clock3
  quadlens train --p 23 --d-mlp 64 --epochs 1500 --out runs/tiny
  quadlens train --resume --out runs/pizza-seed0         # continue an interrupted run
"""

# CLI option -> config field (model or training), with its type
_OVERRIDES: dict[str, tuple[str, type]] = {
    "p": ("p", int),
    "d_model": ("d_model", int),
    "n_heads": ("n_heads", int),
    "d_head": ("d_head", int),
    "d_mlp": ("d_mlp", int),
    "activation": ("activation", str),
    "attention_rate": ("attention_rate", float),
    "architecture": ("architecture", str),
    "seed": ("seed", int),
    "epochs": ("epochs", int),
    "lr": ("lr", float),
    "weight_decay": ("weight_decay", float),
    "train_frac": ("train_frac", float),
    "warmup_epochs": ("warmup_epochs", int),
    "log_every": ("log_every", int),
    "checkpoint_every": ("checkpoint_every", int),
}


def _print_json(data: dict[str, Any]) -> None:
    """data as strict JSON on stdout (a NaN or infinity, from a model with huge or non-finite
    weights, becomes null)."""
    print(json.dumps(rundir.finite_json(data), indent=2))


def _emit(data: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        _print_json(data)
    else:
        print(text)


def _train_config(args: argparse.Namespace) -> RunConfig:
    overrides = {field: getattr(args, opt) for opt, (field, _) in _OVERRIDES.items()}
    given = {k: v for k, v in overrides.items() if v is not None}
    out = Path(args.out) if args.out else None
    if args.resume:
        if out is None:
            raise QuadlensError("--resume needs --out RUN (the run directory to continue)")
        if (out / rundir.CONFIG).is_file():
            saved = rundir.read_config(out)
            if saved.train is None:
                raise QuadlensError(f"{out}: an imported run has no training to resume")
            wanted = preset(args.preset or saved.preset or "pizza", **given)
            if (args.preset or given) and wanted != saved:
                raise QuadlensError(
                    f"{out}: --resume continues the run with its saved config; the options given "
                    "differ from it (drop them, or start a new run with another --out)"
                )
            return saved
        if not (out / rundir.CHECKPOINT).is_file():
            raise QuadlensError(
                f"{out}: nothing to resume (no run there: no {rundir.CONFIG}); start a new run "
                "without --resume"
            )
        raise QuadlensError(f"{out}: a checkpoint without its {rundir.CONFIG}; cannot resume")
    return preset(args.preset or "pizza", **given)


def cmd_train(args: argparse.Namespace) -> int:
    from quadlens.train import resolve_device, train

    cfg = _train_config(args)
    assert cfg.train is not None
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.preset}-seed{cfg.train.seed}"
    resolve_device(args.device)  # fail before anything is written
    try:
        with rundir.fresh_out_dir(out, overwrite=args.overwrite, resume=args.resume):
            result = train(
                cfg,
                out,
                device=args.device,
                resume=args.resume,
                progress=not args.quiet and not args.json,
                command=args.command_line,
            )
    except KeyboardInterrupt as exc:
        print(
            f"quadlens: interrupted; the run is saved at its last epoch. Continue it with:\n"
            f"  quadlens train --resume --out {out}",
            file=sys.stderr,
        )
        return _interrupt_code(exc)
    ev = result.eval
    data = {
        "run": str(out),
        **ev.to_dict(),
        "epochs": cfg.train.epochs,
        "seconds": round(result.seconds, 3),
    }
    text = (
        f"{cfg.preset} seed {cfg.train.seed}: accuracy {ev.accuracy:.2%} on all "
        f"{ev.n_inputs} pairs (min margin {ev.min_margin:.3g}); {result.epochs_run} epochs in "
        f"{result.seconds:.1f} s -> {out}"
    )
    _emit(data, args.json, text)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from quadlens.evaluate import evaluate

    _, model = rundir.load_run(args.run)
    ev = evaluate(model)
    _emit(
        ev.to_dict(),
        args.json,
        f"accuracy {ev.accuracy:.2%} on all {ev.n_inputs} inputs; min margin {ev.min_margin:.4g}",
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from quadlens.evaluate import evaluate

    run = Path(args.run)
    cfg = rundir.read_config(run)
    epoch = None  # the epoch an interrupted run's checkpoint holds
    interrupted = not (run / rundir.WEIGHTS).is_file() and (run / rundir.CHECKPOINT).is_file()
    if interrupted and not (run / rundir.DIVERGED).is_file():  # (a diverged one: load_run says)
        epoch, model, _ = rundir.read_checkpoint(run, cfg)
    else:
        cfg, model = rundir.load_run(run)
    rows = rundir.read_metrics(run / rundir.METRICS)
    last = rows[-1] if rows else None
    ev = evaluate(model)
    n_params = sum(p.numel() for p in model.parameters())
    data = {
        "run": str(run),
        "status": "finished" if epoch is None else "interrupted",
        "epoch": epoch if epoch is not None else (cfg.train.epochs if cfg.train else None),
        "epochs_wanted": cfg.train.epochs if cfg.train else None,
        "config": cfg.to_dict(),
        "n_params": n_params,
        "eval": ev.to_dict(),
        "final_metrics": last,
    }
    m = cfg.model
    origin = (
        f"preset {cfg.preset}" if cfg.train else f"imported ({(cfg.source or {}).get('format')})"
    )
    text = "\n".join(
        [
            f"run         {run}  ({origin})",
            f"model       p={m.p} d_model={m.d_model} heads={m.n_heads}x{m.d_head} d_mlp={m.d_mlp} "
            f"{m.activation} attention_rate={m.attention_rate:g} ({m.architecture})",
            f"parameters  {n_params:,}",
            *(
                [
                    f"training    seed {cfg.train.seed}, {cfg.train.epochs} epochs, "
                    f"lr {cfg.train.lr:g}, weight decay {cfg.train.weight_decay:g}"
                ]
                if cfg.train
                else []
            ),
            *(
                [
                    f"status      interrupted at epoch {epoch} of {data['epochs_wanted']}; "
                    f"continue it with: quadlens train --resume --out {run}"
                ]
                if epoch is not None
                else []
            ),
            f"accuracy    {ev.accuracy:.2%} on all {ev.n_inputs} inputs"
            + (f" at epoch {epoch} (its checkpoint)" if epoch is not None else "")
            + f", min margin {ev.min_margin:.4g}",
        ]
    )
    _emit(data, args.json, text)
    return 0


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _with(freqs: list[int]) -> str:
    return " with " + ",".join(map(str, freqs)) if freqs else ""


def cmd_analyze(args: argparse.Namespace) -> int:
    from quadlens import plots
    from quadlens.lens import analyze

    run = Path(args.run)
    model = finite_model(rundir.load_run(run)[1])
    an = analyze(model)
    data = rundir.finite_json(an.to_dict())
    rundir.write_json(run / "analysis" / "analysis.json", data)
    if not args.no_figures and an.applicable:
        plots.lens_figures(model, an, run / "analysis")
    if args.json:
        _print_json(data)
        return 0
    lines = [f"{run}: accuracy {an.accuracy:.2%}, activation {an.activation}"]
    if an.applicable:
        live = len(an.neurons) - (an.n_dead or 0)
        lines += [
            f"neurons: {len(an.neurons)} ({an.n_dead} dead); {an.frac_dominant:.0%} of the {live} "
            f"live ones have a dominant frequency; psi = 2 phi (within 20 deg) for "
            f"{_fmt(an.frac_psi_2phi, '.0%')} of those in key clusters, and "
            f"{_fmt(an.frac_key_mixing, '.0%')} of them carry a second key frequency (>= 5% of "
            "their input power)",
            "key frequencies: " + " ".join(map(str, an.key_frequencies)),
            "",
            " freq  neurons      C_k   MRL   gap  psi=2phi  quad err  vote  x_j ok  max|arg G|"
            "  FVE own  mixing",
        ]
        for cl in an.clusters:
            if not cl.key and not args.all_clusters:
                continue
            lines.append(
                f" {cl.freq:4d}  {cl.n_neurons:7d}  {cl.C_k:7.3f}  {cl.mean_resultant_length:4.2f}"
                f"  {cl.largest_gap:4.2f}  {cl.frac_psi_2phi:8.0%}"
                f"  {_fmt(cl.quadrature_rel_error):>8}"
                f"  {'yes' if cl.vote_correct else 'no':>4}  {_fmt(cl.vote_frac, '.0%'):>6}"
                f"  {_fmt(cl.max_arg_G, '.4f'):>10}  {_fmt(cl.fve_pizza):>7}"
                f"  {cl.frac_key_mixing:6.0%}" + _with(cl.mixed_with)
            )
        lines.append(
            f"(a cluster votes right at x_j when |arg G_k(x_j)| < pi/p = {math.pi / an.p:.4f}; "
            "mixing: its neurons whose second frequency is another key frequency, with >= 5% of "
            "their input power)"
        )
        f = an.fve
        lines.append(
            f"FVE of the MLP logits: pizza {_fmt(f['pizza'])}, clock {_fmt(f['clock'])}, "
            f"pizza+secondary {_fmt(f['pizza_secondary'])}"
        )
        r = an.relu_split
        if r["linear_frac"] is not None:
            lines.append(
                f"ReLU = x/2 + |x|/2: the x/2 half carries {r['linear_frac']:.1%} of the "
                f"logit variance; the |x|/2 half vs the pizza form: FVE "
                f"{_fmt(r['abs_fve_pizza'])}"
            )
    if an.applicable:
        lines += [f"note: {n}" for n in an.notes]
    else:
        lines.append("the quadrature view does not apply: " + "; ".join(an.notes))
    lines.append(f"-> {run / 'analysis' / 'analysis.json'}")
    print("\n".join(lines))
    return 0


def cmd_zoo_train(args: argparse.Namespace) -> int:
    from quadlens import zoo as zoo_mod
    from quadlens.evaluate import evaluate
    from quadlens.train import resolve_device

    out = Path(args.out)
    seeds = zoo_mod.parse_seeds(args.seeds)
    fixed: dict[str, Any] = {}
    sweep: dict[str, list[Any]] = {}
    for opt, (field, typ) in _OVERRIDES.items():
        value = getattr(args, opt, None)
        if value is None or opt == "seed":
            continue
        if opt in SWEEPABLE:
            values = zoo_mod.parse_grid(opt, value, typ)
            if len(values) > 1:
                sweep[field] = values
                continue
            value = values[0]
        fixed[field] = value
    resolve_device(args.device)
    if args.resume and args.overwrite:
        raise QuadlensError("give --resume or --overwrite, not both")
    if args.resume:
        zoo_mod.check_resumable(out)  # before anything is written
    try:
        # with --overwrite the old zoo is set aside until this one is trained, and put back if
        # anything fails (a bad option found late, every member diverging) before a member of
        # the new one has finished; Ctrl-C, or a failure after that, keeps the new one for
        # --resume and the old one as OUT.previous
        def resumable() -> bool:
            return any((out / "runs").glob(f"*/{rundir.WEIGHTS}"))

        with rundir.fresh_out_dir(out, overwrite=args.overwrite, resume=args.resume,
                                  resumable=resumable):  # fmt: skip
            results = zoo_mod.train_zoo(
                out, args.preset, fixed, sweep, seeds, batch=args.batch, device=args.device,
                resume=args.resume, progress=not args.quiet and not args.json,
                command=args.command_line, backend=args.backend, address=args.address,
                workers=args.workers,
            )  # fmt: skip
            manifest = zoo_mod.read_manifest(out)
            failed = zoo_mod.diverged(out, manifest)
            if failed and len(failed) == len(manifest["members"]):
                raise QuadlensError(f"{out}: the training of every member diverged (the first: "
                                    f"{failed[0]['error']})")  # fmt: skip
    except KeyboardInterrupt as exc:
        print(f"quadlens: interrupted; finished models are kept. Continue with the same command "
              f"and --resume (zoo {out})", file=sys.stderr)  # fmt: skip
        return _interrupt_code(exc)
    rows = []
    for member, res in results:
        ev = res if res is not None else evaluate(rundir.load_run(out / member.run)[1])
        rows.append(
            {
                "name": member.name,
                "seed": member.seed,
                **member.overrides,
                "run": member.run,
                **ev.to_dict(),
                "trained_now": res is not None,
            }
        )
    n_ok = sum(r["accuracy"] == 1.0 for r in rows)
    data = {"zoo": str(out), "n_models": len(rows),
            "n_trained_now": sum(r["trained_now"] for r in rows),
            "accuracy_all_100": n_ok, "models": rows, "diverged": failed}  # fmt: skip
    text = (
        f"zoo {out}: {count(len(rows), 'model')} ({data['n_trained_now']} trained now); "
        f"{n_ok} at 100% accuracy on all inputs"
        + "".join(f"\n{d['name']}: {d['error']}" for d in failed)
    )
    _emit(data, args.json, text)
    return 0


def cmd_zoo_study(args: argparse.Namespace) -> int:
    from quadlens import plots
    from quadlens.study import study_zoo

    zoo = Path(args.zoo)
    study = rundir.finite_json(
        study_zoo(zoo, workers=args.workers, progress=not args.quiet and not args.json,
                  bound_options=_options(args))
    )
    out = zoo / "study"
    rundir.write_json(out / "study.json", study)
    if study["n_models"] and not args.no_figures:
        plots.study_distributions(study, out)
        plots.study_sweeps(study, out)
    if args.json:
        _print_json(study)
        return 0
    med = study["median"]
    lines = [
        f"zoo {zoo}: {study['n_models']} finished models"
        + (f" ({study['n_unfinished']} unfinished, skipped)" if study["n_unfinished"] else "")
        + (f" ({len(study['diverged'])} diverged in training, skipped: "
           f"{', '.join(study['diverged'][:5])}{', ...' if len(study['diverged']) > 5 else ''})"
           if study["diverged"] else ""),
        f"  100% accurate:                 {study['accuracy_all_100']}",
        f"  fit the quadrature picture:    {study['n_fit_quadrature']}",
        f"  every key cluster votes right: {study['n_all_key_votes_correct']}",
        f"  median number of key frequencies {_fmt(med['n_key_frequencies'], 'g')}, FVE pizza "
        f"{_fmt(med['fve_pizza'])}, clock {_fmt(med['fve_clock'])}, pizza+secondary "
        f"{_fmt(med['fve_pizza_secondary'])}, psi = 2 phi {_fmt(med['frac_psi_2phi'], '.0%')}",
        f"  key-cluster neurons carrying a second key frequency: >= 5% of them in "
        f"{study['n_key_mixing']} models",
        f"  compact bounds ({_options_text(study['bound_options'])}) non-vacuous on every key "
        f"cluster: {_fmt(study['frac_nonvacuous_bounds'], '.0%')} of the models with bounds; "
        f"median over models of the largest bound / actual "
        f"{_fmt(med['max_bound_over_actual'], '.2f')}, of the largest bound "
        f"{_fmt(med['max_bound'], '.2f')} (of C_k); "
        f"{count(study['n_actual_over_1'], 'model')} with a key cluster whose actual deviation "
        "is >= C_k",
        f"  soundness: {study['n_clusters_bounded']} cluster bounds checked against brute force, "
        f"{study['n_bounds_below_actual']} below the truth (tightest bound / actual "
        f"{_fmt(study['min_bound_over_actual'], '.3f')})",
    ]
    if study["outliers"]:
        lines.append(f"outliers ({len(study['outliers'])}):")
        lines += [f"  {o['name']}: {'; '.join(o['reasons'])}" for o in study["outliers"]]
    lines.append(f"-> {out / 'study.json'}")
    print("\n".join(lines))
    return 0


def _options(args: argparse.Namespace) -> dict[str, int]:
    """The compact bounds' options from the parsed arguments (`_compact_options`)."""
    from quadlens.bound import compact_options

    return compact_options(args.grid, args.harmonics, args.extra_outputs, args.extra_inputs)


def _options_text(options: dict[str, int]) -> str:
    """The compact bounds' options as `quadlens bound` takes them."""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in options.items())


def _interrupt_code(exc: KeyboardInterrupt) -> int:
    """The shell's exit code for a run stopped by a signal: 128 + its number (Ctrl-C: 130,
    SIGTERM: 143, SIGHUP: 129)."""
    return 128 + int(getattr(exc, "signum", 2))


def cmd_synth(args: argparse.Namespace) -> int:
    from quadlens import synth
    from quadlens.evaluate import evaluate

    out = Path(args.out)
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        rundir.prepare_out_dir(out, overwrite=False, resumable=False)  # the standard message
    if args.construction == "gromov":
        cfg, model = synth.gromov(args.p, args.width, args.seed)
        what = "Gromov network"
    else:
        cfg, model = synth.pizza(args.p, args.width, args.seed, args.freqs, args.noise)
        what = f"synthetic pizza (frequencies {cfg.source['freqs']})"
    _write_import(out, cfg, model, args.overwrite, args.command_line)
    ev = evaluate(model)
    _emit({"run": str(out), **ev.to_dict()}, args.json,
          f"{what} p={args.p} width={args.width} -> {out}: accuracy {ev.accuracy:.2%}, "
          f"min margin {ev.min_margin:.4g}")  # fmt: skip
    return 0


def _circuit_report(args: argparse.Namespace, name: str, why: str,
                    compute: Any) -> tuple[Path, Any, dict[str, Any]]:  # fmt: skip
    """Load RUN, check the circuit view applies, compute a report, save analysis/NAME.json."""
    run = Path(args.run)
    cfg, model = rundir.load_run(run)
    model = finite_model(model)
    if not cfg.model.constant_attention:
        raise QuadlensError(
            f"{run}: attention is not constant, so there is no circuit view for {why}"
        )
    rep = compute(model)
    data = rundir.finite_json(rep.to_dict())
    rundir.write_json(run / "analysis" / f"{name}.json", data)
    if args.json:
        _print_json(data)
    return run, rep, data


def cmd_bound(args: argparse.Namespace) -> int:
    from quadlens import plots
    from quadlens.bound import bound

    run, rep, data = _circuit_report(
        args, "bound", "the quadrature bound",
        lambda m: bound(m, check=not args.no_check, **_options(args)),
    )  # fmt: skip
    if rep.clusters and not args.no_figures:
        plots.bound_figure(data, run / "analysis")
    if args.json:
        return 0
    text = bound_table(rep, run)
    if not rep.all_nonvacuous and rep.clusters and args.extra_inputs == 0:
        text += _mixing_hint(run, rundir.load_run(run)[1], f"quadlens bound {run}")
    print(text)
    return 0


HINT_MAX_P = 128  # the lens takes ~0.5 s at p = 113 and ~9 s at 257: beyond, no hint unasked


def _mixing_hint(run: Path, model: Any, command: str) -> str:
    """A line for the text output of a compact bound or certificate that fell short with one
    frequency per neuron, where the lens finds that neurons mix a second key frequency: the
    option that carries it (empty where the neurons do not mix). The lens' share is read from
    RUN/analysis/analysis.json where `quadlens analyze` wrote it, else computed for p up to
    HINT_MAX_P."""
    from quadlens.lens import MIX_OUTLIER, analyze

    saved = run / "analysis" / "analysis.json"
    frac = None
    try:
        frac = json.loads(saved.read_text()).get("frac_key_mixing") if saved.is_file() else None
    except (OSError, ValueError, AttributeError):
        frac = None  # unreadable: ask the lens instead
    if frac is None and model.cfg.p <= HINT_MAX_P:
        frac = analyze(model).frac_key_mixing
    if not isinstance(frac, (int, float)) or frac < MIX_OUTLIER:
        return ""
    return (f"\nhint: {frac:.0%} of the key-cluster neurons carry a second key frequency (>= 5% "
            "of their input power), which these bounds leave in their input remainder; "
            f"`{command} --extra-inputs 4 --grid 64` carries it (docs/bounds.md)")


def bound_table(rep: Any, run: Path) -> str:
    """The Table-1-style text table of a BoundReport."""
    f = lambda x, spec=".3f": "-" if x is None else format(x, spec)  # noqa: E731
    lines = [
        f"{run}: compact bounds on each key cluster's |x|/2 contribution vs its closed form "
        f"C_k |cos(w(a-b)/2)| cos(w(a+b-c)), relative to C_k (p = {rep.p}, grid {rep.grid}, "
        f"{rep.harmonics} harmonics"
        + (f" + {rep.extra_inputs} chosen input waves" if rep.extra_inputs else "") + ")",
        "",
        " freq  neurons     C_k  actual   bound  ratio |   quad  interp  in-res  out-res  round"
        " | FLOPs compact   brute  | seconds compact  brute",
    ]
    for c in rep.clusters:
        t = c.terms
        lines.append(
            f" {c.freq:4d}  {c.n_neurons:7d}  {c.C_k:6.2f}  {f(c.actual)}  {c.bound:6.3f}"
            f"  {f(c.ratio, '5.2f')} | {t['quadrature']:6.3f}  {t['interpolation']:6.3f}"
            f"  {t['input_residual']:6.3f}  {t['output_residual']:7.3f}  {t['rounding']:5.0e}"
            f" | {c.compact_flops:13.3g}  {f(c.brute_flops, '6.3g'):>6}"
            f"  | {c.compact_seconds:15.3f}  {f(c.brute_seconds, '.3f'):>5}"
        )
    if rep.extra_inputs:
        lines.append("input waves at order x base (mod p): " + "; ".join(
            f"k={c.freq}: base {c.base_frequency}, orders {' '.join(map(str, c.input_orders))}"
            for c in rep.clusters))  # fmt: skip
    if rep.mlp_actual is not None:
        lines.append(f"whole MLP vs the sum of the key clusters' closed forms: max deviation "
                     f"{rep.mlp_actual:.3f} of sum C_k (context; the x/2 half and the "
                     "secondary frequencies live here)")  # fmt: skip
    if not rep.clusters:
        lines.append("no key clusters: nothing to bound")
    else:
        lines.append("every key cluster's bound is non-vacuous (< 1)" if rep.all_nonvacuous
                     else "not every key cluster's bound is non-vacuous")  # fmt: skip
    lines += [f"note: {n}" for n in rep.notes]
    lines.append(f"-> {run / 'analysis' / 'bound.json'}")
    return "\n".join(lines)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from quadlens.reproduce import reproduce

    res = reproduce(
        out=Path(args.out) if args.out else None, seed=args.seed,
        from_run=Path(args.from_run) if args.from_run else None,
        quiet=args.quiet or args.json, command=args.command_line,
    )  # fmt: skip
    keys = res["key_frequencies"]
    lines = [f"{res['run']}: accuracy {_fmt(res['accuracy'], '.2%')}, key frequencies "
             f"{keys if keys is not None else '(the lens does not apply)'}"]  # fmt: skip
    if res["bilinear"]:
        bl = res["bilinear"]
        k = bl["smallest_k_as_accurate"]
        lines.append(f"bilinear reading: logits = x~^T Q_c x~ (max error "
                     f"{bl['exact_max_error']:.2e}); " + (
                         f"the top {k} eigenvectors per class are as accurate as the model"
                         if k is not None else f"no truncation to k <= {bl['max_k']} "
                         "eigenvectors per class is as accurate as the model"))  # fmt: skip
    if res["bounds"]:
        lines.append("bounds (actual -> compact, of C_k): " + ", ".join(
            f"k={b['freq']}: {b['actual']:.2f} -> {b['bound']:.2f}" for b in res["bounds"]))
    if res["certified"]:
        flops = res["certificate_flops"]
        lines.append("certified accuracy (times fewer FLOPs than brute force; below 1x: more): "
                     + ", ".join(f"{k} {v:.1%} ({flops['brute'] / flops[k]:.2g}x)"
                                 for k, v in res["certified"].items()))  # fmt: skip
    lines += [f"note: {n}" for n in res["notes"]]
    lines.append(f"report: {res['report']}  (total {res['total_seconds']:.0f} s)")
    _emit(res, args.json, "\n".join(lines))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from quadlens.report import build

    warnings: list[str] = []
    page = build(Path(args.run), warnings)
    for warning in warnings:
        print(f"quadlens: warning: {warning}", file=sys.stderr)
    _emit({"report": str(page), "markdown": str(page.parent / "report.md")}, args.json,
          f"report: {page}\n        {page.parent / 'report.md'}")  # fmt: skip
    return 0


def cmd_certify(args: argparse.Namespace) -> int:
    from quadlens import plots
    from quadlens.certify import STRATEGIES, certify_all, certify_zoo

    target = Path(args.run)
    if args.all_strategies and args.strategy is not None:
        raise QuadlensError("give --strategy S or --all-strategies, not both")
    strategies = list(STRATEGIES) if args.all_strategies else [args.strategy or "subcubic"]
    if (target / "zoo.json").is_file():
        progress = not args.quiet and not args.json
        res = rundir.finite_json(
            certify_zoo(target, strategies, check=args.check, progress=progress,
                        **_options(args))
        )
        out = target / "certify"
        rundir.write_json(out / "certify.json", res)
        if not args.no_figures and res["per_model"]:
            plots.certify_pareto(res, out)
        text = certify_zoo_table(res) + f"\n-> {out / 'certify.json'}"
        _emit(res, args.json, text)
        return 0
    _, model = rundir.load_run(target)
    certs = certify_all(model, strategies, args.check, not args.quiet and not args.json,
                        **_options(args))
    data = {"run": str(target), "certificates": [rundir.finite_json(c.to_dict()) for c in certs]}
    rundir.write_json(target / "analysis" / "certify.json", data)
    lines = [f"{target}: certificates over all {certs[0].n_inputs} inputs (p = {certs[0].p})", "",
             " strategy             certified  uncertified  min margin bound   FLOPs   vs brute"
             "  vs forward  seconds"
             + ("   true acc  sound" if args.check else "")]  # fmt: skip
    for c in certs:
        lines.append(
            f" {c.strategy:19s}  {c.certified_accuracy:8.2%}  {c.n_uncertified:11d}"
            f"  {c.min_margin_bound:16.3f}  {c.flops:7.3g}  {c.brute_flops / c.flops:7.2f}x"
            f"  {c.forward_flops / c.flops:9.2f}x  {c.seconds:7.3f}"
            + (f"   {c.true_accuracy:8.2%}  {'yes' if c.sound else 'NO'}" if args.check else "")
        )
    lines += ["", "vs brute: brute FLOPs (through the circuit view) / FLOPs; vs forward: FLOPs of "
              "running the model itself (transformer or MLP) on every input / FLOPs", "",
              "what each proves:"]  # fmt: skip
    lines += [f"  {c.strategy}: {c.proves}" for c in certs]
    lines.append(f"-> {target / 'analysis' / 'certify.json'}")
    text = "\n".join(lines)
    compact = [c for c in certs if c.options is not None and c.certified_accuracy < 1]
    if compact and args.extra_inputs == 0 and not args.json:
        text += _mixing_hint(target, model,
                             f"quadlens certify {target} --strategy {compact[0].strategy}")
    _emit(data, args.json, text)
    return 0


def certify_zoo_table(res: dict[str, Any]) -> str:
    lines = [
        f"zoo {res['zoo']}: {count(res['n_models'], 'model')} certified"
        + (f" ({len(res['skipped'])} skipped, listed below)" if res.get("skipped") else ""),
        "",
        " strategy             models certified 100%   median certified   median cost vs brute"
        "              vs the model's own forward",
    ]

    def rel(r: float) -> str:
        return f"{1 / r:.1f}x fewer FLOPs" if r <= 1 else f"{r:.1f}x more FLOPs"

    for s, row in res["strategies"].items():
        r, rf = row["median_cost_ratio"], row["median_cost_ratio_forward"]
        lines.append(f" {s:19s}  {row['n_certified_100']:8d} ({row['frac_certified_100']:6.1%})"
                     f"   {row['median_certified_accuracy']:16.2%}   {r:9.3f} ({rel(r)})"
                     f"   {rf:9.4f} ({rel(rf)})")  # fmt: skip
    for sk in res.get("skipped", []):
        lines.append(f" skipped {sk['name']}: {sk['reason']}")
    return "\n".join(lines)


def cmd_masks(args: argparse.Namespace) -> int:
    from quadlens import plots
    from quadlens.masks import analyze_masks

    run, rep, data = _circuit_report(args, "masks", "freezing masks",
                                     lambda m: analyze_masks(m, n_reuse=args.regions))  # fmt: skip
    if not args.no_figures:
        plots.masks_figure(data, run / "analysis")
    if args.json:
        return 0
    sizes = rep.region_sizes
    lines = [
        f"{run}: {rep.n_inputs} inputs fall into {count(rep.n_patterns, 'activation pattern')} "
        f"(largest regions: {', '.join(map(str, sizes[:8]))}{' ...' if len(sizes) > 8 else ''})",
        f"neurons: {rep.n_neurons}; on average {rep.frac_active:.1%} active per input; "
        f"{rep.always_on} always on (linear), {rep.never_on} never on",
        "share of the correct logit's |contributions| by path: "
        + ", ".join(f"{k} {v:.1%}" for k, v in rep.path_share.items()),
        f"exact decomposition: paths sum to the logits within {rep.reconstruction_max_error:.2e}",
        "reusing one region's frozen map on every input:",
        "  region   size  max |error|  rel. rms error  accuracy",
    ]
    lines += [f"  {r.region:6d}  {r.size:5d}  {r.max_abs_error:11.3g}  {r.rel_rms_error:14.3f}"
              f"  {r.accuracy:8.2%}" for r in rep.reuse]  # fmt: skip
    lines.append(f"-> {run / 'analysis' / 'masks.json'}")
    print("\n".join(lines))
    return 0


def cmd_bilinear(args: argparse.Namespace) -> int:
    from quadlens import plots
    from quadlens.bilinear import analyze_bilinear

    run, rep, data = _circuit_report(args, "bilinear", "the token-space quadratic form",
                                     lambda m: analyze_bilinear(m, max_k=args.max_k))  # fmt: skip
    if not args.no_figures:
        plots.bilinear_spectrum(data, run / "analysis")
    if args.json:
        return 0
    acc = rep.topk_accuracy
    first_full = next((k for k, a in enumerate(acc) if a == 1.0), None)
    lines = [
        f"{run}: logits = x~^T Q_c x~ exactly (max error {rep.exact_max_error:.2e})",
        f"effective rank of Q_c: median {statistics.median(rep.effective_rank):.1f} (logit "
        f"differences: {statistics.median(rep.effective_rank_centred):.1f})",
        "accuracy keeping the top-k eigenvectors of every class: "
        + ", ".join(f"k={k}: {acc[k]:.1%}" for k in (0, 2, 4, 8, 12, 16, 24, 30) if k < len(acc)),
        "smallest k with 100%: "
        + (str(first_full) if first_full is not None else f"> {len(acc) - 1}"),
        "largest eigenspaces of Q_0 (eigenvalue, multiplicity, frequency, share):",
    ]
    lines += [f"  {s.eigenvalue:10.3f}  x{s.multiplicity}  k={s.freq:3d}  {s.freq_share:.0%}"
              for s in rep.eigenspaces_class0[:8]]  # fmt: skip
    lines.append(f"-> {run / 'analysis' / 'bilinear.json'}")
    print("\n".join(lines))
    return 0


def cmd_approx(args: argparse.Namespace) -> int:
    from quadlens import plots
    from quadlens.approx import analyze_approximants, logit_samples

    run, rep, data = _circuit_report(args, "approx", "the approximants", analyze_approximants)
    if not args.no_figures:
        actual, approx = logit_samples(finite_model(rundir.load_run(run)[1]))
        plots.approx_figure(actual.numpy(), {k: v.numpy() for k, v in approx.items()}, data,
                            run / "analysis")  # fmt: skip
    if args.json:
        return 0
    print(f"{run}: model accuracy {rep.model_accuracy:.2%}; mean m/s of the neurons "
          f"{rep.mean_alpha:.3f}")  # fmt: skip
    for name in ("linear", "quadratic"):
        print(f"  {name:9s} approximant: FVE of MLP logits {rep.fve[name]:7.3f}, accuracy with "
              f"the MLP replaced {rep.accuracy[name]:.2%}")  # fmt: skip
    print(f"-> {run / 'analysis' / 'approx.json'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from quadlens.compare import compare, format_table, to_dicts

    run = Path(args.run)
    model = finite_model(rundir.load_run(run)[1])
    rows = compare(model)
    data = {"run": str(run), "lenses": rundir.finite_json(to_dicts(rows))}
    rundir.write_json(run / "analysis" / "compare.json", data)
    rundir.write_text(run / "analysis" / "compare.txt", format_table(rows) + "\n")
    _emit(data, args.json, format_table(rows) + f"\n-> {run / 'analysis' / 'compare.json'}")
    return 0


def _write_import(
    out: Path, cfg: RunConfig, model: Any, overwrite: bool, command: list[str]
) -> None:
    rundir.prepare_out_dir(out, overwrite=overwrite, resumable=False)
    rundir.write_json(out / rundir.CONFIG, cfg.to_dict())
    rundir.save_model(out, cfg, model)
    rundir.write_json(out / rundir.ENVIRONMENT, rundir.environment(command))


def cmd_import(args: argparse.Namespace) -> int:
    from quadlens.evaluate import evaluate
    from quadlens.imports import import_tl, import_zhong

    out = Path(args.out)
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        rundir.prepare_out_dir(out, overwrite=False, resumable=False)  # the standard message
    if args.format == "zhong":
        cfg, model = import_zhong(Path(args.model), Path(args.config))
    else:
        cfg, model = import_tl(Path(args.file), args.attention_rate, args.activation)
    _write_import(out, cfg, model, args.overwrite, args.command_line)
    if (cfg.source or {}).get("rounded_to_float32"):
        print("quadlens: note: the checkpoint is float64; quadlens models are float32, so the "
              "run holds the rounded weights and every result is for them", file=sys.stderr)
    ev = evaluate(model)
    _emit(
        {"run": str(out), **ev.to_dict()},
        args.json,
        f"imported {args.format} model -> {out}: accuracy {ev.accuracy:.2%} on all "
        f"{ev.n_inputs} inputs, min margin {ev.min_margin:.4g}",
    )
    return 0


def _run_parser(sub: Any, name: str, help: str, example: str, func: Any) -> argparse.ArgumentParser:
    """A subcommand taking RUN and --json, with an example in its --help."""
    parser = sub.add_parser(name, help=help, epilog=f"example:\n  {example}",
                            formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("run")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=func)
    return parser


def _compact_options(p: argparse.ArgumentParser, scope: str) -> None:
    """The compact bounds' options (quadlens bound; the quadrature and interpolation
    certificates), with the bound module's defaults."""
    from quadlens import bound as bd

    p.add_argument("--grid", type=int, default=bd.DEFAULT_GRID, help=f"{scope}delta grid "
                   "points per half turn (even; finer = tighter, costlier)")  # fmt: skip
    p.add_argument("--harmonics", type=int, default=bd.DEFAULT_HARMONICS, help=f"{scope}waves "
                   "k, 2k, ..., Hk modelled exactly in each neuron's input")  # fmt: skip
    p.add_argument("--extra-outputs", type=int, default=bd.DEFAULT_EXTRA_OUTPUTS,
                   help=f"{scope}other output frequencies (cross-talk) modelled "
                   "exactly")  # fmt: skip
    p.add_argument("--extra-inputs", type=int, default=bd.DEFAULT_EXTRA_INPUTS,
                   help=f"{scope}further input waves per neuron, the frequencies that carry "
                   "the most of the cluster's input beyond the harmonics (the second key "
                   "frequency of neurons that mix two), as low orders of a base frequency; they "
                   "pay off on a finer --grid, e.g. 64; default 0")  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage is one `--help` away), exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(_prog=self.prog)  # the innermost (sub)command parsed sets it last

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="quadlens",
        description="Train, explain and prove things about modular-addition MLPs.",
        epilog="examples:\n"
        "  quadlens reproduce                       # the main job -> runs/pizza-seed0/report\n"
        "  quadlens train --preset pizza --seed 1   # then: analyze, bound, certify, report\n"
        "  quadlens COMMAND --help                  # each command's options and examples\n"
        "Long commands take --quiet (no progress display); every command that prints numbers\n"
        "takes --json; -v shows the traceback behind an error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="on an error, also print the traceback")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train a model (a preset plus overrides)",
        epilog=EPILOG_TRAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--preset", choices=sorted(PRESETS), help="recipe (default: pizza)")
    t.add_argument("--out", help="run directory (default: runs/PRESET-seedSEED)")
    for opt, (_, typ) in _OVERRIDES.items():
        t.add_argument(
            "--" + opt.replace("_", "-"), type=typ, default=None, metavar=typ.__name__.upper()
        )
    t.add_argument("--device", default="auto", help="auto (default: cuda if available), cpu, cuda")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    t.set_defaults(func=cmd_train)

    _run_parser(sub, "eval", "accuracy and min margin over all p^2 inputs",
                "quadlens eval runs/pizza-seed0 --json", cmd_eval)  # fmt: skip
    _run_parser(sub, "info", "describe a run directory", "quadlens info runs/pizza-seed0",
                cmd_info)  # fmt: skip

    an = _run_parser(sub, "analyze",
                     "the quadrature lens: frequencies, clusters, closed forms, G_k",
                     "quadlens analyze runs/pizza-seed0 --json > analysis.json",
                     cmd_analyze)  # fmt: skip
    an.add_argument("--all-clusters", action="store_true", help="list non-key clusters too")
    an.add_argument("--no-figures", action="store_true", help="write analysis.json only")

    zp = sub.add_parser("zoo", help="many models at once: seeds and sweeps")
    zsub = zp.add_subparsers(dest="zoo_command", required=True, metavar="ZOO_COMMAND")
    zt = zsub.add_parser(
        "train",
        help="train a zoo of seeds (and sweeps) into ZOO/runs/*",
        epilog="examples:\n  quadlens zoo train --preset pizza --seeds 0-151 --out zoos/pizza\n"
        "  quadlens zoo train --preset pizza --seeds 0-9 --attention-rate 0,0.5,1 "
        "--weight-decay 1,2 --out zoos/phase\n  quadlens zoo train ... --resume   "
        "# continue an interrupted zoo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    zt.add_argument("--preset", choices=sorted(PRESETS), default="pizza")
    zt.add_argument("--seeds", required=True, help="e.g. 0-151 or 0,3,7-9")
    zt.add_argument("--out", required=True, help="zoo directory")
    zt.add_argument(
        "--batch",
        type=int,
        default=None,
        help="models per training batch (default: 1 on the CPU, where members are "
        "bit-identical to quadlens train whatever the batch; on a GPU, every model of a shape "
        "that half the free GPU memory holds, stacked in one step)",
    )
    for opt, (_, typ) in _OVERRIDES.items():
        if opt == "seed":
            continue
        sweepable = opt in SWEEPABLE
        zt.add_argument("--" + opt.replace("_", "-"), type=str if sweepable else typ, default=None,
                        metavar="LIST" if sweepable else typ.__name__.upper(),
                        help="comma list sweeps" if sweepable else None)  # fmt: skip
    zt.add_argument("--device", default="auto")
    zt.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local (default) or ray: one Ray task per batch",
    )
    zt.add_argument(
        "--address", default=None, help="Ray cluster address (default: start a local Ray instance)"
    )
    zt.add_argument("--workers", type=int, default=None,
                    help="local backend: training processes, one thread each (default: one per "
                    "core on the CPU, 1 on a GPU; 1 trains in this process with every core)",
                    )  # fmt: skip
    zt.add_argument("--overwrite", action="store_true")
    zt.add_argument("--resume", action="store_true", help="continue an interrupted zoo")
    zt.add_argument("--quiet", action="store_true")
    zt.add_argument("--json", action="store_true")
    zt.set_defaults(func=cmd_zoo_train)

    zs = zsub.add_parser(
        "study",
        help="the lens on every model of a zoo, aggregated, with outliers",
        epilog="example:\n  quadlens zoo study zoos/pizza",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    zs.add_argument("zoo")
    zs.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    _compact_options(zs, "bounds: ")
    zs.add_argument("--no-figures", action="store_true")
    zs.add_argument("--quiet", action="store_true")
    zs.add_argument("--json", action="store_true")
    zs.set_defaults(func=cmd_zoo_study)

    rp = sub.add_parser(
        "reproduce",
        help="the main job: train (or load) the pizza model, explain, bound, certify, report",
        epilog="examples:\n  quadlens reproduce                         # runs/pizza-seed0\n"
        "  quadlens reproduce --seed 3 --out runs/s3\n"
        "  quadlens reproduce --from runs/zhong-a       # an existing or imported run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument("--out", help="run directory (default runs/pizza-seedSEED); reused if done")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--from", dest="from_run", metavar="RUN",
                    help="use this existing (trained or imported) run instead of training")
    rp.add_argument("--quiet", action="store_true")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_reproduce)
    _run_parser(sub, "report", "build RUN/report (HTML + Markdown) or ZOO/report from saved "
                "artifacts, without recomputing", "quadlens report runs/pizza-seed0\n"
                "  quadlens report zoos/pizza", cmd_report)  # fmt: skip
    ce = _run_parser(sub, "certify",
                     "accuracy certificates (proved lower bounds) for a run or every zoo member",
                     "quadlens certify runs/pizza-seed0 --strategy subcubic --check\n"
                     "  quadlens certify zoos/pizza --all-strategies --check", cmd_certify)
    from quadlens.certify import STRATEGIES

    ce.add_argument("--strategy", default=None, choices=STRATEGIES,
                    help=f"{', '.join(STRATEGIES)} (default subcubic; docs/certificates.md)")
    ce.add_argument("--all-strategies", action="store_true", help="run the whole ladder")
    ce.add_argument("--check", action="store_true",
                    help="add the brute-force truth (the model's own forward in float64)")
    _compact_options(ce, "for the quadrature and interpolation strategies: ")
    ce.add_argument("--quiet", action="store_true", help="no progress bar")
    ce.add_argument("--no-figures", action="store_true")
    bd = _run_parser(sub, "bound",
                     "compact bounds on each key cluster, checked against brute force",
                     "quadlens bound runs/pizza-seed0 --grid 64", cmd_bound)  # fmt: skip
    _compact_options(bd, "")
    bd.add_argument("--no-check", action="store_true",
                    help="skip the brute-force actual (only the compact bound)")
    bd.add_argument("--no-figures", action="store_true")
    mk = _run_parser(sub, "masks", "frozen ReLU masks: patterns, regions, exact path decomposition",
                     "quadlens masks runs/pizza-seed0", cmd_masks)  # fmt: skip
    mk.add_argument("--regions", type=int, default=5, help="largest regions to test for reuse")
    mk.add_argument("--no-figures", action="store_true")
    bl = _run_parser(sub, "bilinear",
                     "bilinear/x^2 MLPs: interaction matrices and their eigendecomposition",
                     "quadlens bilinear runs/bilinear-seed0", cmd_bilinear)  # fmt: skip
    bl.add_argument("--max-k", type=int, default=30,
                    help="top-k eigenvectors for the accuracy curve")  # fmt: skip
    bl.add_argument("--no-figures", action="store_true")
    ap = _run_parser(sub, "approx", "closed-form linear/quadratic approximants of the ReLU MLP",
                     "quadlens approx runs/pizza-seed0", cmd_approx)  # fmt: skip
    ap.add_argument("--no-figures", action="store_true")
    _run_parser(sub, "compare", "the lenses side by side: size, FLOPs, fidelity, what each proves",
                "quadlens compare runs/pizza-seed0", cmd_compare)  # fmt: skip

    sy = sub.add_parser("synth", help="build a model with a known explanation as a run")
    ssub = sy.add_subparsers(dest="construction", required=True, metavar="CONSTRUCTION")
    constructions = {
        "gromov": ("Gromov's analytic x^2 network (MLP-only, no biases)", 97, 500,
                   "the frequencies and phases", "--p 97 --width 500 --out runs/gromov"),
        "pizza": ("an idealised-plus-noise pizza circuit as an MLP-only ReLU model, at any p",
                  59, 512, "the key frequencies, phases, amplitudes and noise",
                  "--p 257 --width 2048 --out runs/pizza-257"),
    }  # fmt: skip
    for name, (what, p, width, draws, example) in constructions.items():
        sp = ssub.add_parser(name, help=what, epilog=f"example:\n  quadlens synth {name} {example}",
                             formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        sp.add_argument("--p", type=int, default=p)
        sp.add_argument("--width", "--d-mlp", dest="width", type=int, default=width,
                        help="neurons (d_mlp)")
        sp.add_argument("--seed", type=int, default=0, help=f"draws {draws}")
        if name == "pizza":
            sp.add_argument("--freqs", type=int, default=None,
                            help="number of key frequencies, drawn from the seed (default 5)")
            sp.add_argument("--noise", type=float, default=0.01,
                            help="standard deviation of the noise on U, V and O (default 0.01)")
        sp.add_argument("--out", required=True)
        sp.add_argument("--overwrite", action="store_true")
        sp.add_argument("--json", action="store_true")
        sp.set_defaults(func=cmd_synth)

    im = sub.add_parser("import", help="import a checkpoint trained elsewhere")
    isub = im.add_subparsers(dest="format", required=True, metavar="FORMAT")
    z = isub.add_parser(
        "zhong",
        help="Zhong et al. clock/pizza repository (model .pt + config .json)",
        epilog="example:\n  quadlens import zhong model_p99zdpze5l.pt "
        "config_p99zdpze5l.json --out runs/zhong-a",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    z.add_argument("model")
    z.add_argument("config")
    tl = isub.add_parser(
        "tl",
        help="TransformerLens HookedTransformer state dict (.pth)",
        epilog="example:\n  quadlens import tl model.pth --attention-rate 1 --out runs/tl-model",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tl.add_argument("file")
    tl.add_argument(
        "--attention-rate",
        type=float,
        required=True,
        help="1 if trained with constant 1/2 attention (pizza), 0 for softmax",
    )
    tl.add_argument("--activation", choices=["relu", "gelu"], help="override the file's act_fn")
    for p in (z, tl):
        p.add_argument("--out", required=True, help="run directory to create")
        p.add_argument("--overwrite", action="store_true")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the command they were given to, not by `quadlens`
        sys.stderr.write(f"{args._prog}: error: unrecognized arguments: {' '.join(unknown)} "
                         f"(see {args._prog} --help)\n")  # fmt: skip
        return 2
    args.command_line = ["quadlens", *argv]  # recorded in environment.json
    tune_allocator()  # every command forms and frees multi-megabyte tensors (allocator policy only)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. piped into head: not an error of ours
        sys.stderr.close()
        return 0
    except QuadlensError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"quadlens: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be written or read: a message, not a traceback
        if args.verbose:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"quadlens: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
