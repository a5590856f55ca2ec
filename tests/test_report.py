"""`quadlens reproduce` and the report, checked in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import shutil

import pytest

from quadlens.browser import check_page

from .conftest import TINY_ARGS, run_cli

KEY_TABLES = {"model-table", "clusters-table", "bound-table", "certify-table", "compare-table"}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory, zhong_paths):
    """The whole pipeline on the imported Zhong model (`--from`), once."""
    run = tmp_path_factory.mktemp("repro") / "zhong"
    assert run_cli("import", "zhong", *map(str, zhong_paths), "--out", str(run)).code == 0
    res = run_cli("reproduce", "--from", str(run), "--json")
    assert res.code == 0, res.err
    return run, json.loads(res.out)


def test_reproduce_writes_every_artifact(reproduced):
    run, summary = reproduced
    for name in ("analysis.json", "bound.json", "certify.json", "compare.json", "bound.png",
                 "spectrum.png", "phase_wheels.png"):  # fmt: skip
        assert (run / "analysis" / name).is_file(), name
    assert summary["key_frequencies"] == [3, 15, 17]
    assert summary["certified"]["brute"] == 1.0 and summary["certified"]["subcubic"] == 1.0
    assert all(b["bound"] >= b["actual"] for b in summary["bounds"])
    assert set(summary["stage_seconds"]) == {"train", "analyze", "bound", "certify", "compare",
                                             "report"}  # fmt: skip
    assert summary["bilinear"] is None and not (run / "analysis" / "bilinear.json").exists()
    assert (run / "report" / "report.md").read_text().count("![") >= 5


def test_report_in_headless_chromium(reproduced, tmp_path):
    run, _ = reproduced
    shot = tmp_path / "report.png"
    res = check_page(run / "report" / "index.html", screenshot=shot)
    assert res["errors"] == []
    assert res["images"] and all(ok for _, ok in res["images"]), res["images"]
    assert KEY_TABLES <= set(res["tables"])
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_report_rebuilds_from_artifacts_and_works_offline(reproduced, tmp_path):
    """`quadlens report` needs only the saved files: copied elsewhere, with the model weights
    removed, it still builds the same page, and the page embeds its figures."""
    run, _ = reproduced
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "weights.safetensors").unlink()
    res = run_cli("report", str(copy), "--json")
    assert res.code == 0, res.err
    page = (copy / "report" / "index.html").read_text()
    assert "data:image/png;base64," in page and 'src="http' not in page


def test_report_says_what_is_missing(tiny_run, tmp_path):
    run = tmp_path / "tiny"
    shutil.copytree(tiny_run, run)
    shutil.rmtree(run / "analysis", ignore_errors=True)
    assert run_cli("report", str(run)).code == 0
    page = (run / "report" / "index.html").read_text()
    assert "quadlens bound" in page and "not computed yet" in page
    res = check_page(run / "report" / "index.html")
    assert res["errors"] == [] and all(ok for _, ok in res["images"])


@pytest.mark.parametrize("extra", [["--activation", "gelu"], ["--attention-rate", "0"]])
def test_report_on_models_the_proofs_do_not_fit(tmp_path, extra):
    """Not ReLU, or not constant attention: the report still builds, carries the lens' notes,
    says why bounds, certificates and the lens comparison do not apply (instead of offering a
    command that would fail), and does not call a run that never generalised grokking."""
    run = tmp_path / "run"
    args = list(TINY_ARGS)
    args[args.index("--epochs") + 1] = "20"
    assert run_cli("train", *args, *extra, "--out", str(run)).code == 0
    assert run_cli("analyze", str(run), "--no-figures").code == 0
    res = run_cli("report", str(run))
    assert res.code == 0 and "Traceback" not in res.err, res.err
    md = (run / "report" / "report.md").read_text()
    assert md.count("Not applicable") == 3 and "not computed yet" not in md
    assert "has not generalised (yet)" in md and "grokking" not in md
    if extra[0] == "--activation":
        assert "Note: activation is gelu, not ReLU" in md and "activation here: gelu" in md
        # every section says why it is empty (the secondary-frequency one had no text at all)
        assert "Not computed: the closed forms" in md and "Not drawn: the secondary" in md
    else:  # reproduce on it keeps the accuracy (it printed "-": the lens does not apply)
        res = run_cli("reproduce", "--from", str(run), "--json")
        assert res.code == 0, res.err
        assert json.loads(res.out)["accuracy"] is not None


def test_report_of_an_mlp_only_model(tmp_path):
    """The model table showed heads, d_head and an attention rate the model does not have, and
    called a constructed model imported."""
    run = tmp_path / "synth"
    assert run_cli("synth", "pizza", "--p", "23", "--width", "64", "--out", str(run)).code == 0
    assert run_cli("report", str(run)).code == 0
    md = (run / "report" / "report.md").read_text()
    assert "MLP only" in md and "attention rate" not in md and "heads x d_head" not in md
    assert "imported or constructed" in md


def test_zoo_report(tmp_path):
    zoo = tmp_path / "zoo"
    assert run_cli("zoo", "train", "--seeds", "0-1", "--p", "23", "--d-model", "32", "--n-heads",
                   "4", "--d-head", "8", "--d-mlp", "64", "--epochs", "600", "--lr", "3e-3",
                   "--out", str(zoo), "--quiet").code == 0  # fmt: skip
    assert run_cli("zoo", "study", str(zoo), "--quiet", "--workers", "1").code == 0
    assert run_cli("certify", str(zoo), "--all-strategies", "--quiet", "--grid", "8").code == 0
    assert run_cli("report", str(zoo)).code == 0
    res = check_page(zoo / "report" / "index.html")
    assert res["errors"] == [] and all(ok for _, ok in res["images"])
    assert {"zoo-table", "certify-table"} <= set(res["tables"])
    md = (zoo / "report" / "report.md").read_text()
    assert "2 members: preset pizza with p = 23, d_model = 32" in md and "no sweep" in md
    # the zoo's cost column reads in the same direction as a run's ('0.11' read as cheaper)
    rows = {r.split("|")[1].strip(): r for r in md.splitlines() if r.startswith("| ")}
    assert "1.0x fewer" in rows["brute"] and "x more" in rows["quadrature"], rows


def test_reproduce_and_report_errors(tmp_path):
    assert run_cli("report", str(tmp_path)).code == 2
    assert run_cli("reproduce", "--from", str(tmp_path / "nope")).code == 2
    res = run_cli("reproduce", "--from", str(tmp_path), "--out", str(tmp_path / "x"))
    assert res.code == 2
    res = run_cli("reproduce", "--seed", "-1", "--out", str(tmp_path / "neg"))
    assert res.code == 2 and "seed" in res.err
    assert not (tmp_path / "neg").exists()  # refused before anything is written


def test_tutorial_script_runs(tmp_path):
    """examples/tutorial.py (the tutorial as a script, public API only) runs end to end."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "tutorial.py"
    res = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path / "t")],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "key frequencies" in res.stdout and "sound: True" in res.stdout
    assert (tmp_path / "t" / "report" / "index.html").is_file()


