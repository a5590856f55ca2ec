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


def matmul_peak_gflops(n: int = 2048, reps: int = 10, device: str = "cpu") -> float:
    """The best GFLOP/s of a large float32 matmul on this machine (or on `device`)."""
    dev = torch.device(device)
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    a @ b
    best = float("inf")
    for _ in range(reps):
        sync(dev)
        t = time.perf_counter()
        a @ b
        sync(dev)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), for timing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_zoo(seeds: int, epochs: int, batch: int, device: str,
             workers: int = 1) -> tuple[float, int]:  # fmt: skip
    """(seconds, models at 100% accuracy) to train a fresh zoo of `seeds` pizza models of
    `epochs` epochs with `train_zoo` (run directories written, in a temporary folder)."""
    import shutil
    import tempfile
    from pathlib import Path

    from quadlens.zoo import train_zoo

    tmp = Path(tempfile.mkdtemp())
    try:
        t = time.perf_counter()
        res = train_zoo(tmp / "zoo", "pizza", {"epochs": epochs}, {}, list(range(seeds)),
                        batch=batch, device=device, progress=False, workers=workers)  # fmt: skip
        seconds = time.perf_counter() - t
        return seconds, sum(ev is not None and ev.accuracy == 1.0 for _, ev in res)
    finally:
        shutil.rmtree(tmp)


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
