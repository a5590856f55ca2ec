"""Training speed: quadlens vs a straightforward TransformerLens loop, side by side.

Both train the paper's pizza model (p = 59, d_model 128, 4 heads, d_mlp 512, constant 1/2
attention) with the same recipe: full batch over the 2,784 training pairs, float64 log-softmax,
AdamW (lr 1e-3, wd 1, betas 0.9/0.98), 10-epoch linear warm-up. The TransformerLens loop is what a
researcher would write: HookedTransformer, a hook that replaces the attention pattern by the
constant pattern, logits at the last position, torch.optim.AdamW.

Reported: seconds per epoch of each (median of timed blocks), their ratio, the time of a full
10,000-epoch quadlens run (the issue's target: under 60 s), and the achieved fraction of the
machine's measured matmul throughput (matmul FLOPs of one step counted by torch's
FlopCounterMode, divided by time per step, over the best GFLOP/s of a large float32 matmul).

    python -m benchmarks.train_speed            # full: includes the 10,000-epoch run
    python -m benchmarks.train_speed --quick    # per-epoch rates only
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import matmul_peak_gflops
from quadlens._alloc import tune_allocator
from quadlens.config import preset
from quadlens.data import all_pairs, labels, make_split
from quadlens.train import step_function, train


def time_steps(step, n_blocks: int, block: int) -> float:
    """Median seconds per step over `n_blocks` blocks of `block` steps (after a warm-up)."""
    for _ in range(3):
        step()
    times = []
    for _ in range(n_blocks):
        t = time.perf_counter()
        for _ in range(block):
            step()
        times.append((time.perf_counter() - t) / block)
    return statistics.median(times)


def count_flops(step) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def quadlens_step(cfg):
    return step_function([cfg])


def transformerlens_step(cfg):
    warnings.simplefilter("ignore")
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    m = cfg.model
    tcfg = HookedTransformerConfig(
        n_layers=1,
        d_model=m.d_model,
        d_head=m.d_head,
        n_heads=m.n_heads,
        d_mlp=m.d_mlp,
        d_vocab=m.p,
        d_vocab_out=m.p,
        n_ctx=2,
        act_fn="relu",
        normalization_type=None,
        device="cpu",
        seed=0,
    )
    model = HookedTransformer(tcfg)
    split = make_split(m.p, 0, cfg.train.train_frac)
    a, b = all_pairs(m.p)
    tokens = torch.stack([a, b], 1)[split.train]
    y = labels(m.p)[split.train]
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.train.lr,
        betas=cfg.train.betas,
        weight_decay=cfg.train.weight_decay,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(s / 10, 1))
    uniform = torch.tensor([[1.0, 0.0], [0.5, 0.5]])

    def constant_pattern(pattern, hook):
        return uniform.expand_as(pattern)

    hooks = [("blocks.0.attn.hook_pattern", constant_pattern)]

    def step():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)[:, -1]
        loss = torch.nn.functional.cross_entropy(logits.double(), y)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip the full 10,000-epoch run")
    ap.add_argument("--out", default="benchmarks/out/train_speed.json")
    args = ap.parse_args()
    tune_allocator()
    cfg = preset("pizza")
    peak = matmul_peak_gflops()
    q_step, t_step = quadlens_step(cfg), transformerlens_step(cfg)
    q_flops, t_flops = count_flops(q_step), count_flops(t_step)
    q_sec = time_steps(q_step, n_blocks=5, block=200)
    t_sec = time_steps(t_step, n_blocks=5, block=20)
    result = {
        "machine": {
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "matmul_peak_gflops": round(peak, 1),
        },
        "quadlens_ms_per_epoch": round(q_sec * 1e3, 3),
        "transformerlens_ms_per_epoch": round(t_sec * 1e3, 3),
        "speedup": round(t_sec / q_sec, 2),
        "quadlens_matmul_gflop_per_epoch": round(q_flops / 1e9, 4),
        "transformerlens_matmul_gflop_per_epoch": round(t_flops / 1e9, 4),
        "quadlens_fraction_of_matmul_peak": round(q_flops / q_sec / 1e9 / peak, 3),
        "transformerlens_fraction_of_matmul_peak": round(t_flops / t_sec / 1e9 / peak, 3),
    }
    if not args.quick:
        res = train(cfg, None, device="cpu", progress=False)
        result["full_run_seconds"] = round(res.seconds, 1)
        result["full_run_accuracy"] = res.eval.accuracy
        result["transformerlens_full_run_seconds_estimated"] = round(t_sec * cfg.train.epochs, 0)
    print(json.dumps(result, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
