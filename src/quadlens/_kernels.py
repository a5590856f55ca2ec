"""Fused CPU kernels for the elementwise part of the fast training step, in C (`_kernels.c`).

A step of `fastpath` on the CPU is three N x d_mlp x p matmuls (MKL, through torch) and
memory-bound work between them: gathering U[a] + V[b], the ReLU, the direct path, the float64
softmax's gradient, the ReLU's backward and the sums of the gradient over the pairs that share
a token. In eager torch each of those is one or more passes over an N x d_mlp tensor and the
sums are a single-threaded scatter; here each is one pass, with the ReLU's backward folded into
the sums.

Same bits as the torch operations they replace: each kernel performs the same floating-point
operations in the same order as its eager-torch counterpart (`fastpath.Step(kernels=False)`,
the path used on CUDA), and the tests check bit-equality.

The C source is compiled on first use with the machine's C compiler (`$CC`, else `cc`), for
this CPU (-march=native, no floating-point contraction), and cached under
`$QUADLENS_CACHE_DIR` (default `~/.cache/quadlens`; if that cannot be written, a directory under
the system's temporary one), keyed by the source, the compiler and the CPU; a cached build that
does not load is built again. The library is loaded after torch and links the same OpenMP
runtime (libgomp.so.1), so its parallel loops run on torch's own threads: on a 2-core machine a
second thread pool (Numba's, before) kept spinning while torch's matmuls ran, and each slowed
the other. Where no compiler works, `available()` is False and training takes the torch
operations (the same bits, somewhat slower), after one line on stderr that says so.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("_kernels.c")
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-std=gnu11", "-fopenmp", "-shared",
         "-fPIC"]  # fmt: skip
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_lib: ctypes.CDLL | None = None
_tried = False


def cache_dir() -> Path:
    env = os.environ.get("QUADLENS_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "quadlens"


def _cpu_key() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _build(rebuild: bool = False) -> Path:
    """The compiled library's path, compiling it if this source, compiler and CPU have no
    cached build (or `rebuild`). The cache is `cache_dir()`, else, if that cannot be written, a
    directory under the system's temporary one. Raises OSError or
    subprocess.CalledProcessError if compiling fails."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise OSError(f"no C compiler {cc!r} on PATH")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True)
    key = hashlib.sha256(
        b"\0".join(x.encode() for x in
                   (SOURCE.read_text(), cc, version.stdout, " ".join(FLAGS), _cpu_key()))
    ).hexdigest()[:16]  # fmt: skip
    name = f"kernels-{key}.so"
    fallback = Path(tempfile.gettempdir()) / f"quadlens-{getattr(os, 'getuid', lambda: 0)()}"
    for d in (cache_dir(), fallback):
        if (d / name).exists() and not rebuild:
            return d / name
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=d)
        except OSError:
            continue  # not writable: the next place
        os.close(fd)
        try:  # compile beside the target, then rename: concurrent builds never see a part
            subprocess.run([cc, *FLAGS, str(SOURCE), "-o", tmp], capture_output=True,
                           text=True, check=True)  # fmt: skip
            os.replace(tmp, d / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return d / name
    raise OSError(f"cannot write the kernels' build to {cache_dir()} or {fallback}")


def _load() -> ctypes.CDLL | None:
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    try:
        path = _build()
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:  # a cached build that does not load (damaged): build it again, once
            lib = ctypes.CDLL(str(_build(rebuild=True)))
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", None) or str(e)
        first = detail.strip().splitlines()[0] if detail.strip() else type(e).__name__
        print(f"quadlens: could not build the fused CPU kernels ({first}); training uses "
              "torch operations instead (the same results, somewhat slower)",
              file=sys.stderr)  # fmt: skip
        return None
    P, I = ctypes.c_void_p, ctypes.c_int64
    for suf in _SUFFIX.values():
        getattr(lib, f"hidden_{suf}").argtypes = [P, P, P, P, P, P, I, I, ctypes.c_int]
        getattr(lib, f"shifted_logits_{suf}").argtypes = [P, P, P, P, P, P, P, P, I, I]
        getattr(lib, f"softmax_grad_{suf}").argtypes = [P, P, P, P, I, I]
        getattr(lib, f"sum_by_tokens_t_{suf}").argtypes = [P, P, P, P, P, I, I, I]
        getattr(lib, f"pair_grad_{suf}").argtypes = [P, P, P, P, P, P, P, I, I, I, ctypes.c_int]
    _lib = lib
    return lib


def available() -> bool:
    """Whether the kernels are built and loaded (building them on the first call)."""
    return _load() is not None


def _fn(name: str, dtype: torch.dtype) -> Callable[..., object]:
    lib = _load()
    if lib is None:
        raise RuntimeError("the fused CPU kernels are not available (see available())")
    if dtype not in _SUFFIX:
        raise TypeError(f"the fused CPU kernels handle float32 and float64, not {dtype}")
    return getattr(lib, f"{name}_{_SUFFIX[dtype]}")


def _ptr(*xs: Tensor) -> list[int]:
    """Data pointers of CPU tensors whose memory is laid out as the kernels read it."""
    for x in xs:
        if x.device.type != "cpu" or not x.is_contiguous():
            raise ValueError("the fused kernels need contiguous CPU tensors")
    return [x.data_ptr() for x in xs]


# Each wrapper takes one model's tensors (the leading model axis of fastpath is gone: [p, H],
# not [1, p, H]) and index tensors a, b, y [N] (int64, contiguous).


def hidden(Ub: Tensor, V: Tensor, a: Tensor, b: Tensor, pre: Tensor, h: Tensor,
           square: bool) -> None:  # fmt: skip
    """h [N, H] = act(Ub[a] + V[b]) (Ub = U + b_in [p, H]); for x^2 also pre = Ub[a] + V[b]."""
    N, H = h.shape
    _fn("hidden", h.dtype)(*_ptr(Ub, V, a, b, pre, h), N, H, int(square))


def shifted_logits(mlp_t: Tensor, D: Tensor, bias: Tensor, a: Tensor, b: Tensor, y: Tensor,
                   z_t: Tensor, z_label: Tensor) -> None:  # fmt: skip
    """z = logits - max(logits) (float64) and z_label = z at the label, where logits =
    (mlp + (D_a[a] + D_b[b])) + bias; mlp_t and z_t [p, N] hold mlp and z transposed."""
    p, N = mlp_t.shape
    _fn("shifted_logits", mlp_t.dtype)(*_ptr(mlp_t, D, bias, a, b, y, z_t, z_label), N, p)


def softmax_grad(e_t: Tensor, total: Tensor, y: Tensor, G_t: Tensor) -> None:
    """G = e / (total N) - onehot(y) / N in G's dtype, from e = exp(z) [float64] and its row
    sums total [N]; e_t and G_t [p, N] hold e and G transposed."""
    p, N = G_t.shape
    _fn("softmax_grad", G_t.dtype)(*_ptr(e_t, total, y, G_t), N, p)


def sum_by_tokens_t(xt: Tensor, a: Tensor, b: Tensor, out_a: Tensor, out_b: Tensor) -> None:
    """out_a [p, K] = sums of x [N, K] over the pairs with a = t (out_b by b), rows added in
    pair order from zero, for x given transposed: xt [K, N]."""
    K, N = xt.shape
    _fn("sum_by_tokens_t", xt.dtype)(*_ptr(xt, a, b, out_a, out_b), N, K, out_a.shape[0])


def pair_grad(dh: Tensor, h: Tensor, pre: Tensor, a: Tensor, b: Tensor, out_a: Tensor,
              out_b: Tensor, square: bool) -> None:  # fmt: skip
    """Sums over the pairs sharing token a (out_a [p, H]) and token b (out_b) of the
    pre-activations' gradient (dh where h > 0 for ReLU, (dh pre) 2 for x^2)."""
    N, H = dh.shape
    _fn("pair_grad", dh.dtype)(*_ptr(dh, h, pre, a, b, out_a, out_b), N, H, out_a.shape[0],
                               int(square))  # fmt: skip
