"""Studying a zoo: the lens on every member, aggregated, with outliers named and explained.

Per member (`per_model`): accuracy, key frequencies, FVE of the pizza / clock /
pizza+secondary forms, the share of neurons with psi = 2 phi and with a dominant frequency,
the clusters' votes and quadrature errors, and the lens's notes. A member "fits the quadrature
picture" when the view applies, it is 100% accurate, >= 90% of its live neurons have a dominant
frequency, >= 90% of key-cluster neurons have psi = 2 phi, and the pizza+secondary form explains
>= 90% of its MLP-logit variance. Each applicable ReLU member also gets the compact bounds of
`quadlens bound` (default grid and waves, or those given: `bound_options`) with the
brute-force actual beside them:
`bound_over_actual` lists bound / actual per key cluster, `max_bound` is the largest bound (all
relative to C_k) and `nonvacuous_bounds` says whether every key cluster's bound is < 1;
`frac_nonvacuous_bounds` is the share of members with bounds for which that holds, and
`n_actual_over_1` counts the members with a key cluster whose brute-force deviation is itself
>= C_k (there no sound bound can be non-vacuous). Every bound is also a soundness check against
its brute-force truth: `n_clusters_bounded` clusters were checked, `n_bounds_below_actual` of
them had a bound below the truth (it must be 0; such a member is an outlier named as a bug) and
`min_bound_over_actual` is the tightest ratio seen.
"""

from __future__ import annotations

import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from quadlens import rundir
from quadlens.lens import MIX_OUTLIER
from quadlens.zoo import check_readable, check_workers, diverged, read_manifest

FIT_THRESHOLD = 0.9


