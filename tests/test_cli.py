"""The command line end to end on tiny configurations, and every bad input of the issue."""

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
from tests.conftest import TINY_ARGS, run_cli


def test_train_eval_info(tiny_run):
    files = {p.name for p in tiny_run.iterdir()} - {"analysis"}  # other tests analyse it
    assert files == {rundir.CONFIG, rundir.WEIGHTS, rundir.METRICS, rundir.ENVIRONMENT}
    res = run_cli("eval", str(tiny_run), "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert set(data) == {"accuracy", "min_margin", "n_inputs"}
    assert data["accuracy"] == 1.0 and data["n_inputs"] == 23 * 23 and data["min_margin"] > 0
    info = json.loads(run_cli("info", str(tiny_run), "--json").out)
    assert info["eval"] == data and info["config"]["model"]["p"] == 23
    assert info["final_metrics"]["epoch"] == 1000
    text = run_cli("info", str(tiny_run)).out
    assert "accuracy    100.00%" in text
    env = json.loads((tiny_run / rundir.ENVIRONMENT).read_text())
    assert env["command"][:2] == ["quadlens", "train"]


def test_train_json_output(tmp_path):
    res = run_cli("train", *TINY_ARGS, "--epochs", "100", "--out", str(tmp_path / "r"), "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["epochs"] == 100 and data["n_inputs"] == 529 and data["run"] == str(tmp_path / "r")


def test_import_zhong_cli(tmp_path, zhong_paths):
    out = tmp_path / "zhong"
    res = run_cli("import", "zhong", *map(str, zhong_paths), "--out", str(out), "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["accuracy"] == 1.0
    ev = json.loads(run_cli("eval", str(out), "--json").out)
    assert ev["accuracy"] == 1.0 and ev["n_inputs"] == 3481
    assert "imported (zhong)" in run_cli("info", str(out)).out


def test_import_tl_cli(tmp_path, tiny_run):
    from quadlens.rundir import load_run
    from tests.test_imports import tl_state_dict

    _, model = load_run(tiny_run)
    torch.save(
        {"model": tl_state_dict(model), "model_config": {"act_fn": "relu"}}, tmp_path / "m.pth"
    )
    out = tmp_path / "tl"
    res = run_cli(
        "import", "tl", str(tmp_path / "m.pth"), "--attention-rate", "1", "--out", str(out)
    )
    assert res.code == 0, res.err
    assert run_cli("eval", str(out), "--json").out == run_cli("eval", str(tiny_run), "--json").out


def _assert_error(res, pattern: str) -> None:
    assert res.code == 2, (res.code, res.out, res.err)
    assert "Traceback" not in res.err
    lines = [ln for ln in res.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 or res.err.startswith("usage:"), res.err
    import re

    assert re.search(pattern, res.err), res.err


@pytest.mark.parametrize(
    "args,pattern",
    [
        (["--p", "2"], r"p must be an integer >= 3"),
        (["--n-heads", "3"], r"n_heads \* d_head must equal d_model"),
        (["--attention-rate", "1.5"], r"attention_rate must be a number in \[0, 1\]"),
        (["--attention-rate", "-0.1"], r"attention_rate must be a number in \[0, 1\]"),
        (["--activation", "swish"], r"unknown activation 'swish'"),
        (["--epochs", "-5"], r"epochs must be an integer >= 0"),
        (["--lr", "nan"], r"lr must be a finite number"),
        (["--train-frac", "0"], r"train_frac must be in \(0, 1\]"),
    ],
)
def test_invalid_config(tmp_path, args, pattern):
    out = tmp_path / "r"
    _assert_error(run_cli("train", *TINY_ARGS, *args, "--out", str(out)), pattern)
    assert not out.exists()  # nothing written


def test_existing_output_directory_is_refused_and_left_intact(tmp_path, tiny_run):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    _assert_error(run_cli("train", *TINY_ARGS, "--out", str(out)), r"already exists.*--overwrite")
    assert (out / "precious.txt").read_text() == "keep me"
    _assert_error(
        run_cli("import", "zhong", "x.pt", "y.json", "--out", str(out)), r"already exists"
    )
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]
    # --overwrite replaces it
    res = run_cli("train", *TINY_ARGS, "--epochs", "20", "--out", str(out), "--overwrite")
    assert res.code == 0 and not (out / "precious.txt").exists()


def test_bad_run_directories(tmp_path, tiny_run):
    _assert_error(run_cli("eval", str(tmp_path / "nope")), r"no such run directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_error(run_cli("info", str(empty)), r"not a quadlens run directory")
    # a corrupt weights file, and a weights file from another model
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_run, bad)
    (bad / rundir.WEIGHTS).write_bytes(b"\x00garbage")
    _assert_error(run_cli("eval", str(bad)), r"not a readable safetensors file")
    (bad / rundir.CONFIG).write_text("{not json")
    _assert_error(run_cli("eval", str(bad)), r"not valid JSON")
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    cfg = json.loads((other / rundir.CONFIG).read_text())
    cfg["model"]["d_mlp"] = 32
    (other / rundir.CONFIG).write_text(json.dumps(cfg))
    _assert_error(run_cli("eval", str(other)), r"W_in has shape \(32, 64\), the config needs")


def test_bad_checkpoints_cli(tmp_path, zhong_paths):
    out = tmp_path / "o"
    _assert_error(
        run_cli(
            "import", "zhong", str(tmp_path / "missing.pt"), str(zhong_paths[1]), "--out", str(out)
        ),
        r"no such file",
    )
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(zhong_paths[0].read_bytes()[:1000])
    _assert_error(
        run_cli("import", "zhong", str(corrupt), str(zhong_paths[1]), "--out", str(out)),
        r"not a readable PyTorch checkpoint",
    )
    foreign = tmp_path / "foreign.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, foreign)
    _assert_error(
        run_cli("import", "tl", str(foreign), "--attention-rate", "1", "--out", str(out)),
        r"not a TransformerLens HookedTransformer checkpoint",
    )
    _assert_error(
        run_cli("import", "tl", str(foreign), "--attention-rate", "2", "--out", str(out)),
        r"not a TransformerLens|attention_rate",
    )
    assert not out.exists()


def test_resume_refuses_conflicting_options(tmp_path, tiny_run):
    _assert_error(run_cli("train", "--resume", "--out", str(tiny_run)), r"already complete")
    _assert_error(run_cli("train", "--resume"), r"--resume needs --out")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_then_resume_matches_uninterrupted(tmp_path, sig):
    """A real SIGINT (Ctrl-C) or SIGTERM (`kill PID`) to `quadlens train`, then --resume: same
    weights as an uninterrupted run; the exit code is 128 + the signal's number."""
    args = [*TINY_ARGS, "--epochs", "3000", "--checkpoint-every", "1000"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert run_cli("train", *args, "--out", str(full)).code == 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "quadlens", "train", *args, "--out", str(part)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while not (part / rundir.METRICS).exists() or not (part / rundir.METRICS).read_text():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("training finished before the interrupt arrived (machine too fast)")
    assert proc.returncode == 128 + sig, err
    assert "--resume" in err and "Traceback" not in err
    assert (part / rundir.CHECKPOINT).exists()
    assert run_cli("train", *args, "--out", str(part), "--resume").code == 0
    a, _ = rundir.load_tensors(full / rundir.WEIGHTS)
    b, _ = rundir.load_tensors(part / rundir.WEIGHTS)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (full / rundir.METRICS).read_text() == (part / rundir.METRICS).read_text()


def test_module_entry_point_and_help():
    res = subprocess.run(
        [sys.executable, "-m", "quadlens", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "examples:" in res.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "quadlens", "eval", "/nonexistent/run"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "quadlens: error: /nonexistent/run: no such run directory"


def test_fixture_dir_is_next_to_repo():
    assert (Path(__file__).resolve().parents[2] / "shared").is_dir()


def test_unavailable_device_fails_before_writing(tmp_path):
    import torch as _torch

    if _torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "r"
    _assert_error(
        run_cli("train", *TINY_ARGS, "--device", "cuda", "--out", str(out)),
        r"CUDA is not available",
    )
    assert not out.exists()


@pytest.mark.parametrize("args,pattern", [(["--workers", "0"], r"--workers must be >= 1"),
                                          (["--batch", "0"], r"--batch must be >= 1")])
def test_invalid_zoo_options(tmp_path, args, pattern):
    out = tmp_path / "zoo"
    _assert_error(run_cli("zoo", "train", "--seeds", "0-1", *TINY_ARGS, *args, "--out", str(out)),
                  pattern)  # fmt: skip
    assert not out.exists()  # nothing written
