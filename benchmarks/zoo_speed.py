"""Zoo training throughput: one process after another, batched, and worker processes, against
the arithmetic floor.

Trains the same pizza-recipe models (p = 59, d_mlp 512) for a fixed number of epochs
(default 300; throughput is per epoch, so the full 10,000-epoch recipe scales linearly) with
`quadlens.zoo.train_zoo`, writing ordinary run directories, in three ways side by side:

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

    python -m benchmarks.zoo_speed [--epochs 300] [--seeds 4] [--batch 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import matmul_peak_gflops
from quadlens.config import preset
from quadlens.train import step_function
from quadlens.zoo import train_zoo

RECIPE_EPOCHS = 10_000


def run_zoo(seeds: int, epochs: int, batch: int, workers: int, device: str) -> float:
    """Seconds to train a fresh zoo of `seeds` pizza models for `epochs` epochs."""
    tmp = Path(tempfile.mkdtemp())
    try:
        t = time.perf_counter()
        train_zoo(tmp / "zoo", "pizza", {"epochs": epochs}, {}, list(range(seeds)), batch=batch,
                  device=device, progress=False, workers=workers)  # fmt: skip
        return time.perf_counter() - t
    finally:
        shutil.rmtree(tmp)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=300)
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
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode, (batch, workers) in modes.items():
            times[mode].append(run_zoo(args.seeds, args.epochs, batch, workers, args.device))
    scale = RECIPE_EPOCHS / args.epochs

    def per_hour(sec: float) -> float:
        return round(3600 / (sec / args.seeds * scale), 1)

    def ratio(a: str, b: str) -> float:
        return round(statistics.median(x / y for x, y in zip(times[a], times[b], strict=True)), 2)

    floor = flops_per_epoch * RECIPE_EPOCHS / peak  # seconds per model at the full recipe
    best = min(modes, key=lambda m: statistics.median(times[m]))
    best_sec = statistics.median(times[best]) / args.seeds * scale
    result = {
        "device": args.device,
        "cores": cores,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "batch": args.batch,
        "rounds": args.rounds,
        **{f"{m}_models_per_hour": per_hour(statistics.median(times[m])) for m in modes},
        "batched_over_sequential": ratio("sequential", "batched"),
        "workers_over_sequential": ratio("sequential", "workers"),
        "floor_models_per_hour": round(3600 / floor, 1),
        "best_mode": best,
        "best_over_floor_time": round(best_sec / floor, 2),
        "hours_for_152_seeds_best": round(152 * best_sec / 3600, 2),
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "seconds": {m: [round(t, 1) for t in ts] for m, ts in times.items()},
    }
    print(json.dumps(result, indent=2))
    Path("benchmarks/out").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/out/zoo_speed.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
