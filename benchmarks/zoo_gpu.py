"""The seed zoo on a GPU: the issue's target is the 152-seed pizza zoo (10,000 epochs each) in
under 2 minutes. One command, sized for one call of a lent GPU machine (under ~6 minutes):

    PYTHONPATH=src python3 -m benchmarks.zoo_gpu [--out DIR]

It reports, as JSON (DIR/zoo_gpu.json and benchmarks/out/zoo_gpu.json):

- the device, and its measured float32 matmul peak (TF32 off, as in training);
- agreement: a few pizza models trained stacked on the device against the same models trained
  one by one on the CPU (the fused kernels): the largest parameter difference, relative to the
  parameter's largest entry, and both accuracies;
- the zoo: `quadlens zoo train --batch 152 --workers 1` through `train_zoo`, ordinary run
  directories written, first for `--pilot-epochs` and a third of that (a fixed part per model
  plus a part per epoch, as `zoo_speed.py` extrapolates), then, where the extrapolated full run
  fits `--budget` seconds, the full recipe timed as a user would run it, with how many models
  reached 100%;
- one model at a time on the same device (`--batch 1`), from two lengths as well, and the
  ratio: batched over one after another;
- the floor: matmul FLOPs per model step (FlopCounterMode on the torch-operations path) x
  epochs x seeds / the measured peak.

`--device cpu` with a few seeds and epochs runs the same code on the CPU (the test suite does,
so this script cannot rot while no GPU is lent).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from quadlens.config import preset
from quadlens.train import step_function, train_batch
from quadlens.zoo import train_zoo

RECIPE_EPOCHS = 10_000


def matmul_peak(device: torch.device, n: int = 4096, reps: int = 10) -> float:
    """The best float32 FLOP/s of an n x n matmul on the device."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(reps + 1):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_zoo(seeds: int, epochs: int, batch: int, device: str) -> tuple[float, int]:
    """(seconds, models at 100% accuracy) for a fresh zoo of pizza models, `epochs` each."""
    tmp = Path(tempfile.mkdtemp())
    try:
        t = time.perf_counter()
        res = train_zoo(tmp / "zoo", "pizza", {"epochs": epochs}, {}, list(range(seeds)),
                        batch=batch, device=device, progress=False, workers=1)  # fmt: skip
        seconds = time.perf_counter() - t
        return seconds, sum(ev is not None and ev.accuracy == 1.0 for _, ev in res)
    finally:
        shutil.rmtree(tmp)


def extrapolate(short: tuple[int, float], long: tuple[int, float], seeds: int,
                epochs: int) -> dict[str, float]:  # fmt: skip
    """A fixed part and a part per epoch, from two (epochs, seconds) of a zoo of `seeds`
    models; its seconds at `epochs`."""
    (e0, t0), (e1, t1) = short, long
    per_epoch = (t1 - t0) / (e1 - e0)
    fixed = t0 - per_epoch * e0
    return {"seeds": seeds, "fixed_seconds": round(fixed, 2),
            "ms_per_epoch": round(per_epoch * 1e3, 3),
            "full_seconds": round(fixed + per_epoch * epochs, 1)}  # fmt: skip