def study_member(zoo: str, member: dict[str, Any],
                 bound_options: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """The lens on one member (runs in a worker process); its compact bounds with
    `bound_options` (grid, harmonics, extra_outputs, extra_inputs; default: bound's)."""
    import torch

    from quadlens.bound import bound
    from quadlens.evaluate import evaluate
    from quadlens.lens import analyze

    torch.set_num_threads(1)  # the pool supplies the parallelism
    run = Path(zoo) / member["run"]
    _, model = rundir.load_run(run)
    ev = evaluate(model)
    an = analyze(model)
    rundir.write_json(run / "analysis" / "analysis.json", rundir.finite_json(an.to_dict()))
    key = [c for c in an.clusters if c.key]
    row = {
        "name": member["name"], "seed": member["seed"], **member["overrides"],
        "accuracy": ev.accuracy, "min_margin": ev.min_margin, "applicable": an.applicable,
        "n_key_frequencies": len(an.key_frequencies) if an.applicable else None,  # (null: n/a)
        "key_frequencies": an.key_frequencies,
        "fve_pizza": an.fve["pizza"], "fve_clock": an.fve["clock"],
        "fve_pizza_secondary": an.fve["pizza_secondary"], "frac_psi_2phi": an.frac_psi_2phi,
        "frac_dominant": an.frac_dominant, "frac_key_mixing": an.frac_key_mixing,
        "n_key_votes_correct": sum(c.vote_correct for c in key),
        "all_key_votes_correct": bool(key) and all(c.vote_correct for c in key),
        "max_quadrature_rel_error": max((c.quadrature_rel_error for c in key), default=None),
        "bound_over_actual": None, "max_bound_over_actual": None, "max_bound": None,
        "max_actual": None, "nonvacuous_bounds": None, "notes": an.notes,
    }  # fmt: skip
    if an.applicable and an.activation == "relu" and key:
        rep = bound(model, **(bound_options or {}))
        rundir.write_json(run / "analysis" / "bound.json", rundir.finite_json(rep.to_dict()))
        ratios = [c.ratio for c in rep.clusters if c.ratio is not None]
        row["bound_over_actual"] = ratios
        row["max_bound_over_actual"] = max(ratios, default=None)
        row["max_bound"] = max((c.bound for c in rep.clusters), default=None)
        row["max_actual"] = max((c.actual for c in rep.clusters), default=None)
        row["nonvacuous_bounds"] = rep.all_nonvacuous
    row["fits_quadrature"] = bool(
        an.applicable and ev.accuracy == 1.0 and an.frac_dominant >= FIT_THRESHOLD
        and (an.frac_psi_2phi or 0.0) >= FIT_THRESHOLD
        and (an.fve["pizza_secondary"] or 0.0) >= FIT_THRESHOLD
    )  # fmt: skip
    return row


def mixes(row: dict[str, Any]) -> bool:
    """Whether a member's key-cluster neurons carry a second key frequency often enough
    (MIX_OUTLIER) to make it an outlier (False where the lens found no key cluster)."""
    return (row["frac_key_mixing"] or 0.0) >= MIX_OUTLIER


def outlier_reasons(row: dict[str, Any], fve_floor: float | None,
                    extra_inputs: int = 0) -> list[str]:  # fmt: skip
    """Why a member is an outlier (empty: it is not). `extra_inputs`: the bounds' option (with
    it the bounds carry a second key frequency, and the mixing reason says so)."""
    reasons = []
    if not row["applicable"]:
        reasons.append("the quadrature view does not apply: " + "; ".join(row["notes"]))
        return reasons
    if row["accuracy"] < 1.0:
        reasons.append(f"not 100% accurate ({row['accuracy']:.2%}, min margin "
                       f"{row['min_margin']:.3g})")  # fmt: skip
    if not 3 <= row["n_key_frequencies"] <= 5:
        reasons.append(f"{row['n_key_frequencies']} key frequencies (the paper's models have 3-5)")
    if row["frac_dominant"] < FIT_THRESHOLD:
        reasons.append(f"only {row['frac_dominant']:.0%} of neurons have a dominant frequency")
    if row["frac_psi_2phi"] is not None and row["frac_psi_2phi"] < FIT_THRESHOLD:
        reasons.append(f"psi = 2 phi holds for only {row['frac_psi_2phi']:.0%} of neurons")
    if mixes(row):
        what = ("the closed forms do not describe (the compact bounds here carry it: "
                f"--extra-inputs {extra_inputs})" if extra_inputs else "the one-frequency fit "
                "behind the closed forms and the compact bounds does not describe")
        reasons.append(f"{row['frac_key_mixing']:.0%} of key-cluster neurons carry a second key "
                       f"frequency (>= 5% of their input power), which {what}")
    fve = row["fve_pizza_secondary"]
    if fve is not None and fve_floor is not None and fve < fve_floor:
        reasons.append(f"pizza+secondary FVE {fve:.3f} is far below the zoo's (< {fve_floor:.3f}: "
                       "median - max(3 MAD, 0.05))")  # fmt: skip
    if any(r < 1 for r in row["bound_over_actual"] or []):
        reasons.append("SOUNDNESS BUG: a compact bound is below its brute-force truth "
                       f"(bound / actual {min(row['bound_over_actual']):.6f}); please report it")
    if row["nonvacuous_bounds"] is False:
        why = ("the cluster itself deviates from its closed form by more than C_k, so no bound "
               "can be < 1" if row["max_actual"] >= 1 else "the bound is loose")  # fmt: skip
        reasons.append(f"a key cluster's compact bound is vacuous (largest {row['max_bound']:.2f} "
                       f"of C_k; largest actual {row['max_actual']:.2f}: {why})")  # fmt: skip
    return reasons


def study_zoo(zoo: Path, workers: int | None = None, progress: bool = True,
              bound_options: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """The study of a zoo (module doc). `bound_options` are the compact bounds' options
    (`bound.check_options`: grid, harmonics, extra_outputs, extra_inputs), recorded in the
    result; each member's analysis/bound.json is written with them."""
    from quadlens import bound as bd

    options = bd.compact_options(**(bound_options or {}))
    bd.check_options(**options)
    check_workers(workers)
    manifest = read_manifest(zoo)
    members = [m for m in manifest["members"] if (zoo / m["run"] / rundir.WEIGHTS).is_file()]
    check_readable(zoo, members)
    failed = diverged(zoo, manifest)  # (these will not finish: their training diverged)
    missing = len(manifest["members"]) - len(members) - len(failed)
    workers = workers or min(os.cpu_count() or 1, max(len(members), 1))
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(members), disable=not progress, unit="model", desc=f"study {zoo.name}")
    if workers > 1 and len(members) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for row in pool.map(study_member, [str(zoo)] * len(members), members,
                                [options] * len(members)):  # fmt: skip
                rows.append(row)
                bar.update(1)
    else:
        for m in members:
            rows.append(study_member(str(zoo), m, options))
            bar.update(1)
    bar.close()
    fves = [r["fve_pizza_secondary"] for r in rows if r["fve_pizza_secondary"] is not None]
    floor = None
    if len(fves) >= 5:
        med = statistics.median(fves)
        mad = statistics.median(abs(f - med) for f in fves)
        floor = min(med - 3 * mad, med - 0.05)  # statistically and practically low
    outliers = []
    for r in rows:
        reasons = outlier_reasons(r, floor, options["extra_inputs"])
        r["outlier_reasons"] = reasons
        if reasons:
            outliers.append({"name": r["name"], "reasons": reasons})

    bounded = [r for r in rows if r["nonvacuous_bounds"] is not None]
    ratios = [x for r in rows for x in r["bound_over_actual"] or []]

    def med(key: str) -> float | None:  # over the members the lens applies to, as the FVEs are
        vals = [r[key] for r in rows if r[key] is not None and r["applicable"]]
        return statistics.median(vals) if vals else None

    return {
        "zoo": str(zoo),
        "n_models": len(rows),
        "n_unfinished": missing,
        "diverged": [d["name"] for d in failed],
        "sweep": manifest["sweep"],
        "bound_options": options,
        "accuracy_all_100": sum(r["accuracy"] == 1.0 for r in rows),
        "n_fit_quadrature": sum(r["fits_quadrature"] for r in rows),
        "n_all_key_votes_correct": sum(r["all_key_votes_correct"] for r in rows),
        "n_key_mixing": sum(mixes(r) for r in rows),
        "n_actual_over_1": sum(r["max_actual"] is not None and r["max_actual"] >= 1 for r in rows),
        "frac_nonvacuous_bounds": (
            sum(r["nonvacuous_bounds"] for r in bounded) / len(bounded) if bounded else None
        ),
        "n_clusters_bounded": len(ratios),
        "n_bounds_below_actual": sum(x < 1 for x in ratios),
        "min_bound_over_actual": min(ratios, default=None),
        "median": {
            k: med(k)
            for k in (
                "n_key_frequencies",
                "fve_pizza",
                "fve_clock",
                "fve_pizza_secondary",
                "frac_psi_2phi",
                "frac_key_mixing",
                "max_bound_over_actual",
                "max_bound",
            )
        },
        "outliers": outliers,
        "per_model": rows,
    }