def test_reproduce_text_says_which_way_its_flops_ratio_goes(reproduced, monkeypatch):
    """It printed brute / strategy under "FLOPs vs brute force": 0.56x read as cheaper."""
    import sys

    run, summary = reproduced
    # (the module: quadlens.reproduce, the attribute, is the function the package exports)
    monkeypatch.setattr(sys.modules["quadlens.reproduce"], "reproduce", lambda **kw: summary)
    res = run_cli("reproduce", "--from", str(run))
    assert res.code == 0, res.err
    assert "times fewer FLOPs than brute force; below 1x: more" in res.out
    flops = summary["certificate_flops"]
    ratio = flops["brute"] / flops["quadrature"]
    assert ratio < 1
    assert f"quadrature {summary['certified']['quadrature']:.1%} ({ratio:.2g}x)" in res.out


def test_captions_follow_the_numbers():
    """The figure captions are read off the numbers beside them, so a weak model's report does
    not claim a clean pizza (single-frequency neurons, full phase circles, visible stripes)."""
    from quadlens import report

    clean = {"key_frequencies": [2, 5], "input_spectrum": [0.0, 0.6, 0.0, 0.0, 0.38],
             "frac_dominant": 1.0}  # fmt: skip
    assert "almost everything; 100% of live neurons read mainly one" in (
        report._spectrum_caption(clean))
    weak = dict(clean, input_spectrum=[0.3, 0.2, 0.3, 0.0, 0.2], frac_dominant=0.41)
    text = report._spectrum_caption(weak)
    assert "only 41% of live neurons" in text and "almost everything" not in text
    assert "(red: the 2 key frequencies, 40% of it together)" in text
    assert "1 key frequency," in report._spectrum_caption(dict(clean, key_frequencies=[2]))
    assert "second key frequency" not in report._spectrum_caption(dict(clean, frac_key_mixing=0.04))
    assert report._mixing_cell({"frac_key_mixing": 0.62, "mixed_with": [23, 25]}) == "62% (23, 25)"
    assert report._mixing_cell({"frac_key_mixing": 0.0, "mixed_with": []}) == "0%"
    assert report._mixing_cell({}) == "-"  # an analysis.json from before the measure
    assert "20% of the key-cluster neurons also carry a second key frequency" in (
        report._spectrum_caption(dict(clean, frac_key_mixing=0.2)))

    full = [{"freq": 3, "largest_gap": 0.3}, {"freq": 7, "largest_gap": 1.0}]
    assert "whole circle" in report._wheels_caption(full)
    gappy = report._wheels_caption([*full, {"freq": 9, "largest_gap": 2.5}])
    assert "whole circle" not in gappy and "k = 9" in gappy and "k = 7" not in gappy

    assert "softened toward the clock" in report._logits_caption({"pizza": 0.8, "clock": 0.95})
    assert "follow the pizza" in report._logits_caption({"pizza": 0.9, "clock": 0.6})
    none = report._logits_caption({"pizza": 0.10, "clock": 0.2})
    assert "Neither closed form" in none and "stripes" not in none

    neurons = [{"dead": False, "freq": 3, "secondary_phase_err": e} for e in (0.1, 2.0, 3.0)]
    an = {"key_frequencies": [3], "neurons": neurons}
    assert "Only 33% of them" in report._secondary_caption(an)
    an["neurons"] = neurons[:1]
    assert "100% of them lie within 20 degrees" in report._secondary_caption(an)

    rows = [{"epoch": e, "train_acc": tr, "test_acc": te, "weight_norm": w}
            for e, tr, te, w in ((0, 0.1, 0.0, 30), (100, 1.0, 0.1, 50), (300, 1.0, 1.0, 40))]
    assert "falls from 50.0 to 40.0" in report._training_caption(rows)
    rows[-1]["weight_norm"] = 60
    text = report._training_caption(rows)
    assert "grokking" in text and "weight norm" not in text


