"""Zoo training throughput: batched vs one-after-another, against the arithmetic floor.

Trains the same pizza-recipe models (p = 59, d_mlp 512) for a fixed number of epochs
(default 300; throughput is per epoch, so the full 10,000-epoch recipe scales linearly):
sequentially (one `train` per seed) and in batches of S (`train_batch`), side by side, and
reports models per hour at the full 10,000-epoch recipe for each, their ratio, and the floor:
matmul FLOPs per model (counted with FlopCounterMode for one step) x epochs / the machine's
measured matmul peak.

    python -m benchmarks.zoo_speed [--epochs 300] [--seeds 8] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import matmul_peak_gflops
from quadlens.config import preset
from quadlens.train import step_function, train, train_batch

RECIPE_EPOCHS = 10_000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    cfgs = [preset("pizza", seed=s, epochs=args.epochs) for s in range(args.seeds)]
    step = step_function([preset("pizza")], device=args.device)
    with FlopCounterMode(display=False) as fc:
        step()
    flops_per_epoch = fc.get_total_flops()  # matmul FLOPs of one training step
    peak = matmul_peak_gflops() * 1e9
    t = time.perf_counter()
    for cfg in cfgs:
        train(cfg, None, device=args.device, progress=False)
    seq = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, len(cfgs), args.batch):
        train_batch(cfgs[i : i + args.batch], [None] * len(cfgs[i : i + args.batch]),
                    device=args.device)  # fmt: skip
    bat = time.perf_counter() - t
    scale = RECIPE_EPOCHS / args.epochs
    floor = flops_per_epoch * RECIPE_EPOCHS / peak  # seconds per model at the full recipe
    result = {
        "device": args.device,
        "seeds": args.seeds,
        "batch": args.batch,
        "sequential_models_per_hour": round(3600 / (seq / args.seeds * scale), 1),
        "batched_models_per_hour": round(3600 / (bat / args.seeds * scale), 1),
        "batched_over_sequential": round(seq / bat, 2),
        "floor_models_per_hour": round(3600 / floor, 1),
        "batched_over_floor_time": round(bat / args.seeds * scale / floor, 2),
        "hours_for_152_seeds_batched": round(152 * bat / args.seeds * scale / 3600, 2),
        "matmul_peak_gflops": round(peak / 1e9, 1),
    }
    print(json.dumps(result, indent=2))
    Path("benchmarks/out").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/out/zoo_speed.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
