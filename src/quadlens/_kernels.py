"""The fused CPU training step, in C (`_kernels.c`).

A step of `fastpath` is the circuit's small forward and backward (products of the weights, a few
hundred rows each) and, between them, the work over the N training pairs: the hidden layer
act(U[a] + V[b] + b_in) [N, d_mlp], its product with O, the direct path, the float64 softmax's
gradient, the two products of the backward (dO and dh) and the sums of the pre-activations'
gradient over the pairs that share a token. On the CPU that middle part runs here, in two passes
over chunks of 128 pairs: a chunk's hidden activations are formed, multiplied and dropped while
they are in the cache, and the three large products become single-threaded BLAS calls on the
chunks (the `sgemm_`/`dgemm_` of the BLAS inside torch, MKL in its x86 builds), made in the
orientations that run fastest on such blocks, with the threads sharing the work by fixed runs of
chunks. Eager torch instead writes [N, d_mlp] tensors to memory and reads them back five times,
and its products over all N pairs scale poorly to the second core at these shapes.

The circuit's own forward and backward (`circuit_forward`, `circuit_backward`: the twenty-odd
small products of the weights) are C as well: each product is one single-threaded BLAS call, and
the independent products of a stage run side by side on the threads. Through torch each was
split over both threads and paid the dispatcher: 0.98 ms of a 4.25 ms step, against 0.68 ms now
(2026-12-06, Intel AVX-512 machine). Subnormal floats are flushed to zero inside the kernels
(each thread's MXCSR, restored on leaving): see the note in `_kernels.c`.

The bits are fixed by the source: the chunks, the runs of chunks each thread-independent part
sums over, the part order. So a run gives the same weights at any number of threads, in a worker
process or in `quadlens train`, and one model of a batch the same as it alone (tested). They are
not the bits of the torch path (`fastpath.Step(kernels=False)`, the one used on CUDA): that sums
over all N pairs in one product, so the two agree to float rounding (tested), not bit for bit.

The C source is compiled on first use with the machine's C compiler (`$CC`, else `cc`), for
this CPU (-march=native, no floating-point contraction), and cached under
`$QUADLENS_CACHE_DIR` (default `~/.cache/quadlens`; if that cannot be written, a directory under
the system's temporary one), keyed by the source, the compiler and the CPU; a cached build that
does not load is built again. The library is loaded after torch and links the same OpenMP
runtime (libgomp.so.1), so its parallel loops run on torch's own threads (a second runtime's
pool would spin against torch's on a 2-core machine). Where no compiler works, or torch's
library exports no BLAS gemm, `available()` is False and training takes the torch operations
(the same function, somewhat slower), after one line on stderr that says so.
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
# the Fortran BLAS routines of torch's library that the kernels call, for float32 and float64
GEMM_SYMBOLS = ("sgemm_", "dgemm_")
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
              "torch operations instead (the same function, somewhat slower)",
              file=sys.stderr)  # fmt: skip
        return None
    P, I, C = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for suf in _SUFFIX.values():
        getattr(lib, f"fused_forward_{suf}").argtypes = [P] * 10 + [I, I, I, C]
        getattr(lib, f"fused_backward_{suf}").argtypes = [P] * 10 + [I, I, I, C]
        getattr(lib, f"circuit_forward_{suf}").argtypes = [P] * 17 + [I] * 5
        getattr(lib, f"circuit_backward_{suf}").argtypes = [P] * 17 + [I] * 5
    lib.set_gemm.argtypes = [P, P]
    try:
        blas = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        gemm = [ctypes.cast(getattr(blas, f), ctypes.c_void_p) for f in GEMM_SYMBOLS]
    except (OSError, AttributeError):
        print(f"quadlens: torch's library exports no BLAS gemm ({', '.join(GEMM_SYMBOLS)}); "
              "training uses torch operations instead (the same function, somewhat slower)",
              file=sys.stderr)  # fmt: skip
        return None
    lib.set_gemm(*gemm)
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


def _grad_sizes(p: int, H: int) -> tuple[int, int, int, int]:
    """Elements of dUV, dD, dOt and dbias, one after another in `fused_backward`'s output."""
    return 2 * p * H, 2 * p * p, p * H, p


def parts_size(p: int, H: int) -> int:
    """Elements of the scratch `fused_backward` sums its partial gradients into: one set per
    part (NPART, a constant of _kernels.c)."""
    lib = _load()
    if lib is None:
        raise RuntimeError("the fused CPU kernels are not available (see available())")
    return lib.n_parts() * sum(_grad_sizes(p, H))


# Each wrapper takes one model's tensors (the leading model axis of fastpath is gone: [p, H],
# not [1, p, H]) and index tensors a, b, y [N] (int64, contiguous).


