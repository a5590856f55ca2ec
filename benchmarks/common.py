"""Helpers shared by the benchmarks: robust timing and the machine's matmul peak."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def timed(f: Callable[[], object], reps: int = 5) -> float:
    """Median seconds of `reps` calls of f, after one warm-up call."""
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def matmul_peak_gflops(n: int = 2048, reps: int = 10) -> float:
    """The best GFLOP/s of a large float32 matmul on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def save_figure(fig: object, path: object) -> None:
    """Write a matplotlib figure, making its folder."""
    from pathlib import Path

    Path(str(path)).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")  # type: ignore[attr-defined]


def write_results(name: str, results: object, plot: Callable[[object, object], None]) -> None:
    """benchmarks/out/NAME.json and benchmarks/figures/NAME.png (drawn by plot(results, path))."""
    import json
    from pathlib import Path

    here = Path(__file__).resolve().parent
    out = here / "out" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    plot(results, here / "figures" / f"{name}.png")
