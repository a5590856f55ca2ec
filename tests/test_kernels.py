"""The C kernels of the fast training step: built once per source, compiler and CPU, cached,
and replaced by torch operations (the same function) where no compiler works or torch's library
has no BLAS gemm to call."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from quadlens import _kernels, fastpath
from quadlens.config import ModelConfig
from quadlens.data import labels, make_split
from quadlens.model import Model

SMALL = dict(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=24)


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """The kernels module as if never loaded, caching under tmp_path."""
    monkeypatch.setattr(_kernels, "_lib", None)
    monkeypatch.setattr(_kernels, "_tried", False)
    monkeypatch.setenv("QUADLENS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _step(kernels=None):
    cfg = ModelConfig(**SMALL)
    m = Model(cfg, seed=0)
    P = {k: getattr(m, k).detach()[None] for k in fastpath.FAST_PARAMS}
    pairs = make_split(cfg.p, 0, 0.8).train[None]
    return fastpath.Step(P, pairs, labels(cfg.p)[pairs], "relu", kernels)


def test_builds_once_into_the_cache(fresh):
    assert _kernels.available()
    (so,) = fresh.glob("kernels-*.so")
    before = os.stat(so).st_mtime_ns
    assert _kernels._build() == so  # the cached build, not a new one
    assert os.stat(so).st_mtime_ns == before
    assert not [f for f in fresh.iterdir() if f != so]  # no temporary files left behind
    assert _step().kernels


@pytest.mark.parametrize("cc", ["no-such-compiler-xyz", "false"])
def test_without_a_working_compiler_training_takes_the_torch_operations(fresh, monkeypatch,
                                                                        capsys, cc):
    monkeypatch.setenv("CC", cc)
    step = _step()
    assert not step.kernels
    err = capsys.readouterr().err
    assert "could not build the fused CPU kernels" in err and "torch operations" in err
    assert err.count("\n") == 1  # one line, no traceback
    loss, grads = step()  # trains regardless
    assert torch.isfinite(loss).all() and torch.isfinite(grads[0]["W_in"]).all()
    assert not list(fresh.glob("kernels-*.so"))
    with pytest.raises(ValueError, match="not available"):
        _step(kernels=True)


def test_without_a_blas_gemm_training_takes_the_torch_operations(fresh, monkeypatch, capsys):
    monkeypatch.setattr(_kernels, "GEMM_SYMBOLS", ("no_such_sgemm_", "no_such_dgemm_"))
    step = _step()
    assert not step.kernels
    err = capsys.readouterr().err
    assert "exports no BLAS gemm" in err and "torch operations" in err
    assert err.count("\n") == 1
    loss, grads = step()
    assert torch.isfinite(loss).all() and torch.isfinite(grads[0]["W_in"]).all()


def test_kernels_refuse_tensors_they_would_misread():
    p, H, N = 3, 6, 4
    idx = torch.zeros(N, dtype=torch.int64)
    z, zl = torch.zeros(N, p, dtype=torch.float64), torch.zeros(N, dtype=torch.float64)
    Ub, D, bias = torch.zeros(p, H), torch.zeros(2 * p, p), torch.zeros(p)
    with pytest.raises(ValueError, match="contiguous"):
        _kernels.fused_forward(Ub, torch.zeros(H, p).T, Ub, D, bias, idx, idx, idx, z, zl, False)
    with pytest.raises(TypeError, match="float32 and float64"):
        x = Ub.half()
        _kernels.fused_forward(x, x, x, D.half(), bias.half(), idx, idx, idx, z, zl, False)
    e, total = z, zl
    small = torch.zeros(_kernels.parts_size(p, H) - 1)
    with pytest.raises(ValueError, match="too small"):
        _kernels.fused_backward(Ub, Ub, Ub, e, total, idx, idx, idx, small, False)


def test_a_damaged_cached_build_is_rebuilt(fresh, monkeypatch, tmp_path):
    assert _kernels.available()
    (so,) = fresh.glob("kernels-*.so")
    other = tmp_path / "other-cache"
    other.mkdir()
    (other / so.name).write_bytes(b"not a shared library")  # as a failed disk would leave it
    monkeypatch.setattr(_kernels, "_lib", None)
    monkeypatch.setattr(_kernels, "_tried", False)
    monkeypatch.setenv("QUADLENS_CACHE_DIR", str(other))
    assert _kernels.available()
    assert (other / so.name).read_bytes()[:4] == b"\x7fELF"


def test_an_unwritable_cache_falls_back_to_the_temporary_directory(fresh, monkeypatch, tmp_path):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("QUADLENS_CACHE_DIR", str(tmp_path / "afile" / "cache"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert _kernels.available()
    assert len(list((tmp_path / "tmp").glob("quadlens-*/kernels-*.so"))) == 1


def test_subnormals_are_flushed_inside_the_kernels_only():
    """The kernels flush subnormal floats to zero (a trained model's off-label probabilities / N
    fall below float32's smallest normal and slowed the backward pass 10-20x); torch's own
    arithmetic afterwards, on this thread and on torch's other threads, keeps them."""
    p, H = 3, 6
    idx = torch.zeros(1, dtype=torch.int64)  # one pair (0, 0), label 0
    e = torch.tensor([[1.0, 1e-42, 1e-41]], dtype=torch.float64)  # exp(z); G[1], G[2] subnormal
    zeros = torch.zeros(p, H)
    parts = torch.zeros(_kernels.parts_size(p, H))
    *_, dbias = _kernels.fused_backward(zeros, zeros, zeros, e, e.sum(-1), idx, idx, idx, parts,
                                        False)  # fmt: skip
    assert dbias.tolist() == [0.0, 0.0, 0.0]  # float32 sums: -1e-42 and 1e-41 flushed to 0
    step = _step()
    assert step.kernels
    tiny = torch.finfo(torch.float32).tiny
    x = torch.full((4096,), tiny)
    step()
    assert float((x * 0.5)[0]) == tiny / 2  # this thread: a subnormal result survives
    assert bool(((x.view(64, 64) * 0.5).sum(0) > 0).all())  # and in torch's parallel work


def test_the_torch_path_flushes_subnormal_gradients_too():
    """The torch operations' dloss/dlogits has no subnormal entries either (they made its
    products ~1.5x slower once a model fits its pairs): the same function as the kernels."""
    logits = torch.tensor([[[0.0, -95.0, -110.0, -2.0]]])  # exp(-95) / N is subnormal in float32
    _, G = fastpath.loss_and_grad(logits, torch.tensor([[0]]))
    tiny = torch.finfo(torch.float32).tiny
    assert G[0, 0, 1] == 0 and G[0, 0, 2] == 0
    assert G[0, 0, 3] > tiny and G[0, 0, 0] < 0  # normal entries untouched
    assert not bool(((G != 0) & (G.abs() < tiny)).any())


def test_importing_quadlens_sets_up_the_vector_math_library_on_one_thread():
    """quadlens/_vml.py: MKL's vector math library (torch's CPU exp, log, cos ...) can give a
    far less accurate first call when that call is made from two threads at once (it changed
    the weights of 11 in 130 fresh training processes, and would break the bounds' 1-ulp
    assumption). Importing quadlens makes one call on the importing thread first; the library's
    mode word for that thread shows it (it changes on a thread's first call). In a fresh
    process, since this one has long made such calls."""
    code = (
        "import ctypes, os, torch\n"
        "lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), 'lib', "
        "'libtorch_cpu.so'))\n"
        "before = lib.vmlGetMode()\n"
        "import quadlens\n"
        "print(before, lib.vmlGetMode())\n"
    )
    lib = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    if not os.path.exists(lib) or not hasattr(ctypes.CDLL(lib), "vmlGetMode"):
        pytest.skip("this torch has no MKL vector math library (nothing to set up)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(int, res.stdout.split())
    assert before != after, "import quadlens made no call of the vector math library"
    # and without quadlens the mode word stays as it was (so the check above can fail)
    res = subprocess.run([sys.executable, "-c", code.replace("import quadlens\n", "")],
                         capture_output=True, text=True, check=True)  # fmt: skip
    before, after = map(int, res.stdout.split())
    assert before == after


def test_repro_check_tool(capsys):
    """tools/repro_check.py runs one training command in fresh processes and counts the weights
    it gives: the same weights every time here (exit 0); too few runs is a usage error."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))
    try:
        import repro_check
    finally:
        sys.path.pop(0)
    with pytest.raises(SystemExit):
        repro_check.main(["--runs", "1"])
    args = ["--runs", "2", "--", "--preset", "pizza", "--p", "7", "--d-model", "8", "--n-heads",
            "2", "--d-head", "4", "--d-mlp", "16", "--epochs", "20"]  # fmt: skip
    assert repro_check.main(args) == 0
    out = capsys.readouterr().out
    assert "    2 x " in out and "every run gave the same weights" in out
