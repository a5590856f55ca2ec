"""The seed zoo: many models of one recipe, trained together and stored as ordinary runs.

    ZOO/zoo.json          manifest: the recipe, the sweep, and every member (name, seed,
                          overrides, run directory)
    ZOO/runs/NAME/        a run directory exactly like `quadlens train` writes

Members are trained in batches of models with equal shapes and cadence (`train.batch_key`).
An interrupted zoo continues with `resume=True`: finished members are untouched, members with a
checkpoint continue from it, the rest start. On the CPU every member is bit-identical to
`quadlens train` with the same options, whatever the batch (on a GPU, where a batch is stacked
in one step with one optimizer and the default batch is every model of a shape that fits,
members agree with single runs to float rounding; see `train.train_batch`).

On the CPU the local backend runs `workers` single-threaded processes side by side (default:
one per core), each training one batch at a time: a step of these small models spends part of
its time in thread synchronisation, so W one-thread processes train more models per hour than
one W-thread process (benchmarks/README.md). A member's bits do not depend on the number of
threads it ran with (tested).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from quadlens import rundir
from quadlens.config import RunConfig, preset
from quadlens.errors import DivergedError, QuadlensError
from quadlens.evaluate import EvalResult
from quadlens.train import (
    STOP_SIGNALS,
    Interrupted,
    batch_key,
    deferred_interrupt,
    progress_bar,
    resolve_device,
    schedule_key,
    step_bytes,
    train_batch,
)

MANIFEST = "zoo.json"


@dataclass(frozen=True)
class Member:
    name: str
    seed: int
    overrides: dict[str, Any]
    run: str  # relative to the zoo directory

    def config(self, preset_name: str, fixed: dict[str, Any]) -> RunConfig:
        return preset(preset_name, **fixed, **self.overrides, seed=self.seed)


DIVERGED = rundir.DIVERGED
MAX_SEEDS = 100_000  # a zoo's seeds (a typo such as 0-1000000000 would exhaust memory)


def parse_seeds(spec: str) -> list[int]:
    """'0-151', '3', '0,5,9-11' -> sorted unique seeds."""
    ranges = []
    try:
        for part in spec.split(","):
            lo, dash, hi = part.strip().partition("-")
            a = int(lo)
            b = int(hi) if dash else a  # ("1-" is not a range)
            if a < 0 or b < a:
                raise ValueError
            ranges.append((a, b))
    except ValueError:
        raise QuadlensError(f"bad --seeds {spec!r}: expected e.g. 0-151 or 0,3,7-9") from None
    if sum(b - a + 1 for a, b in ranges) > MAX_SEEDS:
        raise QuadlensError(f"--seeds {spec!r}: more than {MAX_SEEDS:,} seeds")
    return sorted({s for a, b in ranges for s in range(a, b + 1)})


def check_workers(workers: int | None) -> None:
    """--workers (None: the default) must be at least 1."""
    if workers is not None and workers < 1:
        raise QuadlensError(f"--workers must be >= 1, got {workers}")


def check_resumable(zoo: Path) -> None:
    """--resume needs a zoo to continue (its manifest)."""
    if not (zoo / MANIFEST).is_file():
        raise QuadlensError(f"{zoo}: not a quadlens zoo (no {MANIFEST}): nothing to resume; "
                            "start a new zoo without --resume")  # fmt: skip


def check_readable(zoo: Path, members: list[dict[str, Any]]) -> None:
    """Refuse, before any work starts, to study or certify a zoo with no finished member, or one
    of whose finished members cannot be loaded (a corrupt weights file, a foreign config),
    naming each such member and how to train it again."""
    if not members:
        raise QuadlensError(f"{zoo}: no finished member to work on (unfinished ones train on "
                            f"with `quadlens zoo train ... --resume --out {zoo}`)")  # fmt: skip
    bad = []
    for m in members:
        try:
            rundir.load_run(zoo / m["run"])
        except QuadlensError as exc:
            bad.append((m["name"], str(exc)))
    if bad:
        names = ", ".join(n for n, _ in bad[:5]) + (", ..." if len(bad) > 5 else "")
        many = len(bad) > 1
        raise QuadlensError(
            f"{zoo}: {len(bad)} member{'s' if many else ''} cannot be read ({names}); "
            f"{'the first: ' if many else ''}{bad[0][1]}. Remove the run "
            f"director{'ies' if many else 'y'} and run `quadlens zoo train --resume --out {zoo}` "
            f"to train {'them' if many else 'it'} again"
        )


def parse_grid(name: str, spec: str, kind: type) -> list[Any]:
    items = spec.split(",")
    try:
        if not all(v.strip() for v in items):
            raise ValueError  # an empty item ("64," or "1,,2")
        values = [kind(v) for v in items]
    except ValueError:
        raise QuadlensError(
            f"bad --{name.replace('_', '-')} {spec!r}: expected a comma list"
        ) from None
    if not values:
        raise QuadlensError(f"--{name.replace('_', '-')} needs at least one value")
    return values


def members(seeds: list[int], sweep: dict[str, list[Any]]) -> list[Member]:
    """The cartesian product of the sweep values and the seeds, with stable names."""
    names = list(sweep)
    out = []
    for combo in itertools.product(*(sweep[n] for n in names)):
        overrides = dict(zip(names, combo, strict=True))
        tag = "-".join(f"{n}{v:g}" if isinstance(v, float) else f"{n}{v}"
                       for n, v in overrides.items())  # fmt: skip
        for seed in seeds:
            name = f"{tag}-seed{seed:04d}" if tag else f"seed{seed:04d}"
            out.append(Member(name, seed, overrides, f"runs/{name}"))
    names_seen: dict[str, Member] = {}
    for m in out:
        if m.name in names_seen:
            raise QuadlensError(
                f"the sweep values {names_seen[m.name].overrides} and {m.overrides} give the same "
                f"run name {m.name!r}: give each swept option distinct values"
            )
        names_seen[m.name] = m
    return out


def manifest(preset_name: str, fixed: dict[str, Any], sweep: dict[str, list[Any]],
             mem: list[Member]) -> dict[str, Any]:  # fmt: skip
    """The zoo's manifest: the recipe, the sweep and every member (JSON-ready)."""
    return {
        "format": "quadlens-zoo/1",
        "preset": preset_name,
        "fixed": fixed,
        "sweep": sweep,
        "members": [m.__dict__ for m in mem],
    }