def fused_forward(Ub: Tensor, V: Tensor, Ot: Tensor, D: Tensor, bias: Tensor, a: Tensor,
                  b: Tensor, y: Tensor, z: Tensor, z_label: Tensor,
                  square: bool) -> None:  # fmt: skip
    """z [N, p] = logits - max(logits) (float64) and z_label [N] = z at the label, where
    logits = (act(Ub[a] + V[b]) O + (D_a[a] + D_b[b])) + bias: Ub = U + b_in and V [p, H],
    Ot = O transposed [p, H], D = [D_a; D_b] [2p, p], bias [p]."""
    N, p = z.shape
    _fn("fused_forward", Ub.dtype)(*_ptr(Ub, V, Ot, D, bias, a, b, y, z, z_label), N,
                                   Ub.shape[1], p, int(square))  # fmt: skip


def fused_backward(Ub: Tensor, V: Tensor, Ot: Tensor, e: Tensor, total: Tensor, a: Tensor,
                   b: Tensor, y: Tensor, parts: Tensor,
                   square: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """From e = exp(z) [N, p] (float64) and its row sums total [N]: the gradients of the mean
    cross-entropy with respect to [U; V] (dUV [2p, H]), [D_a; D_b] (dD [2p, p]), O (given
    transposed: dOt [p, H]) and the logit bias (dbias [p]), as views of one new buffer.
    `parts` is scratch of `parts_size(p, H)` elements."""
    N, p = e.shape
    H = Ub.shape[1]
    if parts.numel() < parts_size(p, H):
        raise ValueError("fused_backward: the scratch for the partial sums is too small")
    sizes = _grad_sizes(p, H)
    out = torch.empty(sum(sizes), dtype=Ub.dtype)
    _fn("fused_backward", Ub.dtype)(*_ptr(Ub, V, Ot, e, total, a, b, y, parts, out), N, H, p,
                                    int(square))  # fmt: skip
    dUV, dD, dOt, dbias = out.split(sizes)
    return dUV.view(2 * p, H), dD.view(2 * p, p), dOt.view(p, H), dbias


# The circuit (fastpath's docstring): its forward into fixed buffers, its backward to the
# parameters' gradients. Parameters come as one model's tensors by name (no model axis), in the
# order circuit_forward reads them and circuit_backward writes their gradients (_kernels.c).
PARAMS = ("W_E", "W_pos", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")
_BACKWARD_PARAMS = ("W_V", "W_O", "W_in", "W_out", "b_out", "W_U")


def _dims(P: dict[str, Tensor]) -> tuple[int, int, int, int, int]:
    nh, d, e = P["W_V"].shape
    return P["W_E"].shape[0], d, nh, e, P["W_in"].shape[1]


def circuit_buffers(P: dict[str, Tensor]) -> dict[str, Tensor]:
    """Fresh buffers for `circuit_forward` and `circuit_backward` of a model of P's shape."""
    p, d, nh, e, H = _dims(P)
    shapes = {"E": (2 * p, d), "Wv": (d, nh * e), "W_OV": (d, d), "R": (2 * p, d),
              "UVb": (2 * p, H), "D": (2 * p, p), "Ot": (p, H), "bias": (p,), "dR": (2 * p, d),
              "dE": (2 * p, d), "dW_OV": (d, d)}  # fmt: skip
    return {k: torch.empty(v, dtype=P["W_E"].dtype) for k, v in shapes.items()}


def circuit_forward(P: dict[str, Tensor], buf: dict[str, Tensor]) -> None:
    """The circuit of the model P into buf: E, Wv, W_OV, R, UVb = [U + b_in; V] [2p, H],
    D = [D_a; D_b] [2p, p], Ot = O transposed [p, H], bias = b_out W_U [p]."""
    fwd = ("E", "Wv", "W_OV", "R", "UVb", "D", "Ot", "bias")
    _fn("circuit_forward", P["W_E"].dtype)(*_ptr(*(P[k] for k in PARAMS)),
                                           *_ptr(*(buf[k] for k in fwd)), *_dims(P))  # fmt: skip


def circuit_backward(P: dict[str, Tensor], buf: dict[str, Tensor], dUV: Tensor, dD: Tensor,
                     dOt: Tensor, dbias: Tensor) -> dict[str, Tensor]:
    """The gradients of the PARAMS, from those of the circuit's pieces (fused_backward's), after
    circuit_forward(P, buf): views of one new buffer, each in its parameter's shape."""
    sizes = [P[k].numel() for k in PARAMS]
    out = torch.empty(sum(sizes), dtype=P["W_E"].dtype)
    _fn("circuit_backward", P["W_E"].dtype)(
        *_ptr(*(P[k] for k in _BACKWARD_PARAMS), buf["E"], buf["W_OV"], buf["R"], dUV, dD, dOt,
              dbias, buf["dR"], buf["dE"], buf["dW_OV"], out), *_dims(P))  # fmt: skip
    return {k: x.view(P[k].shape) for k, x in zip(PARAMS, out.split(sizes), strict=True)}
