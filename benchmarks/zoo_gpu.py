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
  epochs x seeds / the measured peak;
- the stacked step of all the seeds alone, in ms, and torch's profile of it (the top
  operations, DIR/zoo_gpu_profile.txt), for where the time goes; with its peak GPU memory per
  model beside `train.step_bytes`'s estimate and the `--batch` default it gives.

Each stage that fails records its error and the next one runs; the JSON is written after every
stage, so a device call that breaks off still returns what it measured.

`--device cpu` with a few seeds and epochs runs the same code on the CPU (the test suite does,
so this script cannot rot while no GPU is lent).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import matmul_peak_gflops, sync, time_zoo
from quadlens.config import preset
from quadlens.train import step_bytes, step_function, train_batch
from quadlens.zoo import default_batch

RECIPE_EPOCHS = 10_000


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
        "errors": {},
    }
    folders = [Path("benchmarks/out")] + ([Path(args.out)] if args.out else [])

    def save() -> None:  # after every stage: a stage that fails loses nothing before it
        result["seconds_total"] = round(time.perf_counter() - t_start, 1)
        text = json.dumps(result, indent=2)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "zoo_gpu.json").write_text(text + "\n")

    def stage(name: str, run: Any) -> None:
        """Run one stage; record its error (and go on) rather than lose the device call."""
        try:
            run()
        except Exception as exc:  # every stage's failure is a result here
            result["errors"][name] = f"{type(exc).__name__}: {exc}"
        print(json.dumps({name: result.get(name, result["errors"].get(name))}), flush=True)
        save()

    def floor_stage() -> None:
        peak = matmul_peak_gflops(4096, device=args.device) * 1e9
        step = step_function([preset("pizza")], device=args.device, kernels=False)
        with FlopCounterMode(display=False) as fc:
            step()
        result["floor"] = {"matmul_peak_tflops": round(peak / 1e12, 2),
                           "flops_per_model_step": fc.get_total_flops(),
                           "seconds": round(fc.get_total_flops() * args.epochs * args.seeds
                                            / peak, 2)}  # fmt: skip

    def step_stage() -> None:
        """The stacked step of all the seeds alone (no logging, no checkpoints), and where its
        time goes (torch's profiler, the top operations, to zoo_gpu_profile.txt)."""
        base = preset("pizza")
        assert base.train is not None
        cfgs = [dataclasses.replace(base, train=dataclasses.replace(base.train, seed=s))
                for s in range(args.seeds)]  # fmt: skip
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        step = step_function(cfgs, device=args.device, kernels=False)
        for _ in range(3):
            step()
        sync(device)
        result["step"] = {"step_bytes_estimate": step_bytes(base),
                          "default_batch": default_batch(base, args.device, args.seeds)}
        if device.type == "cuda":  # what the default batch's memory estimate should bound
            peak = torch.cuda.max_memory_allocated(device)
            result["step"]["peak_bytes_per_model"] = peak // args.seeds
        t = time.perf_counter()
        n = 20
        for _ in range(n):
            step()
        sync(device)
        result["step"]["ms_per_step"] = round((time.perf_counter() - t) / n * 1e3, 3)
        acts = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            acts.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=acts) as prof:
            for _ in range(5):
                step()
            sync(device)
        key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        table = prof.key_averages().table(sort_by=key, row_limit=25)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "zoo_gpu_profile.txt").write_text(table + "\n")

    def agree_stage() -> None:
        result["agreement"] = agreement(args.device, args.agree_seeds, args.agree_epochs)

    long_e = args.pilot_epochs
    short_e = max(1, long_e // 3)

    def batched_stage() -> None:
        t = [(e, time_zoo(args.seeds, e, args.seeds, args.device)[0]) for e in (short_e, long_e)]
        result["batched_pilot"] = extrapolate(t[0], t[1], args.seeds, args.epochs)

    def sequential_stage() -> None:
        k = args.sequential_seeds
        t = [(e, time_zoo(k, e, 1, args.device)[0]) for e in (short_e, long_e)]
        result["sequential_pilot"] = extrapolate(t[0], t[1], k, args.epochs)
        per_model = result["sequential_pilot"]["full_seconds"] / k
        result["sequential_pilot"]["all_seeds_seconds"] = round(per_model * args.seeds, 1)
        if "batched_pilot" in result:
            batched = result["batched_pilot"]["full_seconds"] / args.seeds
            result["batched_over_sequential"] = round(per_model / batched, 2)

    def full_stage() -> None:
        estimate = result.get("batched_pilot", {}).get("full_seconds", math.inf)
        if estimate > args.budget:
            result["full"] = {"skipped": f"extrapolated {estimate:.0f} s > --budget "
                                         f"{args.budget:.0f} s"}  # fmt: skip
            return
        seconds, perfect = time_zoo(args.seeds, args.epochs, args.seeds, args.device)
        result["full"] = {"epochs": args.epochs, "seconds": round(seconds, 1),
                          "models_at_100": perfect,
                          "models_per_hour": round(3600 * args.seeds / seconds, 1)}  # fmt: skip
        if "floor" in result:
            result["full"]["over_floor"] = round(seconds / result["floor"]["seconds"], 2)

    for name, run in (("floor", floor_stage), ("step", step_stage), ("agreement", agree_stage),
                      ("batched_pilot", batched_stage), ("sequential_pilot", sequential_stage),
                      ("full", full_stage)):  # fmt: skip
        stage(name, run)
    print(json.dumps(result, indent=2), flush=True)
    return result


if __name__ == "__main__":
    main()
