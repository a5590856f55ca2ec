"""Bad input found by trying the CLI as a researcher would (2026-12-02): each case gives one line
on stderr, exit code 2 and no traceback, and leaves what was there as it was."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from quadlens import rundir
from quadlens.cli import main
from tests.conftest import TINY_ARGS, run_cli

# the tiny recipe at a learning rate that diverges within a few epochs
DIVERGING = [*TINY_ARGS, "--epochs", "300", "--lr", "1e4"]


def _tree(path: Path) -> dict[str, str]:
    """Every file under path and a hash of its bytes."""
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file()}  # fmt: skip


def _one_line_error(res, pattern: str) -> None:
    assert res.code == 2, (res.code, res.err)
    assert "Traceback" not in res.err
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and pattern in lines[0], res.err


def test_resume_with_nothing_to_resume_refuses(tmp_path):
    """--resume in a directory that holds no run (or none at all) used to start the default
    10,000-epoch preset there."""
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "x.txt").write_text("hi")
    _one_line_error(run_cli("train", "--resume", "--out", str(foreign)), "nothing to resume")
    assert sorted(p.name for p in foreign.iterdir()) == ["x.txt"]
    _one_line_error(run_cli("train", "--resume", "--out", str(tmp_path / "none")),
                    "nothing to resume")  # fmt: skip
    assert not (tmp_path / "none").exists()


def test_diverged_training_leaves_no_half_written_run(tmp_path, tiny_run):
    """A run that diverges leaves nothing behind; with --overwrite the run it was to replace is
    put back byte for byte."""
    res = run_cli("train", *DIVERGING, "--out", str(tmp_path / "new"))
    _one_line_error(res, "diverged")
    assert "new" in res.err and "--lr" in res.err
    assert not (tmp_path / "new").exists()
    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    before = _tree(old)
    _one_line_error(run_cli("train", *DIVERGING, "--overwrite", "--out", str(old)), "diverged")
    assert _tree(old) == before
    assert [p.name for p in tmp_path.iterdir() if "replaced" in p.name] == []
    # and --overwrite that succeeds replaces it
    res = run_cli("train", *TINY_ARGS, "--epochs", "20", "--overwrite", "--out", str(old))
    assert res.code == 0, res.err
    assert json.loads((old / rundir.CONFIG).read_text())["train"]["epochs"] == 20
    assert not (old / "analysis").exists()


@pytest.mark.parametrize("how", ["ctrl-c", "resumable failure"])
def test_overwrite_interrupted_keeps_the_directory_it_was_replacing(tmp_path, capsys, how):
    """--overwrite interrupted (or failing once the new output is worth resuming) keeps the new
    output for --resume; the directory it was replacing used to be deleted then, though nothing
    had yet replaced it: it is now kept, byte for byte, as OUT.previous, and stderr says so."""
    out = tmp_path / "zoo"
    out.mkdir()
    (out / "old.txt").write_text("the old zoo")
    (tmp_path / "zoo.previous").mkdir()  # taken: the next free name is used
    before = _tree(out)
    exc = KeyboardInterrupt if how == "ctrl-c" else RuntimeError
    with pytest.raises(exc), rundir.fresh_out_dir(out, overwrite=True, resumable=lambda: True):
        (out / "new.txt").write_text("half of the new zoo")
        raise exc()
    assert _tree(out) == {"new.txt": _tree(out)["new.txt"]}
    assert _tree(tmp_path / "zoo.previous-2") == before
    assert f"kept as {tmp_path / 'zoo.previous-2'}" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if "replaced" in p.name] == []
    # a failure with nothing worth resuming still puts the old directory back
    with pytest.raises(RuntimeError), rundir.fresh_out_dir(out, overwrite=True,
                                                            resumable=lambda: False):
        (out / "other.txt").write_text("x")
        raise RuntimeError
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]


def test_output_under_a_file_is_a_message(tmp_path):
    (tmp_path / "afile").write_text("x")
    _one_line_error(run_cli("train", *TINY_ARGS, "--out", str(tmp_path / "afile" / "run")),
                    "Not a directory")  # fmt: skip


def test_truncated_metrics_line_is_skipped(tmp_path):
    """A line of metrics.jsonl cut short (a killed process, a full disk) must not stop info,
    report or --resume; --resume rewrites the file without it and ends as an uninterrupted
    run does."""
    args = [*TINY_ARGS, "--epochs", "400"]
    run = tmp_path / "run"
    assert run_cli("train", *args, "--out", str(run)).code == 0
    weights, metrics = (run / rundir.WEIGHTS).read_bytes(), (run / rundir.METRICS).read_text()
    with open(run / rundir.METRICS, "a") as f:
        f.write('{"epoch": 500, "train_lo')
    res = run_cli("info", str(run), "--json")
    assert res.code == 0, res.err
    assert "400" in res.out
    assert run_cli("report", str(run)).code == 0
    part = tmp_path / "part"
    assert _train_then_stop_at(part, args, 200) == 130
    assert (part / rundir.CHECKPOINT).is_file()
    with open(part / rundir.METRICS, "a") as f:
        f.write('{"epoch": 300, "train_lo')
    res = run_cli("train", "--resume", "--out", str(part))
    assert res.code == 0, res.err
    assert (part / rundir.WEIGHTS).read_bytes() == weights
    assert (part / rundir.METRICS).read_text() == metrics


def _train_then_stop_at(out: Path, args: list[str], epoch: int) -> int:
    """Train with args into out, stopped by a SIGINT once `epoch` steps are done (it lands
    between steps, as Ctrl-C does)."""
    import signal

    from quadlens.optim import AdamW

    real = AdamW.step_all
    count = {"n": 0}

    def step_all(opts, lrs):
        real(opts, lrs)
        count["n"] += 1
        if count["n"] == epoch:
            signal.raise_signal(signal.SIGINT)

    AdamW.step_all = staticmethod(step_all)  # type: ignore[method-assign]
    try:
        return main(["train", *args, "--out", str(out)])
    finally:
        AdamW.step_all = staticmethod(real)  # type: ignore[method-assign]


@pytest.mark.parametrize("args, pattern", [
    (["--seeds", "1-"], "bad --seeds"),
    (["--seeds", "0-1000000000"], "more than"),
    (["--seeds", "0", "--d-mlp", "64,"], "bad --d-mlp"),
    (["--seeds", "0", "--attention-rate", "1,1"], "same run name"),
    (["--seeds", "0", "--weight-decay", "1.0000001,1.0000002"], "same run name"),
])  # fmt: skip
def test_zoo_sweeps_that_cannot_be_run(tmp_path, args, pattern):
    zoo = tmp_path / "zoo"
    _one_line_error(run_cli("zoo", "train", *TINY_ARGS, *args, "--out", str(zoo)), pattern)
    assert not zoo.exists()


def test_zoo_resume_into_a_foreign_directory(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    res = run_cli("zoo", "train", "--seeds", "0", *TINY_ARGS, "--resume", "--out", str(tmp_path))
    _one_line_error(res, "nothing to resume")


@pytest.mark.parametrize("args, pattern", [
    (["--grid", "0"], "--grid"),
    (["--grid", str(10**6)], "must be at most 8192"),  # ran for minutes: the cost is linear
    (["--harmonics", "-1"], "--harmonics"),
    (["--strategy", "brute", "--all-strategies"], "not both"),
    (["--strategy", "foo"], "invalid choice"),
])  # fmt: skip
def test_certify_options_refused_before_any_work(tiny_run, args, pattern):
    """Refused before the progress bar starts or the truth is computed: one line."""
    before = _tree(tiny_run)
    _one_line_error(run_cli("certify", str(tiny_run), "--check", *args), pattern)
    assert _tree(tiny_run) == before


def test_argparse_errors_are_one_line():
    _one_line_error(run_cli("train", "--p", "abc"), "invalid int value")
    _one_line_error(run_cli("train", "--preset", "nope"), "invalid choice")


def test_option_ranges(tiny_run, tmp_path):
    _one_line_error(run_cli("masks", str(tiny_run), "--regions", "-1"), "--regions")
    _one_line_error(run_cli("zoo", "study", str(tmp_path), "--workers", "0"), "--workers")
    _one_line_error(run_cli("bound", str(tiny_run), "--grid", str(2**13 + 2)), "at most 8192")


def test_dead_mlp_is_explained_not_crashed(tmp_path, tiny_run):
    """Every neuron dead: the approximants refuse with a reason; the lens says so instead of
    reporting FVE 1.0 for nothing explained."""
    dead = tmp_path / "dead"
    shutil.copytree(tiny_run, dead)
    tensors, meta = rundir.load_tensors(dead / rundir.WEIGHTS)
    tensors["b_in"] = torch.full_like(tensors["b_in"], -1000.0)
    rundir.save_tensors(dead / rundir.WEIGHTS, tensors, meta)
    _one_line_error(run_cli("approx", str(dead)), "do not vary")
    res = run_cli("analyze", str(dead), "--json")
    assert res.code == 0, res.err
    an = json.loads(res.out)
    assert an["fve"]["pizza"] is None and an["relu_split"]["linear_frac"] is None
    assert any("every neuron is dead" in n for n in an["notes"])
    assert not any("of live neurons" in n for n in an["notes"])  # (there are none)


def test_lens_on_an_all_zero_model():
    """No input power at all: the spectrum was 0/0 (NaN)."""
    import math

    import quadlens as ql
    from tests.conftest import TINY_MODEL

    model = ql.Model(TINY_MODEL, seed=0)
    with torch.no_grad():
        for q in model.parameters():
            q.zero_()
    an = ql.analyze(model)
    assert all(math.isfinite(x) for x in an.input_spectrum)
    assert any("every neuron is dead" in n for n in an.notes)


def test_bilinear_max_k_past_the_eigenvectors(tmp_path):
    run = tmp_path / "quad"
    assert run_cli("train", *TINY_ARGS, "--activation", "quadratic", "--epochs", "50",
                   "--out", str(run)).code == 0  # fmt: skip
    res = run_cli("bilinear", str(run), "--max-k", "100000", "--json")
    assert res.code == 0, res.err
    assert len(json.loads(res.out)["topk_accuracy"]) <= 2 * 23 + 2
    _one_line_error(run_cli("bilinear", str(run), "--max-k", "-1"), "--max-k")


def test_certify_a_sweep_skips_the_members_it_does_not_fit(tmp_path):
    """A clock/pizza sweep: the constant-attention member is certified, the softmax one is
    listed as skipped with the reason (it used to stop the whole zoo)."""
    zoo = tmp_path / "zoo"
    res = run_cli("zoo", "train", *TINY_ARGS, "--epochs", "50", "--seeds", "0",
                  "--attention-rate", "0,1", "--workers", "1", "--out", str(zoo))  # fmt: skip
    assert res.code == 0, res.err
    res = run_cli("certify", str(zoo), "--strategy", "brute", "--json", "--no-figures")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["n_models"] == 1 and [m["name"] for m in out["per_model"]] == [
        "attention_rate1-seed0000"]
    assert [s["name"] for s in out["skipped"]] == ["attention_rate0-seed0000"]
    assert "not constant" in out["skipped"][0]["reason"]


@pytest.mark.parametrize("extra", [["--workers", "1"], ["--workers", "1", "--batch", "2"]])
def test_a_diverging_zoo_member_does_not_stop_the_zoo(tmp_path, extra):
    """The member that diverges is marked and reported; the other finishes with the weights it
    gets in a zoo of its own (also when both share a batch); --resume leaves both as they are."""
    args = [*TINY_ARGS, "--epochs", "200", "--seeds", "0", *extra]
    zoo = tmp_path / "zoo"
    res = run_cli("zoo", "train", *args, "--lr", "3e-3,1e4", "--out", str(zoo), "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert [m["name"] for m in out["models"]] == ["lr0.003-seed0000"]
    assert [d["name"] for d in out["diverged"]] == ["lr10000-seed0000"]
    assert "diverged" in out["diverged"][0]["error"]
    alone = tmp_path / "alone"
    assert run_cli("train", *TINY_ARGS, "--epochs", "200", "--out", str(alone)).code == 0
    good = zoo / "runs" / "lr0.003-seed0000" / rundir.WEIGHTS
    assert good.read_bytes() == (alone / rundir.WEIGHTS).read_bytes()
    before = _tree(zoo)
    res = run_cli("zoo", "train", *args, "--lr", "3e-3,1e4", "--out", str(zoo), "--resume",
                  "--json")  # fmt: skip
    assert res.code == 0, res.err
    assert json.loads(res.out)["n_trained_now"] == 0
    assert _tree(zoo) == before
    if "--batch" not in extra:  # (once is enough) study lists it as diverged, not unfinished
        res = run_cli("zoo", "study", str(zoo), "--json", "--no-figures", "--workers", "1")
        assert res.code == 0, res.err
        study = json.loads(res.out)
        assert study["n_models"] == 1 and study["n_unfinished"] == 0
        assert study["diverged"] == ["lr10000-seed0000"]
        bad = zoo / "runs" / "lr10000-seed0000"
        _one_line_error(run_cli("info", str(bad)), "its training diverged")
        (bad / rundir.CHECKPOINT).write_bytes(b"")  # (a diverged member is not "interrupted")
        _one_line_error(run_cli("info", str(bad)), "its training diverged")


def test_json_is_strict_for_a_model_that_overflows(tmp_path, tiny_run):
    """Weights so large that float32 logits overflow: --json still prints strict JSON (null, not
    NaN, which no JSON parser but Python's accepts), and the analyses read the float64 model
    (`masks` used to crash drawing the NaN shares of its float32 one)."""
    huge = tmp_path / "huge"
    shutil.copytree(tiny_run, huge)
    tensors, meta = rundir.load_tensors(huge / rundir.WEIGHTS)
    rundir.save_tensors(huge / rundir.WEIGHTS, {k: v * 1e18 for k, v in tensors.items()}, meta)

    def strict(text: str) -> dict:
        def refuse(name: str) -> None:
            raise AssertionError(f"{name} in JSON")

        return json.loads(text, parse_constant=refuse)

    for command in ("eval", "info", "analyze", "masks", "approx", "compare"):
        res = run_cli(command, str(huge), "--json")
        assert res.code == 0, (command, res.err)
        strict(res.out)
    # (the float32 forward overflows; eval scores the float64 one: a finite, huge margin)
    assert abs(strict(run_cli("eval", str(huge), "--json").out)["min_margin"]) > 1e30


class _CountingBar:
    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int) -> None:
        self.n += n

    def set_postfix(self, refresh: bool = False, **kw: str) -> None:
        pass


def test_a_diverging_batch_member_is_counted_once_on_the_zoo_bar(tmp_path):
    """A batch that diverges trains on member by member from its checkpoints; the zoo's bar
    used to count those epochs again and never the diverged member's untrained ones (309 of
    600 here). It now ends exactly at the model-epochs the batch stands for."""
    from quadlens.zoo import _train_members
    from tests.conftest import tiny

    cfgs = [tiny(epochs=300, lr=3e-3), tiny(epochs=300, lr=1e4)]
    for run in ("good", "bad"):
        (tmp_path / run).mkdir()
    bar = _CountingBar()
    evals = _train_members(tmp_path, cfgs, ["good", "bad"], "cpu", None, bar)
    assert evals[0] is not None and evals[1] is None
    assert (tmp_path / "bad" / "diverged.json").is_file()
    assert bar.n == 600


def test_info_and_report_on_an_interrupted_run(tmp_path):
    """`info` on an interrupted run used to stop at "no weights"; it now reports the epoch its
    checkpoint holds, scores that checkpoint and says how to continue. `report` builds and
    warns (page and stderr) that there are no final weights."""
    run = tmp_path / "part"
    assert _train_then_stop_at(run, [*TINY_ARGS, "--epochs", "400"], 200) == 130
    _, meta = rundir.load_tensors(run / rundir.CHECKPOINT)
    res = run_cli("info", str(run), "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["status"] == "interrupted" and out["epoch"] == int(meta["step"])
    assert out["epochs_wanted"] == 400 and 0 <= out["eval"]["accuracy"] <= 1
    res = run_cli("info", str(run))
    assert f"interrupted at epoch {meta['step']} of 400" in res.out
    assert f"quadlens train --resume --out {run}" in res.out
    res = run_cli("report", str(run))
    assert res.code == 0 and "warning" in res.err and "--resume" in res.err
    assert "Warning" in (run / "report" / "report.md").read_text()
    assert run_cli("train", "--resume", "--out", str(run)).code == 0
    out = json.loads(run_cli("info", str(run), "--json").out)
    assert out["status"] == "finished" and out["epoch"] == 400
    res = run_cli("report", str(run))
    assert res.code == 0 and "warning" not in res.err


def test_report_warns_about_unreadable_weights(tmp_path, tiny_run):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / rundir.WEIGHTS).write_bytes(b"not safetensors")
    res = run_cli("report", str(run))
    assert res.code == 0 and "not a readable safetensors file" in res.err
    (run / rundir.WEIGHTS).unlink()
    res = run_cli("report", str(run))
    assert res.code == 0 and "no weights.safetensors" in res.err


def test_weights_copied_from_another_run_are_refused(tmp_path, tiny_run):
    """The weights file carries the config it was saved with; one that disagrees with
    config.json (weights copied from another seed's run) used to load as if it were this run's."""
    other = tmp_path / "other"
    assert run_cli("train", *TINY_ARGS, "--seed", "1", "--epochs", "100",
                   "--out", str(other)).code == 0  # fmt: skip
    shutil.copy(tiny_run / rundir.WEIGHTS, other / rundir.WEIGHTS)
    _one_line_error(run_cli("eval", str(other)), "different config")


def test_eval_falls_back_to_float64_where_float32_overflows(tiny_run):
    """Weights ~1e18 too large overflow the float32 forward (eval said 0%); the same function
    in float64, as `certify --check` computes the truth, is scored instead."""
    import copy

    from quadlens.evaluate import evaluate

    _, model = rundir.load_run(tiny_run)
    big = copy.deepcopy(model)
    with torch.no_grad():
        for p in big.parameters():
            p.mul_(1e18)
    ev64 = evaluate(copy.deepcopy(big).double())
    ev = evaluate(big)
    assert ev.accuracy == ev64.accuracy and ev.min_margin == ev64.min_margin
    assert ev.accuracy > 0.5  # (the float32 forward's NaNs scored 0%)


@pytest.mark.parametrize("command", ["masks", "approx"])
def test_no_figures(tmp_path, tiny_run, command):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.rmtree(run / "analysis", ignore_errors=True)
    res = run_cli(command, str(run), "--no-figures", "--json")
    assert res.code == 0, res.err
    assert (run / "analysis" / f"{command}.json").is_file()
    assert not list((run / "analysis").glob("*.png"))


@pytest.mark.parametrize("command", [["zoo", "study"], ["certify"]])
def test_a_corrupt_zoo_member_is_named_before_any_work(tmp_path, command):
    """`zoo study` and `certify` on a zoo with an unreadable member stopped midway, the error
    glued to the progress bar; they now refuse up front, naming the member and the fix."""
    zoo = tmp_path / "zoo"
    assert run_cli("zoo", "train", *TINY_ARGS, "--epochs", "100", "--seeds", "0-1",
                   "--workers", "1", "--out", str(zoo)).code == 0  # fmt: skip
    (zoo / "runs" / "seed0001" / rundir.WEIGHTS).write_bytes(b"garbage")
    before = _tree(zoo)
    res = run_cli(*command, str(zoo))
    _one_line_error(res, "1 member cannot be read (seed0001)")
    assert "zoo train --resume" in res.err
    assert _tree(zoo) == before


def test_zoo_overwrite_puts_the_old_zoo_back_when_training_fails(tmp_path):
    """`zoo train --overwrite` deleted the old zoo before anything was checked: a bad --batch,
    or a new zoo whose every member diverged, lost it. It is now set aside and put back."""
    zoo = tmp_path / "zoo"
    args = [*TINY_ARGS, "--epochs", "100", "--seeds", "0-1", "--workers", "1"]
    assert run_cli("zoo", "train", *args, "--out", str(zoo)).code == 0
    before = _tree(zoo)
    _one_line_error(run_cli("zoo", "train", *args, "--out", str(zoo), "--overwrite",
                            "--batch", "0"), "--batch must be >= 1")  # fmt: skip
    assert _tree(zoo) == before
    _one_line_error(run_cli("zoo", "train", *args, "--out", str(zoo), "--overwrite",
                            "--lr", "1e4"), "every member diverged")  # fmt: skip
    assert _tree(zoo) == before
    assert not [p for p in tmp_path.iterdir() if p.name != "zoo"]  # nothing set aside is left
    res = run_cli("zoo", "train", *args, "--out", str(zoo), "--overwrite", "--epochs", "50",
                  "--json")  # fmt: skip
    assert res.code == 0 and json.loads(res.out)["n_trained_now"] == 2
    _one_line_error(run_cli("zoo", "train", *args, "--out", str(zoo), "--overwrite",
                            "--resume"), "not both")  # fmt: skip


def test_zoo_resume_with_nothing_to_resume_refuses(tmp_path):
    """It used to start a new zoo (with the paper's preset, minutes of training)."""
    none = tmp_path / "none"
    _one_line_error(run_cli("zoo", "train", *TINY_ARGS, "--seeds", "0", "--out", str(none),
                            "--resume"), "nothing to resume")  # fmt: skip
    assert not none.exists()


def test_an_unknown_option_is_reported_by_its_command():
    res = run_cli("train", "--bogus")
    _one_line_error(res, "quadlens train: error: unrecognized arguments: --bogus")
    assert "quadlens train --help" in res.err
    _one_line_error(run_cli("zoo", "study", "somewhere", "--bogus"),
                    "quadlens zoo study: error: unrecognized arguments: --bogus")  # fmt: skip


@pytest.mark.parametrize("command", [["zoo", "study"], ["certify"]])
def test_a_zoo_with_no_finished_member_is_refused(tmp_path, command):
    """It used to print an empty table and exit 0."""
    zoo = tmp_path / "zoo"
    assert run_cli("zoo", "train", *TINY_ARGS, "--epochs", "100", "--seeds", "0",
                   "--workers", "1", "--out", str(zoo)).code == 0  # fmt: skip
    (zoo / "runs" / "seed0000" / rundir.WEIGHTS).unlink()
    _one_line_error(run_cli(*command, str(zoo)), "no finished member")


def test_analyze_where_the_view_does_not_apply_fills_no_numbers(tmp_path):
    """n_dead and frac_dominant were 0 there, which read as measurements."""
    run = tmp_path / "clock"
    assert run_cli("train", *TINY_ARGS, "--epochs", "50", "--attention-rate", "0",
                   "--out", str(run)).code == 0  # fmt: skip
    res = run_cli("analyze", str(run), "--json", "--no-figures")
    assert res.code == 0, res.err
    an = json.loads(res.out)
    assert an["applicable"] is False
    assert an["n_dead"] is None and an["frac_dominant"] is None


def test_a_zoo_that_fails_after_members_finished_keeps_them(tmp_path, monkeypatch):
    """A failure late in a zoo (here an OSError once the members are trained, as a full disk
    would give) must not delete the members that finished: they are kept for --resume."""
    from quadlens import zoo as zoo_mod

    real = zoo_mod.train_zoo

    def then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zoo_mod, "train_zoo", then_fail)
    zoo = tmp_path / "zoo"
    args = [*TINY_ARGS, "--epochs", "50", "--seeds", "0", "--workers", "1", "--out", str(zoo)]
    _one_line_error(run_cli("zoo", "train", *args), "No space left on device")
    assert (zoo / "runs" / "seed0000" / rundir.WEIGHTS).is_file()
    monkeypatch.setattr(zoo_mod, "train_zoo", real)
    res = run_cli("zoo", "train", *args, "--resume", "--json")
    assert res.code == 0 and json.loads(res.out)["n_trained_now"] == 0


# --- the Python API, as a notebook would call it (a QA pass, 2026-12-02) ---


def test_api_analyses_say_what_to_pass_instead_of_a_path(tiny_run):
    """A run's path (the CLI's argument), or load_run's (config, model) tuple, fell into an
    AttributeError deep inside; None too."""
    import quadlens as ql

    for f in (ql.evaluate, ql.circuit, ql.analyze, ql.bounds, ql.certificate):
        with pytest.raises(ql.QuadlensError, match=r"load_run\(path\)\[1\]"):
            f(str(tiny_run))
        with pytest.raises(ql.QuadlensError, match="tuple"):
            f(ql.load_run(tiny_run))
        with pytest.raises(ql.QuadlensError, match="expected a quadlens Model, got a NoneType"):
            f(None)


def test_api_refuses_a_model_with_non_finite_parameters(tiny_run):
    """evaluate said 0% (min margin nan), bounds gave finite numbers for a model whose every
    logit is NaN, and certificate reported sound=False, which reads as a soundness bug."""
    import quadlens as ql

    _, model = ql.load_run(tiny_run)
    with torch.no_grad():
        model.W_in[0, 0] = float("nan")
    for f in (ql.evaluate, ql.analyze, ql.bounds, ql.certificate):
        with pytest.raises(ql.QuadlensError, match="W_in is not finite"):
            f(model)


def test_api_analyses_read_the_float64_model_where_float32_overflows(tiny_run):
    import copy

    import quadlens as ql

    _, model = ql.load_run(tiny_run)
    big = copy.deepcopy(model)
    with torch.no_grad():
        for q in big.parameters():
            q.mul_(1e12)
    an, an64 = ql.analyze(big), ql.analyze(copy.deepcopy(big).double())
    assert an.accuracy == an64.accuracy > 0.5 and an.key_frequencies == an64.key_frequencies
    assert an.key_frequencies  # (the float32 model's NaN logits gave none)
    assert ql.bounds(big, check=False).clusters


def test_api_train_refuses_to_write_over_a_run(tmp_path, tiny_run):
    """train() into a finished run replaced it silently; two models of a batch given one
    directory interleaved their metrics; a str path failed with a TypeError."""
    import quadlens as ql
    from tests.conftest import tiny

    before = _tree(tiny_run)
    with pytest.raises(ql.QuadlensError, match="not empty"):
        ql.train(tiny(epochs=20), str(tiny_run), progress=False)
    with pytest.raises(ql.QuadlensError, match="already complete"):
        ql.train(tiny(epochs=20), tiny_run, progress=False, resume=True)
    with pytest.raises(ql.QuadlensError, match="not a directory"):
        ql.train(tiny(epochs=20), tiny_run / rundir.CONFIG, progress=False)
    assert _tree(tiny_run) == before
    with pytest.raises(ql.QuadlensError, match="same run directory"):
        ql.train_batch([tiny(epochs=20), tiny(epochs=20, seed=1)], [tmp_path / "d", tmp_path / "d"])
    with pytest.raises(ql.QuadlensError, match="expected a RunConfig"):
        ql.train(tiny().model)
    res = ql.train(tiny(epochs=20), str(tmp_path / "new"), progress=False)  # a str is a path
    assert res.epochs_run == 20 and (tmp_path / "new" / rundir.WEIGHTS).is_file()


def test_api_options_and_imports_are_checked(tmp_path, tiny_run):
    import quadlens as ql

    _, model = ql.load_run(tiny_run)
    for kw in ({"grid": "32"}, {"harmonics": 2.5}, {"extra_outputs": 1.5}):
        with pytest.raises(ql.QuadlensError, match="must be an integer"):
            ql.bounds(model, **kw)
    with pytest.raises(ql.QuadlensError, match="true margins"):
        ql.certificate(model, "brute", check=True, truth=torch.ones(5))
    for kw in ({"betas": 0.9}, {"init_scale": float("inf")}):
        with pytest.raises(ql.QuadlensError):
            ql.preset("pizza", **kw)
    with pytest.raises(ql.QuadlensError, match="unknown preset"):
        ql.preset(["pizza"])
    with pytest.raises(ql.QuadlensError, match="no such file"):
        ql.import_tl(str(tmp_path / "none.pth"), 1.0)  # a str is a path
    with pytest.raises(ql.QuadlensError, match="expected the path"):
        ql.import_tl(model, 1.0)


# --- found reviewing this session's changes ---


def test_a_last_step_that_leaves_non_finite_weights_is_a_divergence(tmp_path):
    """The loss is checked before each step; a last step that makes the parameters infinite
    saved them, and the zoo stopped (and was wedged: every --resume failed on that member)."""
    args = [*TINY_ARGS, "--epochs", "1", "--warmup-epochs", "0"]
    _one_line_error(run_cli("train", *args, "--lr", "1e39", "--out", str(tmp_path / "r")),
                    "its last step left")  # fmt: skip
    assert not (tmp_path / "r").exists()
    zoo = tmp_path / "zoo"
    res = run_cli("zoo", "train", *args, "--lr", "1e39,1e-3", "--seeds", "0", "--workers", "1",
                  "--out", str(zoo), "--json")  # fmt: skip
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert [m["name"] for m in out["models"]] == ["lr0.001-seed0000"]
    assert [d["name"] for d in out["diverged"]] == ["lr1e+39-seed0000"]
    assert not (zoo / "runs" / "lr1e+39-seed0000" / rundir.WEIGHTS).exists()


def test_the_zoo_bar_ends_at_its_total_on_resume_with_a_diverged_member(tmp_path, monkeypatch):
    from quadlens import zoo as zoo_mod

    zoo = tmp_path / "zoo"
    args = [*TINY_ARGS, "--epochs", "100", "--seeds", "0", "--lr", "3e-3,1e4", "--workers", "1",
            "--out", str(zoo)]  # fmt: skip
    assert run_cli("zoo", "train", *args).code == 0
    shutil.rmtree(zoo / "runs" / "lr0.003-seed0000")  # to be trained again by --resume
    bars = []

    class Bar(_CountingBar):
        def __init__(self, total: int, initial: int = 0, **kw: object) -> None:
            super().__init__()
            self.n, self.total = initial, total
            bars.append(self)

        def close(self) -> None:
            pass

    monkeypatch.setattr(zoo_mod, "progress_bar", lambda progress, interval, **kw: Bar(**kw))
    assert run_cli("zoo", "train", *args, "--resume").code == 0
    assert bars and bars[0].n == bars[0].total == 200  # (the diverged member's 100 were missing)


def test_an_import_whose_config_holds_infinity_loads(tmp_path, zhong_paths):
    """config.json writes an infinity as null, the weights' metadata kept it: the two never
    compared equal, and every command after the import refused the run."""
    model, config = zhong_paths
    cfg = json.loads(config.read_text())
    cfg["clip_grad"] = float("inf")
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps(cfg))
    run = tmp_path / "run"
    assert run_cli("import", "zhong", str(model), str(bad), "--out", str(run)).code == 0
    res = run_cli("eval", str(run), "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["accuracy"] == 1.0


def test_numpy_integers_are_integers(tiny_run):
    import numpy as np

    import quadlens as ql

    _, model = ql.load_run(tiny_run)
    a = ql.bounds(model, grid=np.int64(16), harmonics=np.int32(4), check=False)
    b = ql.bounds(model, grid=16, harmonics=4, check=False)
    assert [c.bound for c in a.clusters] == [c.bound for c in b.clusters]


def test_study_leaves_members_the_lens_does_not_fit_out_of_the_key_frequency_count(tmp_path):
    """A softmax member had n_key_frequencies 0 (its other metrics null): the sweep figure drew
    it at 0 key frequencies."""
    zoo = tmp_path / "zoo"
    assert run_cli("zoo", "train", *TINY_ARGS, "--epochs", "100", "--seeds", "0",
                   "--attention-rate", "0,1", "--workers", "1", "--out", str(zoo)).code == 0
    res = run_cli("zoo", "study", str(zoo), "--json", "--no-figures", "--workers", "1")
    assert res.code == 0, res.err
    rows = {r["name"]: r for r in json.loads(res.out)["per_model"]}
    assert rows["attention_rate0-seed0000"]["n_key_frequencies"] is None
    assert rows["attention_rate1-seed0000"]["n_key_frequencies"] is not None
    res = run_cli("certify", str(zoo), "--strategy", "brute", "--no-figures")
    assert res.code == 0 and "1 model certified (1 skipped" in res.out, res.out
