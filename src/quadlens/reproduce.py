"""`quadlens reproduce`: from nothing to the paper's findings in one command.

Train the paper's pizza model (or take an existing run or imported checkpoint), run the lens,
the compact bounds, the certificates and the comparison of lenses, and write the report. Every
stage writes its artifacts into the run directory as the single-purpose commands do
(`analysis/*.json`, figures), so `quadlens report RUN` can rebuild the page later without
recomputing. A finished run is reused, an interrupted one is resumed. Stages that do not apply
to a model (no circuit view: softmax attention; not ReLU) are skipped with the reason. A bilinear
or x^2 model (`--from`) also gets the bilinear reading (`quadlens bilinear`), the lens that is
exact for it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from quadlens import rundir
from quadlens.config import preset
from quadlens.errors import QuadlensError

STAGES = ("train", "analyze", "bilinear", "bound", "certify", "compare", "report")
BILINEAR = ("bilinear", "quadratic")  # the activations the bilinear reading is exact for


class _Stages:
    """The pipeline's one progress display: a line per stage with its time (`stages`: those of
    STAGES this model goes through)."""

    def __init__(self, quiet: bool, stages: tuple[str, ...]) -> None:
        self.quiet, self.stages = quiet, stages
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []

    def run(self, name: str, what: str, fn: Any) -> Any:
        i, n = self.stages.index(name) + 1, len(self.stages)
        if not self.quiet:
            print(f"[{i}/{n}] {what} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        state, result = "done", None
        try:
            result = fn()
        except QuadlensError as exc:
            if name in ("train", "report"):
                raise
            self.notes.append(f"{name} skipped: {exc}")
            state = "skipped"
        self.timings[name] = time.perf_counter() - t0
        if not self.quiet:
            print(f"[{i}/{n}] {name} {state} in {self.timings[name]:.1f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
        return result


def reproduce(out: Path | None = None, seed: int = 0, from_run: Path | None = None,
              quiet: bool = False, command: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    from quadlens import plots
    from quadlens.bilinear import analyze_bilinear, smallest_k
    from quadlens.bound import bound
    from quadlens.certify import STRATEGIES, certify
    from quadlens.compare import compare, format_table, to_dicts
    from quadlens.evaluate import evaluate
    from quadlens.lens import analyze
    from quadlens.report import build
    from quadlens.train import train

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise QuadlensError(f"seed must be an integer >= 0, got {seed!r}")
    t_start = time.perf_counter()
    st = _Stages(quiet, _stages(from_run))
    if from_run is not None:
        run = Path(from_run)
        if out is not None and Path(out) != run:
            raise QuadlensError("give either --from RUN (work in RUN) or --out DIR, not both")

        def load() -> Any:
            return rundir.load_run(run)[1]

        model = st.run("train", f"using the existing run {run}", load)
    else:
        run = Path(out) if out else Path("runs") / f"pizza-seed{seed}"

        def fit() -> Any:
            if (run / rundir.WEIGHTS).is_file():
                cfg, model = rundir.load_run(run)
                if cfg.train is None or cfg.preset != "pizza" or cfg.train.seed != seed:
                    raise QuadlensError(
                        f"{run} holds another run (preset {cfg.preset}, seed "
                        f"{cfg.train.seed if cfg.train else '-'}); use --from {run} to report "
                        "on it, or choose another --out"
                    )
                return model
            cfg = preset("pizza", seed=seed)  # a bad seed is refused before anything is written
            resume = (run / rundir.CHECKPOINT).is_file()
            rundir.prepare_out_dir(run, overwrite=False, resume=resume)
            return train(cfg, run, resume=resume, progress=not quiet, command=command).model

        what = (f"using the finished run {run}" if (run / rundir.WEIGHTS).is_file()
                else f"training the pizza model, seed {seed} -> {run}")  # fmt: skip
        model = st.run("train", what, fit)
    ana = run / "analysis"

    scored: dict[str, float] = {}  # the lens' accuracy, kept where the lens does not apply

    def lens() -> Any:
        an = analyze(model)
        scored["accuracy"] = an.accuracy
        rundir.write_json(ana / "analysis.json", rundir.finite_json(an.to_dict()))
        if an.applicable:
            plots.lens_figures(model, an, ana)
        if not an.applicable:
            raise QuadlensError("; ".join(an.notes))
        return an

    an = st.run("analyze", "the quadrature lens", lens)

    def bilinear_reading() -> Any:
        bl = analyze_bilinear(model)
        data = rundir.finite_json(bl.to_dict())
        rundir.write_json(ana / "bilinear.json", data)
        plots.bilinear_spectrum(data, ana)
        return bl

    bl = None
    if "bilinear" in st.stages:
        bl = st.run("bilinear", "the bilinear reading (eigendecomposition)", bilinear_reading)

    def bounds() -> Any:
        rep = bound(model)
        data = rundir.finite_json(rep.to_dict())
        rundir.write_json(ana / "bound.json", data)
        if rep.clusters:
            plots.bound_figure(data, ana)
        return rep

    rep = st.run("bound", "compact bounds vs brute force", bounds)

    def certificates() -> Any:
        certs = [certify(model, s, check=True) for s in STRATEGIES]
        rundir.write_json(ana / "certify.json", {
            "run": str(run), "certificates": [rundir.finite_json(c.to_dict()) for c in certs]})
        return certs

    certs = st.run("certify", "accuracy certificates (all strategies, checked)", certificates)

    def lenses() -> Any:
        rows = compare(model, an, rep)
        rundir.write_json(ana / "compare.json",
                          {"run": str(run), "lenses": rundir.finite_json(to_dicts(rows))})
        rundir.write_text(ana / "compare.txt", format_table(rows) + "\n")
        return rows

    st.run("compare", "the lenses side by side", lenses)
    page = st.run("report", "the report", lambda: build(run))
    total = time.perf_counter() - t_start
    accuracy = scored["accuracy"] if "accuracy" in scored else evaluate(model).accuracy
    summary = {
        "run": str(run),
        "report": str(page),
        "accuracy": accuracy,
        "key_frequencies": an.key_frequencies if an else None,
        "bilinear": None if bl is None else {
            "exact_max_error": bl.exact_max_error, "max_k": len(bl.topk_accuracy) - 1,
            "smallest_k_as_accurate": smallest_k(bl.topk_accuracy, accuracy)},
        "bounds": None if rep is None else [
            {"freq": c.freq, "actual": c.actual, "bound": c.bound} for c in rep.clusters],
        "certified": None if certs is None else {
            c.strategy: c.certified_accuracy for c in certs},
        "certificate_flops": None if certs is None else {c.strategy: c.flops for c in certs},
        "stage_seconds": st.timings,
        "total_seconds": total,
        "notes": st.notes,
    }  # fmt: skip
    rundir.write_json(run / "report" / "reproduce.json", rundir.finite_json(summary))
    return summary


def _stages(from_run: Path | None) -> tuple[str, ...]:
    """The stages this model goes through: the bilinear reading only for a bilinear or x^2
    model with a circuit view (an unreadable config is the train stage's to report)."""
    if from_run is not None:
        try:
            m = rundir.read_config(Path(from_run)).model
        except QuadlensError:
            pass
        else:
            if m.activation in BILINEAR and m.constant_attention:
                return STAGES
    return tuple(x for x in STAGES if x != "bilinear")