@pytest.mark.parametrize("activation", ["bilinear", "quadratic"])
def test_reproduce_reads_bilinear_and_square_models_by_their_exact_lens(tmp_path, activation):
    """reproduce on a bilinear or x^2 run skipped every ReLU stage and only pointed to
    `quadlens bilinear`; it now runs that reading as a stage, and the report shows it."""
    run = tmp_path / "run"
    assert run_cli("train", *TINY_ARGS, "--activation", activation, "--out", str(run)).code == 0
    res = run_cli("reproduce", "--from", str(run))
    assert res.code == 0, res.err
    assert "[3/7] bilinear done" in res.err and "bilinear reading: logits = x~^T Q_c x~" in res.out
    summary = json.loads((run / "report" / "reproduce.json").read_text())
    bl = json.loads((run / "analysis" / "bilinear.json").read_text())
    k = summary["bilinear"]["smallest_k_as_accurate"]
    assert k is not None and bl["topk_accuracy"][k] >= summary["accuracy"]
    assert all(a < summary["accuracy"] for a in bl["topk_accuracy"][:k])
    assert (run / "analysis" / "bilinear.png").stat().st_size > 1000
    md = (run / "report" / "report.md").read_text()
    assert "## The bilinear reading" in md and f"keeping the top {k} eigenvectors" in md
