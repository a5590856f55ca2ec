"""The seed zoo: run directories identical to single runs, sweeps, and resumption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from quadlens import rundir
from quadlens.errors import QuadlensError
from quadlens.lens import MIX_OUTLIER
from quadlens.study import outlier_reasons
from quadlens.zoo import parse_seeds
from tests.conftest import TINY_ARGS, run_cli

ZOO_ARGS = [a for a in TINY_ARGS if a != "--quiet"] + ["--quiet"]


def _weights(run):
    return rundir.load_tensors(run / rundir.WEIGHTS)[0]


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5,1,2-3") == [1, 2, 3, 5]
    for bad in ("a", "3-1", "-2", ""):
        with pytest.raises(QuadlensError, match="bad --seeds"):
            parse_seeds(bad)


def test_zoo_members_equal_single_runs_and_sweep(tmp_path):
    zoo = tmp_path / "zoo"
    res = run_cli("zoo", "train", "--seeds", "0-1", "--weight-decay", "1,1.5", *ZOO_ARGS,
                  "--out", str(zoo), "--json")  # fmt: skip
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["n_models"] == 4 and data["n_trained_now"] == 4
    names = [m["name"] for m in data["models"]]
    assert names == ["weight_decay1-seed0000", "weight_decay1-seed0001",
                     "weight_decay1.5-seed0000", "weight_decay1.5-seed0001"]  # fmt: skip
    manifest = json.loads((zoo / "zoo.json").read_text())
    assert manifest["sweep"] == {"weight_decay": [1.0, 1.5]} and len(manifest["members"]) == 4
    single = tmp_path / "single"
    assert run_cli("train", *TINY_ARGS, "--seed", "1", "--weight-decay", "1.5", "--out",
                   str(single)).code == 0  # fmt: skip
    a, b = _weights(single), _weights(zoo / "runs" / "weight_decay1.5-seed0001")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # every member is an ordinary run directory
    ev = json.loads(run_cli("eval", str(zoo / "runs" / names[0]), "--json").out)
    assert ev == {k: data["models"][0][k] for k in ("accuracy", "min_margin", "n_inputs")}
    # a second call without --resume refuses; with --resume it trains nothing
    again = run_cli("zoo", "train", "--seeds", "0-1", "--weight-decay", "1,1.5", *ZOO_ARGS,
                    "--out", str(zoo))  # fmt: skip
    assert again.code == 2 and "already exists" in again.err
    res2 = run_cli("zoo", "train", "--seeds", "0-1", "--weight-decay", "1,1.5", *ZOO_ARGS,
                   "--out", str(zoo), "--resume", "--json")  # fmt: skip
    assert json.loads(res2.out)["n_trained_now"] == 0
    other = run_cli("zoo", "train", "--seeds", "0-2", *ZOO_ARGS, "--out", str(zoo), "--resume")
    assert other.code == 2 and "options differ" in other.err


def _start_zoo(args: list[str], out, metrics, timeout: float = 120) -> subprocess.Popen:
    """`quadlens ARGS --out OUT` in a subprocess, returned once `metrics` (a member's
    metrics.jsonl) has 3 lines: that member is training."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "quadlens", *args, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + timeout
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_zoo_resumes_to_the_same_models(tmp_path, workers):
    """Ctrl-C (SIGINT to the zoo's process) stops every training batch at a checkpoint, in this
    process or in worker processes; --resume ends with the models of an uninterrupted zoo."""
    args = ["zoo", "train", "--seeds", "0-2", *ZOO_ARGS, "--epochs", "3000"]
    full = tmp_path / "full"
    assert run_cli(*args, "--out", str(full)).code == 0
    part = tmp_path / "part"
    last = part / "runs" / "seed0002" / rundir.METRICS  # the last member is training
    proc = _start_zoo([*args, "--workers", str(workers)], part, last)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the zoo finished before the interrupt arrived")
    assert proc.returncode == 130 and "--resume" in err, err
    assert "Traceback" not in err, err
    finished = {n: (part / "runs" / n / rundir.WEIGHTS).stat().st_mtime_ns
                for n in ("seed0000", "seed0001")
                if (part / "runs" / n / rundir.WEIGHTS).exists()}  # fmt: skip
    assert finished  # a member trained before the last one started
    assert (part / "runs" / "seed0002" / rundir.CHECKPOINT).exists()
    res = run_cli(*args, "--out", str(part), "--resume", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["n_trained_now"] == 3 - len(finished)
    for name, mtime in finished.items():  # finished members untouched
        assert (part / "runs" / name / rundir.WEIGHTS).stat().st_mtime_ns == mtime
    for name in ("seed0000", "seed0001", "seed0002"):
        a, b = _weights(full / "runs" / name), _weights(part / "runs" / name)
        # which parameters differ and by how much, should it fail (it caught the first-call race
        # of MKL's vector math library this way on 2026-12-06: quadlens/_vml.py)
        differ = {k: float((a[k] - b[k]).abs().max()) for k in a if not torch.equal(a[k], b[k])}
        assert not differ, (name, name in finished, differ)
        assert (full / "runs" / name / rundir.METRICS).read_text() == (
            part / "runs" / name / rundir.METRICS
        ).read_text()


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is pid, from /proc."""
    stats = {int(d): _stat(d) for d in os.listdir("/proc") if d.isdigit()}
    return [c for c, f in stats.items() if f and int(f[1]) == pid and f[0] != "Z"]


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if (f := _stat(p)) and f[0] != "Z"]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc")
def test_zoo_workers_never_outlive_the_zoo(tmp_path):
    """SIGTERM stops a zoo as Ctrl-C does (exit 143, checkpoints, no worker left running).
    SIGKILL gives the workers no word: they notice their parent is gone, checkpoint and exit
    instead of training on, orphaned, into the zoo directory. Either way --resume ends with the
    models of an uninterrupted zoo."""
    args = ["zoo", "train", "--seeds", "0-2", *ZOO_ARGS, "--epochs", "3000"]
    full = tmp_path / "full"
    assert run_cli(*args, "--out", str(full)).code == 0
    for sig in (signal.SIGTERM, signal.SIGKILL):
        part = tmp_path / f"part-{sig.name}"
        first = part / "runs" / "seed0000" / rundir.METRICS
        proc = _start_zoo([*args, "--workers", "2"], part, first)
        workers = _children(proc.pid)
        assert workers, "no worker processes found"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            pytest.skip("the zoo finished before the signal arrived")
        deadline = time.time() + 45  # (an orphaned worker exits 15 s after its parent)
        while _alive(workers) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(workers), (sig.name, _alive(workers))
        if sig == signal.SIGTERM:
            assert proc.returncode == 143 and "--resume" in err and "Traceback" not in err, err
        assert (part / "runs" / "seed0000" / rundir.CHECKPOINT).exists() or (
            part / "runs" / "seed0000" / rundir.WEIGHTS).exists(), sig.name  # fmt: skip
        res = run_cli(*args, "--out", str(part), "--resume", "--json")
        assert res.code == 0, res.err
        for name in ("seed0000", "seed0001", "seed0002"):
            a, b = _weights(full / "runs" / name), _weights(part / "runs" / name)
            assert all(torch.equal(a[k], b[k]) for k in a), (sig.name, name)


def test_a_worker_that_starts_after_its_zoo_died_exits():
    """A spawned worker takes seconds to start (it imports torch). If the zoo was SIGKILLed
    meanwhile, the worker's parent is already init by the time it starts: it must still see
    that the zoo it belongs to (whose pid the zoo passes it) is gone, and exit instead of
    waiting for work forever (found as a worker left behind by the test above)."""
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    code = (
        "import time, multiprocessing as mp, quadlens.zoo as z\n"
        "z._watchdog.__defaults__ = (0.05, 0.5)  # poll, grace: seconds, not the default 15\n"
        f"z._worker_init(None, mp.get_context('spawn').Event(), {dead.pid})\n"
        "time.sleep(60)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr


def test_zoo_study(tmp_path):
    zoo = tmp_path / "zoo"
    assert run_cli("zoo", "train", "--seeds", "0-2", "--weight-decay", "1,2", *ZOO_ARGS,
                   "--epochs", "600", "--out", str(zoo)).code == 0  # fmt: skip
    res = run_cli("zoo", "study", str(zoo), "--json", "--quiet", "--workers", "2")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["n_models"] == 6 and len(data["per_model"]) == 6
    bounded = [r for r in data["per_model"] if r["nonvacuous_bounds"] is not None]
    assert bounded  # the ReLU members with key clusters get compact bounds
    assert data["frac_nonvacuous_bounds"] == sum(r["nonvacuous_bounds"] for r in bounded) / len(
        bounded
    )
    n_clusters = 0
    for r in bounded:
        saved = json.loads((zoo / "runs" / r["name"] / "analysis" / "bound.json").read_text())
        n_clusters += len(saved["clusters"])
        assert r["max_bound"] == max(c["bound"] for c in saved["clusters"])
        assert all(c["bound"] >= c["actual"] for c in saved["clusters"])
        assert r["nonvacuous_bounds"] == (r["max_bound"] < 1)
        if not r["nonvacuous_bounds"]:
            assert any("vacuous" in x for x in r["outlier_reasons"])
    assert data["n_clusters_bounded"] == n_clusters and data["n_bounds_below_actual"] == 0
    assert data["min_bound_over_actual"] >= 1
    evals = {}
    for row in data["per_model"]:
        ev = json.loads(run_cli("eval", str(zoo / "runs" / row["name"]), "--json").out)
        evals[row["name"]] = ev["accuracy"]
        assert row["accuracy"] == ev["accuracy"]
        assert (zoo / "runs" / row["name"] / "analysis" / "analysis.json").is_file()
        assert bool(row["outlier_reasons"]) == any(o["name"] == row["name"]
                                                  for o in data["outliers"])  # fmt: skip
        if row["accuracy"] < 1:
            assert any("not 100% accurate" in r for r in row["outlier_reasons"])
        saved = json.loads((zoo / "runs" / row["name"] / "analysis" / "analysis.json").read_text())
        assert row["frac_key_mixing"] == saved["frac_key_mixing"]
        mixing = any("second key frequency" in r for r in row["outlier_reasons"])
        assert mixing == ((row["frac_key_mixing"] or 0.0) >= MIX_OUTLIER)
    assert data["accuracy_all_100"] == sum(a == 1.0 for a in evals.values())
    assert data["n_key_mixing"] == sum((r["frac_key_mixing"] or 0.0) >= MIX_OUTLIER
                                       for r in data["per_model"])  # fmt: skip
    assert (zoo / "study" / "distributions.png").is_file()
    assert (zoo / "study" / "sweep_weight_decay.png").is_file()
    text = run_cli("zoo", "study", str(zoo), "--quiet", "--no-figures")
    assert text.code == 0 and "100% accurate:" in text.out
    assert f"{n_clusters} cluster bounds checked against brute force, 0 below" in text.out
    assert run_cli("zoo", "study", str(tmp_path / "nope")).code == 2
    # the compact bounds' options: recorded (the defaults above), and passed to every member's
    # bounds, whose bound.json then says so; bad ones stop the study before anything is written
    assert data["bound_options"] == {"grid": 32, "harmonics": 6, "extra_outputs": 4,
                                     "extra_inputs": 0}  # fmt: skip
    res = run_cli("zoo", "study", str(zoo), "--json", "--quiet", "--no-figures", "--grid", "16",
                  "--extra-inputs", "2")  # fmt: skip
    assert res.code == 0, res.err
    opts = json.loads(res.out)
    assert opts["bound_options"] == {"grid": 16, "harmonics": 6, "extra_outputs": 4,
                                     "extra_inputs": 2}  # fmt: skip
    assert opts["n_bounds_below_actual"] == 0
    for r in opts["per_model"]:
        if r["nonvacuous_bounds"] is not None:
            saved = json.loads((zoo / "runs" / r["name"] / "analysis" / "bound.json").read_text())
            assert (saved["grid"], saved["extra_inputs"]) == (16, 2)
            assert r["max_bound"] == max(c["bound"] for c in saved["clusters"])
    before = (zoo / "study" / "study.json").read_bytes()
    for bad, says in ((["--grid", "3"], "even number"), (["--extra-inputs", "-1"], ">= 0")):
        res = run_cli("zoo", "study", str(zoo), "--quiet", *bad)
        assert res.code == 2 and says in res.err and "Traceback" not in res.err, bad
    assert (zoo / "study" / "study.json").read_bytes() == before


def _single_thread_run(seed: int, epochs: int):
    """What a Ray task (one thread) trains for this zoo member, as a plain run."""
    from quadlens.config import preset
    from quadlens.train import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = preset("pizza", p=23, d_model=32, n_heads=4, d_head=8, d_mlp=64, epochs=epochs,
                     lr=3e-3, checkpoint_every=200, seed=seed)  # fmt: skip
        return train(cfg, None, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)


def test_ray_zoo_stops_at_checkpoints_on_sigterm(tmp_path):
    """SIGTERM stops a Ray zoo as it stops a local one: the running tasks are cancelled, save
    their checkpoints at the step they reached and end before Ray shuts down (exit 143, the
    --resume hint, no crash report from Ray's driver, no half-written file); --resume ends
    with the models of uninterrupted runs, bit for bit."""
    pytest.importorskip("ray", reason="the Ray extra is not installed")
    from safetensors import safe_open

    # no periodic checkpoint before the end: a checkpoint is there only if a task saved it
    args = ["zoo", "train", "--seeds", "0-2", *ZOO_ARGS, "--epochs", "3000", "--checkpoint-every",
            "100000", "--backend", "ray"]  # fmt: skip
    zoo = tmp_path / "zoo"
    proc = _start_zoo(args, zoo, zoo / "runs" / "seed0000" / rundir.METRICS, timeout=180)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the zoo finished before the signal arrived")
    assert proc.returncode == 143 and "--resume" in err, err
    assert "Traceback" not in err and "SIGTERM received" not in err, err
    assert not [p for p in zoo.rglob("*") if p.name.endswith(".tmp")]
    ckpt = zoo / "runs" / "seed0000" / rundir.CHECKPOINT
    assert ckpt.exists() or (zoo / "runs" / "seed0000" / rundir.WEIGHTS).exists()
    if ckpt.exists():  # saved where the cancelled task stopped (at least epoch 200, logged)
        with safe_open(str(ckpt), "pt") as f:
            assert 200 <= int(f.metadata()["step"]) < 3000
    res = run_cli(*args, "--out", str(zoo), "--resume", "--json")
    assert res.code == 0, res.err
    for seed in range(3):
        ref = _single_thread_run(seed, 3000)
        got = _weights(zoo / "runs" / f"seed{seed:04d}")
        for name, param in ref.model.named_parameters():
            assert torch.equal(param.detach(), got[name]), (seed, name)


def test_zoo_through_a_local_ray_instance(tmp_path):
    """`--backend ray` starts a local Ray instance, trains each batch as a Ray task, and the
    run directories are the ones a single-threaded local run writes, bit for bit."""
    pytest.importorskip("ray", reason="the Ray extra is not installed")
    zoo = tmp_path / "zoo"
    res = run_cli("zoo", "train", "--seeds", "0-1", *ZOO_ARGS, "--epochs", "300", "--out",
                  str(zoo), "--backend", "ray", "--json")  # fmt: skip
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["n_trained_now"] == 2
    ref = _single_thread_run(1, 300)
    got = _weights(zoo / "runs" / "seed0001")
    for name, param in ref.model.named_parameters():
        assert torch.equal(param.detach(), got[name]), name
    assert data["models"][1]["min_margin"] == ref.eval.min_margin


@pytest.mark.parametrize("mix", [None, 0.0, 0.049, 0.05, 0.3])
def test_models_that_mix_key_frequencies_are_outliers(mix):
    """A model whose key-cluster neurons carry a second key frequency (frac_key_mixing >= 5%)
    is listed as an outlier, with the share; below that, or where the lens has no key cluster
    (None), it is not (everything else about the row is clean)."""
    row = {"applicable": True, "notes": [], "accuracy": 1.0, "min_margin": 10.0,
           "n_key_frequencies": 4, "frac_dominant": 1.0, "frac_psi_2phi": 1.0,
           "frac_key_mixing": mix, "fve_pizza_secondary": 0.98, "bound_over_actual": [1.5],
           "nonvacuous_bounds": True, "max_bound": 0.5, "max_actual": 0.3}  # fmt: skip
    reasons = outlier_reasons(row, fve_floor=0.9)
    if mix is not None and mix >= MIX_OUTLIER:
        assert reasons == [f"{mix:.0%} of key-cluster neurons carry a second key frequency (>= 5% "
                           "of their input power), which the one-frequency fit behind the closed "
                           "forms and the compact bounds does not describe"]  # fmt: skip
        (carried,) = outlier_reasons(row, fve_floor=0.9, extra_inputs=4)
        assert carried.endswith("which the closed forms do not describe (the compact bounds here "
                                "carry it: --extra-inputs 4)")  # fmt: skip
    else:
        assert reasons == [] == outlier_reasons(row, fve_floor=0.9, extra_inputs=4)


def test_mixing_figure_tool(tmp_path, capsys):
    """tools/mixing_figure.py groups a zoo's members by their key-frequency mixing and counts
    what the compact proofs achieve in each group; it refuses a zoo without a study."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))
    try:
        import mixing_figure
    finally:
        sys.path.pop(0)
    zoo = tmp_path / "zoo"
    assert mixing_figure.main([str(zoo), str(tmp_path / "m.png")]) == 2
    assert "zoo study" in capsys.readouterr().err
    members = [("a", 0.0, True, 1.0, 1.0, 0.9), ("b", 0.0, True, 0.5, 1.0, 0.7),
               ("c", 0.02, False, 1.0, 0.9, 0.2), ("d", 0.3, False, 0.1, 0.2, 0.0)]  # fmt: skip
    study = {"per_model": [{"name": n, "frac_key_mixing": m, "nonvacuous_bounds": nv}
                           for n, m, nv, *_ in members]}  # fmt: skip
    cert = {"per_model": [{"name": n, "certificates": [
        {"strategy": k, "certified_accuracy": v}
        for k, v in zip(("cluster", "interpolation", "quadrature"), vals, strict=True)]}
        for n, _, _, *vals in members]}  # fmt: skip
    for sub, data in (("study/study.json", study), ("certify/certify.json", cert)):
        (zoo / sub).parent.mkdir(parents=True)
        (zoo / sub).write_text(json.dumps(data))
    # seed 0's clusters at p = 59: k = 6 mixes in 24 = 4 k and 23 = -6 k (mod 59), harmonics
    # its fit carries (h = 1..6); k = 24 mixes in 23 and 25, which are not; k = 25 mixes none;
    # a cluster from before the per-cluster fields (no mixed_with) and a non-key one are left out
    clusters = [(6, True, 0.2, [24, 23], 0.81, 0.48, 0.19), (24, True, 0.62, [23, 25], 2.1, 0.98,
                1.37), (25, True, 0.0, [], 0.43, 0.26, 0.08), (23, True, 0.1, None, 0.7, 0.3, 0.3),
                (5, False, 0.0, [], 0.2, 0.1, 0.1)]  # fmt: skip
    (zoo / "runs" / "seed0000" / "analysis").mkdir(parents=True)
    (zoo / "runs" / "seed0000" / "analysis" / "analysis.json").write_text(json.dumps(
        {"p": 59, "clusters": [{"freq": k, "key": key, "frac_key_mixing": m, "mixed_with": w}
                               for k, key, m, w, *_ in clusters]}))  # fmt: skip
    (zoo / "runs" / "seed0000" / "analysis" / "bound.json").write_text(json.dumps(
        {"harmonics": 6, "clusters": [{"freq": k, "bound": b, "actual": a,
                                       "terms": {"input_residual": r}}
                                      for k, _, _, _, b, a, r in clusters]}))  # fmt: skip
    assert mixing_figure.main([str(zoo), str(tmp_path / "m.png")]) == 0
    out = capsys.readouterr().out
    assert "| none | 2 | 2 | 1 | 2 | 80.0% |" in out
    assert "| under 5% | 1 | 0 | 1 | 0 | 20.0% |" in out
    assert "| 5% or more | 1 | 0 | 0 | 0 | 0.0% |" in out
    assert "| no mixing | 0 | 1 | 1 | 0.43 | 0.26 | 0.08 |" in out
    assert "| mixes only harmonics the fit carries | >= 5% | 1 | 1 | 0.81 | 0.48 | 0.19 |" in out
    assert "| mixes another frequency | >= 5% | 1 | 0 | 2.10 | 0.98 | 1.37 |" in out
    assert out.count("| mixes ") == 2 and "under 5%" not in out.split("| key cluster")[1]
    assert (tmp_path / "m.png").stat().st_size > 0


def test_gpu_zoo_benchmark_runs_on_the_cpu(tmp_path, monkeypatch):
    """benchmarks/zoo_gpu.py, the prepared check of the GPU target, runs end to end (here on the
    CPU, with a few seeds and epochs): its pilots, the full run within the budget, and its JSON."""
    from benchmarks import zoo_gpu

    monkeypatch.chdir(tmp_path)  # (it writes benchmarks/out/zoo_gpu.json where it runs)
    res = zoo_gpu.main(["--device", "cpu", "--seeds", "2", "--pilot-epochs", "12", "--epochs",
                        "24", "--budget", "600", "--sequential-seeds", "1", "--agree-seeds", "1",
                        "--agree-epochs", "6", "--out", str(tmp_path / "o")])  # fmt: skip
    assert res["errors"] == {}
    assert res["agreement"]["max_rel_diff"] == 0.0  # on the CPU a batch keeps its bits
    assert res["full"]["epochs"] == 24 and res["full"]["models_at_100"] == 0  # (24 epochs)
    assert {"fixed_seconds", "ms_per_epoch", "full_seconds"} <= set(res["batched_pilot"])
    assert "batched_over_sequential" in res and res["floor"]["seconds"] > 0  # (no timing asserted)
    assert "aten::" in (tmp_path / "o" / "zoo_gpu_profile.txt").read_text()
    assert res["step"]["default_batch"] == 1 and res["step"]["step_bytes_estimate"] > 0
    saved = json.loads((tmp_path / "o" / "zoo_gpu.json").read_text())
    assert saved["full"] == res["full"] and (tmp_path / "benchmarks/out/zoo_gpu.json").is_file()


def test_default_batch_is_one_on_the_cpu_and_what_fits_on_a_gpu(monkeypatch):
    """--batch's default: 1 on the CPU; on a GPU (faked here: no GPU in the tests) a group's
    every model, up to what half the free memory holds at twice the estimated step footprint."""
    import torch

    from quadlens import zoo
    from quadlens.config import preset
    from quadlens.train import step_bytes

    cfg = preset("pizza")
    assert zoo.default_batch(cfg, "cpu", 152) == 1
    per = 2 * step_bytes(cfg)
    assert 15e6 < step_bytes(cfg) < 40e6  # the pizza recipe's step: ~22 MB a model
    monkeypatch.setattr(zoo, "resolve_device", lambda device: torch.device("cuda"))
    for free, n, want in ((80 * 2**30, 152, 152), (2 * 100 * per + 5, 152, 100),
                          (per, 152, 1), (80 * 2**30, 7, 7)):  # fmt: skip
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev, f=free: (f, 80 * 2**30))
        assert zoo.default_batch(cfg, "cuda", n) == want, (free, n)


def test_gpu_zoo_benchmark_records_a_failing_stage_and_goes_on(tmp_path, monkeypatch):
    from benchmarks import zoo_gpu

    def broken(*args: object) -> None:
        raise RuntimeError("CUDA out of memory (a stand-in)")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(zoo_gpu, "agreement", broken)
    res = zoo_gpu.main(["--device", "cpu", "--seeds", "1", "--pilot-epochs", "3", "--epochs",
                        "6", "--sequential-seeds", "1", "--out", str(tmp_path)])  # fmt: skip
    assert res["errors"] == {"agreement": "RuntimeError: CUDA out of memory (a stand-in)"}
    assert res["full"]["epochs"] == 6  # the stages after it ran
    assert json.loads((tmp_path / "zoo_gpu.json").read_text())["errors"] == res["errors"]


def test_off_the_cpu_a_sweeps_batches_share_a_schedule(tmp_path):
    """Off the CPU a batch is stacked with one optimizer, so a sweep over the learning rate or
    the weight decay is grouped per value there; on the CPU such members may share a batch."""
    import dataclasses

    from quadlens import zoo
    from quadlens.config import preset

    base = preset("pizza")
    cfgs = [dataclasses.replace(base, train=dataclasses.replace(base.train, seed=s, **kw))
            for s, kw in ((0, {}), (1, {}), (2, {"lr": 2e-3}), (3, {"weight_decay": 2.0}))]
    mem = zoo.members([0, 1, 2, 3], {})
    cpu = {zoo._group_key(tmp_path, m, c, False) for m, c in zip(mem, cfgs, strict=True)}
    gpu = [zoo._group_key(tmp_path, m, c, True) for m, c in zip(mem, cfgs, strict=True)]
    assert len(cpu) == 1 and gpu[0] == gpu[1] and len(set(gpu)) == 3