def read_manifest(zoo: Path) -> dict[str, Any]:
    path = zoo / MANIFEST
    if not path.is_file():
        raise QuadlensError(f"{zoo}: not a quadlens zoo (no {MANIFEST})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise QuadlensError(f"{path}: not valid JSON ({exc})") from None
    if data.get("format") != "quadlens-zoo/1":
        raise QuadlensError(f"{path}: not a quadlens zoo manifest")
    return data


def _checkpoint_step(run: Path) -> int:
    path = run / rundir.CHECKPOINT
    if not path.exists():
        return 0
    _, meta = rundir.load_tensors(path)
    return int(meta.get("step", 0))


def train_zoo(
    zoo: Path,
    preset_name: str,
    fixed: dict[str, Any],
    sweep: dict[str, list[Any]],
    seeds: list[int],
    *,
    batch: int | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
) -> list[tuple[Member, EvalResult | None]]:
    """Train every member not yet finished. Returns (member, its evaluation, or None if it was
    already finished before this call). The local backend trains in `workers` processes
    (default: one per core on the CPU, one on a GPU); `workers=1` trains in this process.
    `batch` is the models per training batch (default: `default_batch`). With
    backend "ray", each batch is a Ray task (on the cluster at `address`, or a local Ray
    instance); the zoo directory must be on a filesystem every Ray node shares."""
    if backend not in ("local", "ray"):
        raise QuadlensError(f"unknown backend {backend!r}: expected local or ray")
    if batch is not None and batch < 1:
        raise QuadlensError(f"--batch must be >= 1, got {batch}")
    check_workers(workers)
    mem = members(seeds, sweep)
    cfgs = {m.name: m.config(preset_name, fixed) for m in mem}  # validates every config
    wanted = manifest(preset_name, fixed, sweep, mem)
    if resume and (zoo / MANIFEST).is_file():
        if read_manifest(zoo) != json.loads(json.dumps(wanted)):
            raise QuadlensError(f"{zoo}: --resume continues the zoo with the options it was "
                                "started with; these options differ")  # fmt: skip
    elif resume:
        check_resumable(zoo)
    else:
        rundir.prepare_out_dir(zoo, overwrite=False, resume=False)
        rundir.write_json(zoo / MANIFEST, wanted)
    finished = [m for m in mem if (zoo / m.run / rundir.WEIGHTS).is_file()]
    todo = [m for m in mem if m not in finished
            and not (zoo / m.run / DIVERGED).is_file()]  # (a diverged member would again)
    done_before = [(m, None) for m in finished]
    epochs = {m.name: cfgs[m.name].train.epochs for m in mem}  # type: ignore[union-attr]
    total = sum(epochs.values())
    settled = [m for m in mem if m not in todo]  # finished, or diverged (not trained again)
    bar = progress_bar(progress, 0.5, total=total, unit="model-epoch", desc=f"zoo {zoo.name}",
                       initial=sum(epochs[m.name] for m in settled))  # fmt: skip
    # batches: equal shapes and cadence, and equal resume step
    # (off the CPU also by learning-rate schedule: such a batch shares one stacked optimizer)
    stacks = device != "cpu" and resolve_device(device).type != "cpu"
    groups: dict[tuple[Any, ...], list[Member]] = {}
    for m in todo:
        (zoo / m.run).mkdir(parents=True, exist_ok=True)
        groups.setdefault(_group_key(zoo, m, cfgs[m.name], stacks), []).append(m)
    results: list[tuple[Member, EvalResult | None]] = list(done_before)
    sizes = {k: batch or default_batch(cfgs[g[0].name], device, len(g)) for k, g in groups.items()}
    chunks = [g[i : i + sizes[k]] for k, g in groups.items() for i in range(0, len(g), sizes[k])]
    try:
        if workers is None:
            on_cpu = resolve_device(device).type == "cpu"
            workers = (os.cpu_count() or 1) if on_cpu else 1
        workers = min(workers, len(chunks))
        if backend == "ray":
            results += _run_ray(zoo, chunks, cfgs, device, command, bar, address)
        elif workers > 1:
            results += _run_processes(zoo, chunks, cfgs, device, command, bar, workers)
        else:
            for chunk in chunks:
                evals = _train_members(zoo, [cfgs[m.name] for m in chunk], [m.run for m in chunk],
                                       device, command, bar)  # fmt: skip
                results += [(m, EvalResult(**ev)) for m, ev in zip(chunk, evals, strict=True)
                            if ev is not None]  # fmt: skip
    finally:
        bar.close()
    order = {m.name: i for i, m in enumerate(mem)}
    return sorted(results, key=lambda r: order[r[0].name])


def _group_key(zoo: Path, m: Member, cfg: RunConfig, by_schedule: bool) -> tuple[Any, ...]:
    """Members with equal keys may train in one batch: equal shapes and cadence
    (`train.batch_key`), equal resume step, and with `by_schedule` (off the CPU) one learning-rate
    schedule (`train.schedule_key`: a sweep over the learning rate or the weight decay is then
    batched per value, each batch stacked with one optimizer)."""
    key = (batch_key(cfg), _checkpoint_step(zoo / m.run))
    return (*key, schedule_key(cfg)) if by_schedule else key


def default_batch(cfg: RunConfig, device: str, n: int) -> int:
    """`--batch`'s default for a group of n models of one shape: 1 on the CPU (stacking saves
    nothing there: benchmarks/README.md); on a GPU all n, up to what half the free device memory
    holds at twice `train.step_bytes` per model (a stacked step's cost hardly grows with the
    batch there)."""
    dev = resolve_device(device)
    if dev.type != "cuda":
        return 1
    free, _ = torch.cuda.mem_get_info(dev)
    return max(1, min(n, free // 2 // (2 * step_bytes(cfg))))


def _train_chunk(zoo: str, cfg_dicts: list[dict[str, Any]], runs: list[str], device: str,
                 command: list[str] | None, threads: int) -> list[dict[str, Any]]:  # fmt: skip
    """A Ray task or worker process: train one batch into its run directories; return the
    evaluations."""
    import torch

    torch.set_num_threads(threads)
    if _stop is not None and (_stop.is_set() or os.getppid() != _parent):
        raise Interrupted()  # the zoo is stopping (or gone): a task queued here does not start
    cfgs = [RunConfig.from_dict(d) for d in cfg_dicts]
    bar = None if _progress is None else _QueueBar(_progress)
    return _train_members(Path(zoo), cfgs, runs, device, command, bar)


def _train_members(zoo: Path, cfgs: list[RunConfig], runs: list[str], device: str,
                   command: list[str] | None, bar: Any) -> list[dict[str, Any] | None]:  # fmt: skip
    """Train one batch into its run directories; each member's evaluation, or None for a
    member whose training diverged: that one is marked (RUN/diverged.json, with the message) and
    the others train on, each alone from its last checkpoint (the same bits on the CPU: a
    batch gives every member its single run's bits), so one bad member never stops a zoo."""
    tally = _Tally(bar)  # the model-epochs this call reports: in all, each member's epochs
    try:
        res = train_batch(cfgs, [zoo / r for r in runs], device=device, resume=True,
                          command=command, bar=tally)  # fmt: skip
        return [r.eval.to_dict() for r in res]
    except DivergedError as exc:
        if len(cfgs) == 1:
            rundir.write_json(zoo / runs[0] / DIVERGED, {"error": str(exc)})
            tally.update(cfgs[0].train.epochs - tally.seen)  # type: ignore[union-attr]
            return [None]
    again = _Tally(bar, skip=tally.seen)  # (the epochs trained again are counted once)
    out: list[dict[str, Any] | None] = []
    for cfg, run in zip(cfgs, runs, strict=True):
        out += _train_members(zoo, [cfg], [run], device, command, again)
    return out


class _Tally:
    """Passes a batch's progress on to the zoo's bar (or nothing, for None), leaving out the
    first `skip` model-epochs: after a divergence the members train again, alone, from their
    checkpoints, over epochs the failed batch already counted; and a diverged member's epochs
    left untrained are counted when it is marked, so the bar still ends at its total."""

    def __init__(self, bar: Any, skip: int = 0) -> None:
        self.bar, self.skip, self.seen = bar, skip, 0

    def update(self, n: int) -> None:
        new = max(0, self.seen + n - self.skip) - max(0, self.seen - self.skip)
        self.seen += n
        if new and self.bar is not None:
            self.bar.update(new)

    def set_postfix(self, refresh: bool = False, **kw: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix(refresh=refresh, **kw)


def diverged(zoo: Path, manifest: dict[str, Any]) -> list[dict[str, str]]:
    """The members whose training diverged: [{"name", "error"}]."""
    out = []
    for m in manifest["members"]:
        path = zoo / m["run"] / DIVERGED
        if path.is_file():
            out.append({"name": m["name"], "error": json.loads(path.read_text())["error"]})
    return out


_progress: Any = None  # a worker process's queue to the parent's progress bar
_stop: Any = None  # a worker process's view of the parent's "stop" event
_parent = 0  # a worker process's parent


class _QueueBar:
    """Stands in for the progress bar inside a worker process: forwards to the parent."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def update(self, n: int) -> None:
        self.queue.put(("update", n))

    def set_postfix(self, refresh: bool = False, **kw: str) -> None:
        self.queue.put(("postfix", kw))


def _worker_init(queue: Any, stop: Any, parent: int) -> None:
    """A worker ignores Ctrl-C (and SIGTERM, SIGHUP) from outside; while training, train_batch
    catches the Ctrl-C a watchdog thread raises in this process while the parent's `stop`
    event is set, or once the parent (pid `parent`) has died without a word (SIGKILL): the
    batch saves its checkpoints and stops, whenever it started, so no worker trains on into the
    zoo directory. The parent passes its pid: a worker that finishes starting only after the
    parent died (a spawned interpreter takes seconds to import torch) would otherwise take its
    new parent, init, for the zoo's and wait for work forever."""
    global _progress, _stop, _parent
    _progress, _stop, _parent = queue, stop, parent
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(target=_watchdog, args=(_parent, stop), daemon=True).start()


def _watchdog(parent: int, stop: Any, poll: float = 0.2, grace: float = 15.0) -> None:
    """Interrupt this worker's training batch (it checkpoints and stops) while `stop` is set or
    the parent is gone (this process re-parented), every `poll` seconds, so a batch that starts
    later stops too; once orphaned, exit after `grace` seconds whatever it is doing."""
    orphaned = None
    while True:
        if os.getppid() != parent:
            orphaned = orphaned or time.monotonic()
            if time.monotonic() - orphaned > grace:
                os._exit(1)
        if orphaned or stop.is_set():
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(poll)


@contextmanager
def _one_thread_env() -> Iterator[None]:
    """OpenMP and MKL read their thread counts when they load: a worker process must start
    with them set to one, or idle runtime threads spin against the other workers (measured:
    13x slower on 2 cores). The fused C kernels run on torch's OpenMP runtime and follow it."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def _run_processes(zoo: Path, chunks: list[list[Member]], cfgs: dict[str, RunConfig],
                   device: str, command: list[str] | None, bar: tqdm, workers: int,
                   ) -> list[tuple[Member, EvalResult]]:  # fmt: skip
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
    queue, stop = ctx.Queue(), ctx.Event()
    out: list[tuple[Member, EvalResult]] = []
    pool = futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                       initargs=(queue, stop, os.getpid()))  # fmt: skip
    with _one_thread_env():  # the workers start (in submit) with one-thread runtimes
        pending = {
            pool.submit(_train_chunk, str(zoo), [cfgs[m.name].to_dict() for m in chunk],
                        [m.run for m in chunk], device, command, 1): chunk
            for chunk in chunks
        }  # fmt: skip

    def drain() -> None:
        while not queue.empty():
            kind, value = queue.get()
            if kind == "update":
                bar.update(value)
            else:
                bar.set_postfix(**value, refresh=False)

    # Ctrl-C (or SIGTERM, SIGHUP) becomes a flag checked between polls: arriving inside drain()
    # it could cut a message on the progress queue in half and leave the queue unreadable
    with deferred_interrupt() as interrupted:
        try:
            while pending:
                if interrupted():
                    raise Interrupted(interrupted())
                done, _ = futures.wait(pending, timeout=0.2, return_when=futures.FIRST_COMPLETED)
                drain()
                for fut in done:
                    chunk = pending.pop(fut)
                    evals = fut.result()  # a worker's error (or interrupt) surfaces here
                    out += [(m, EvalResult(**ev)) for m, ev in zip(chunk, evals, strict=True)
                            if ev is not None]  # fmt: skip
        except BaseException:
            stop.set()  # each worker's watchdog stops its batch at a checkpoint, queued ones too
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
            drain()
    return out


CANCEL_WAIT = 60.0  # seconds a stopping Ray zoo waits for its tasks to save their checkpoints


def _run_ray(zoo: Path, chunks: list[list[Member]], cfgs: dict[str, RunConfig], device: str,
             command: list[str] | None, bar: tqdm, address: str | None,
             ) -> list[tuple[Member, EvalResult]]:  # fmt: skip
    try:
        import ray
    except ImportError:
        raise QuadlensError("--backend ray needs Ray: pip install 'quadlens[ray]'") from None
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise QuadlensError(f"cannot connect to Ray at {address or 'a new local instance'}: "
                                f"{str(exc).splitlines()[0]}") from None  # fmt: skip
    gpu = device.startswith("cuda")
    task = ray.remote(num_cpus=1, num_gpus=1 if gpu else 0)(_train_chunk)
    pending = {}
    for chunk in chunks:
        ref = task.remote(str(zoo.resolve()), [cfgs[m.name].to_dict() for m in chunk],
                          [m.run for m in chunk], device, command, 1)  # fmt: skip
        pending[ref] = chunk
    out: list[tuple[Member, EvalResult]] = []
    # Ctrl-C, SIGTERM and SIGHUP become a flag checked between polls (Ray's driver would die
    # on SIGTERM mid-write); then every task is cancelled, which raises KeyboardInterrupt in
    # the running ones: they save their checkpoints, and Ray is shut down only after that
    with deferred_interrupt() as interrupted:
        try:
            while pending:
                if interrupted():
                    raise Interrupted(interrupted())
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                if not done:
                    continue
                chunk = pending.pop(done[0])
                evals = ray.get(done[0])
                for m, ev in zip(chunk, evals, strict=True):
                    if ev is not None:  # (None: it diverged)
                        out.append((m, EvalResult(**ev)))
                    bar.update(cfgs[m.name].train.epochs)  # type: ignore[union-attr]
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)
            ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_WAIT)
            raise
        finally:
            if started:
                ray.shutdown()
    return out