def agreement(device: str, seeds: int, epochs: int) -> dict[str, Any]:
    """The same pizza models trained stacked on `device` and one by one on the CPU."""
    base = preset("pizza")
    assert base.train is not None
    cfgs = [dataclasses.replace(base, train=dataclasses.replace(base.train, seed=s, epochs=epochs))
            for s in range(seeds)]
    dev = train_batch(cfgs, [None] * seeds, device=device)
    out: dict[str, Any] = {"seeds": seeds, "epochs": epochs, "max_rel_diff": 0.0,
                           "accuracy_device": [], "accuracy_cpu": []}  # fmt: skip
    for cfg, res in zip(cfgs, dev, strict=True):
        (ref,) = train_batch([cfg], [None], device="cpu")
        for (name, x), y in zip(ref.model.named_parameters(), res.model.parameters(),
                                strict=True):  # fmt: skip
            scale = float(x.detach().abs().max()) or 1.0
            diff = float((x.detach() - y.detach().cpu()).abs().max()) / scale
            if diff > out["max_rel_diff"]:
                out["max_rel_diff"], out["worst_parameter"] = diff, name
        out["accuracy_device"].append(res.eval.accuracy)
        out["accuracy_cpu"].append(ref.eval.accuracy)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seeds", type=int, default=152)
    ap.add_argument("--pilot-epochs", type=int, default=600,
                    help="the longer of the two short zoos timed (the shorter: a third)")
    ap.add_argument("--budget", type=float, default=240.0,
                    help="run the full recipe only if it is extrapolated to take at most this "
                         "many seconds")  # fmt: skip
    ap.add_argument("--epochs", type=int, default=RECIPE_EPOCHS, help="the full recipe's")
    ap.add_argument("--sequential-seeds", type=int, default=2)
    ap.add_argument("--agree-seeds", type=int, default=2)
    ap.add_argument("--agree-epochs", type=int, default=300)
    ap.add_argument("--out", default=None, help="also write zoo_gpu.json here")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here (torch.cuda.is_available() is False); "
                         "--device cpu runs the same code on the CPU")  # fmt: skip
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # training's float32, as on the CPU
        torch.backends.cudnn.allow_tf32 = False
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "seeds": args.seeds,
    }
    peak = matmul_peak(device)
    result["matmul_peak_tflops"] = round(peak / 1e12, 2)
    step = step_function([preset("pizza")], device=args.device, kernels=False)
    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    floor = flops * args.epochs * args.seeds / peak
    result["floor_seconds"] = round(floor, 2)
    print(json.dumps(result), flush=True)

    result["agreement"] = agreement(args.device, args.agree_seeds, args.agree_epochs)
    print(json.dumps({"agreement": result["agreement"]}), flush=True)

    long_e = args.pilot_epochs
    short_e = max(1, long_e // 3)
    batched = [(e, time_zoo(args.seeds, e, args.seeds, args.device)[0]) for e in (short_e, long_e)]
    result["batched_pilot"] = extrapolate(batched[0], batched[1], args.seeds, args.epochs)
    print(json.dumps({"batched_pilot": result["batched_pilot"]}), flush=True)

    k = args.sequential_seeds
    seq = [(e, time_zoo(k, e, 1, args.device)[0]) for e in (short_e, long_e)]
    result["sequential_pilot"] = extrapolate(seq[0], seq[1], k, args.epochs)
    per_model_seq = result["sequential_pilot"]["full_seconds"] / k
    per_model_batch = result["batched_pilot"]["full_seconds"] / args.seeds
    result["batched_over_sequential"] = round(per_model_seq / per_model_batch, 2)
    result["sequential_full_seconds_estimate"] = round(per_model_seq * args.seeds, 1)
    print(json.dumps({"sequential_pilot": result["sequential_pilot"]}), flush=True)

    estimate = result["batched_pilot"]["full_seconds"]
    if estimate <= args.budget:
        seconds, perfect = time_zoo(args.seeds, args.epochs, args.seeds, args.device)
        result["full"] = {"epochs": args.epochs, "seconds": round(seconds, 1),
                          "models_at_100": perfect,
                          "models_per_hour": round(3600 * args.seeds / seconds, 1),
                          "over_floor": round(seconds / floor, 2)}  # fmt: skip
    else:
        result["full"] = {"skipped": f"extrapolated {estimate:.0f} s > --budget {args.budget:.0f}"}
    result["seconds_total"] = round(time.perf_counter() - t_start, 1)
    text = json.dumps(result, indent=2)
    print(text, flush=True)
    for folder in [Path("benchmarks/out")] + ([Path(args.out)] if args.out else []):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "zoo_gpu.json").write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
