"""Zoo training throughput: one process after another, batched, and worker processes, against
the arithmetic floor.

Trains the same pizza-recipe models (p = 59, d_mlp 512) with `quadlens.zoo.train_zoo`, writing
ordinary run directories, for two numbers of epochs (default 60 and 300), in three ways side by
side. The time at the full 10,000-epoch recipe is extrapolated from the two lengths: a fixed part
per model (worker start-up, set-up, run directories, final evaluation: paid once at any length)
plus a part per epoch. (Until 2026-12-04 one length was timed and scaled by 10,000 / epochs,
which would multiply the fixed part too; measured, that part is under a second per model.)
The three ways:

- sequential: one model after another in this process (`--workers 1 --batch 1`), every core
  working on one model, which is what training the seeds one by one gives;
- batched: `--batch B` models stacked in one step in this process (`--workers 1`);
- workers: the default local backend, one single-threaded process per core.

The shared machines this runs on change speed by up to ~1.7x for minutes at a time, so the
modes are timed in interleaved rounds and ratios are medians over rounds of ratios within a
round. Reported: models per hour at the full recipe for each mode, the ratios, and the floor:
matmul FLOPs per model (counted with FlopCounterMode for one step of the torch-operations
path, which makes the same products as the fused kernels) x epochs / the machine's
measured matmul peak (every core).

    python -m benchmarks.zoo_speed [--epochs 300] [--short-epochs 60] [--seeds 4] [--batch 4]
                                   [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import matmul_peak_gflops, time_zoo
from quadlens.config import preset
from quadlens.train import step_function

RECIPE_EPOCHS = 10_000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--short-epochs", type=int, default=None,
                    help="the shorter of the two lengths timed (default: epochs / 5)")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    # counted on the torch-operations path: the same products as the fused kernels, whose BLAS
    # calls FlopCounterMode cannot see
    step = step_function([preset("pizza")], device=args.device, kernels=False)
    with FlopCounterMode(display=False) as fc:
        step()
    flops_per_epoch = fc.get_total_flops()  # matmul FLOPs of one training step
    peak = matmul_peak_gflops() * 1e9
    cores = os.cpu_count() or 1
    modes = {"sequential": (1, 1), "batched": (args.batch, 1), "workers": (1, cores)}
    short = args.short_epochs or max(1, args.epochs // 5)
    if not 0 < short < args.epochs:
        raise SystemExit("--short-epochs must be between 0 and --epochs")
    # Each mode trains the zoo twice per round, for `short` and for `epochs` epochs. What does
    # not grow with the epochs (worker start-up, model set-up, the run directories, the final
    # evaluation) is paid once per model at the full recipe too, so the full recipe's time is
    # extrapolated from the two: fixed + per-epoch x 10,000, not scaled from one length.
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode, (batch, workers) in modes.items():
            t_short = time_zoo(args.seeds, short, batch, args.device, workers)[0]
            t_long = time_zoo(args.seeds, args.epochs, batch, args.device, workers)[0]
            times[mode].append((t_short, t_long))

    def fit(t: tuple[float, float]) -> tuple[float, float]:
        """(fixed seconds, seconds per epoch) per model, from one round's two lengths."""
        per_epoch = (t[1] - t[0]) / (args.epochs - short) / args.seeds
        return t[0] / args.seeds - per_epoch * short, per_epoch

    def full(t: tuple[float, float]) -> float:
        """Seconds per model at the recipe's epochs."""
        fixed, per_epoch = fit(t)
        return fixed + per_epoch * RECIPE_EPOCHS

    if any(fit(t)[1] <= 0 for ts in times.values() for t in ts):
        raise SystemExit("a longer zoo did not take longer than the shorter one (timing noise "
                         "swamps the epochs): use a larger --epochs")  # fmt: skip
    per_model = {m: statistics.median(full(t) for t in ts) for m, ts in times.items()}

    def ratio(a: str, b: str) -> float:
        pairs = zip(times[a], times[b], strict=True)
        return round(statistics.median(full(x) / full(y) for x, y in pairs), 2)

    floor = flops_per_epoch * RECIPE_EPOCHS / peak  # seconds per model at the full recipe
    best = min(modes, key=lambda m: per_model[m])
    result = {
        "device": args.device,
        "cores": cores,
        "seeds": args.seeds,
        "epochs": [short, args.epochs],
        "batch": args.batch,
        "rounds": args.rounds,
        **{f"{m}_models_per_hour": round(3600 / per_model[m], 1) for m in modes},
        **{f"{m}_fixed_seconds_per_model": round(statistics.median(fit(t)[0] for t in ts), 2)
           for m, ts in times.items()},
        "batched_over_sequential": ratio("sequential", "batched"),
        "workers_over_sequential": ratio("sequential", "workers"),
        "floor_models_per_hour": round(3600 / floor, 1),
        "best_mode": best,
        "best_over_floor_time": round(per_model[best] / floor, 2),
        "hours_for_152_seeds_best": round(152 * per_model[best] / 3600, 2),
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "seconds": {m: [[round(x, 1) for x in t] for t in ts] for m, ts in times.items()},
    }
    print(json.dumps(result, indent=2))
    Path("benchmarks/out").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/out/zoo_speed.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
