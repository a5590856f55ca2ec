"""Fused CPU kernels (Numba) for the elementwise part of the fast training step.

A step of `fastpath` on the CPU is three N x d_mlp x p matmuls (MKL, through torch) and
memory-bound work between them: gathering U[a] + V[b], the ReLU, the direct path, the float64
softmax and its gradient, the ReLU's backward and the sums of the gradient over the pairs that
share a token. In eager torch each of those is one or more passes over an N x d_mlp tensor and
the sums are a single-threaded scatter; here each is one pass, with the ReLU's backward folded
into the sums.

Axis names: S models, N training pairs per model, H neurons (d_mlp), p vocabulary.
Index arrays a, b, y are [S, N] (token a, token b, label of each pair).

Same bits as the torch operations they replace: each kernel performs the same floating-point
operations in the same order as its eager-torch counterpart (`fastpath.Step(kernels=False)`,
the path used on CUDA), and the tests check bit-equality. In particular the sums over pairs add
the rows in pair order, from zero, as `index_add_` does; they are parallel over columns, never
over rows, so no result depends on the number of threads or on scheduling.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_jit = nb.njit(parallel=True, cache=True, nogil=True)
BLOCK = 64  # columns per task in `pair_grad` (its two local sums then fit in L1)


@_jit
def hidden(Ub, V, a, b, pre, h, square):  # pragma: no cover - compiled
    """h[s, n] = act(Ub[s, a] + V[s, b]) with Ub = U + b_in (act: ReLU, or x^2 if `square`,
    which also keeps the pre-activation in `pre` for the backward pass)."""
    S, N, H = h.shape
    zero = np.zeros(1, h.dtype)[0]
    for t in nb.prange(S * N):
        s, n = t // N, t % N
        ua, vb, out = Ub[s, a[s, n]], V[s, b[s, n]], h[s, n]
        if square:
            keep = pre[s, n]
            for j in range(H):
                x = ua[j] + vb[j]
                keep[j] = x
                out[j] = x * x
        else:
            for j in range(H):
                x = ua[j] + vb[j]
                out[j] = x if x > zero else zero


@_jit
def shifted_logits(mlp, D, bias, a, b, y, z, z_label):  # pragma: no cover - compiled
    """z[s, n] = logits - max(logits) in float64 and z_label[s, n] = z at the label, where
    logits = (mlp + (D_a[a] + D_b[b])) + bias in the logits' dtype (D [S, 2p, p] stacks D_a
    over D_b, bias [S, p])."""
    S, N, p = z.shape
    for t in nb.prange(S * N):
        s, n = t // N, t % N
        da, db, row, zr = D[s, a[s, n]], D[s, p + b[s, n]], mlp[s, n], z[s, n]
        m = -np.inf
        for c in range(p):
            zr[c] = (row[c] + (da[c] + db[c])) + bias[s, c]
            m = max(m, zr[c])
        for c in range(p):
            zr[c] -= m
        z_label[s, n] = zr[y[s, n]]


@_jit
def softmax_grad(e, total, y, G):  # pragma: no cover - compiled
    """G = (e / (total N) - onehot(y) / N) in G's dtype, from e = exp(z) and its row sums
    total [S, N] (float64): the gradient of the mean cross-entropy."""
    S, N, p = e.shape
    for t in nb.prange(S * N):
        s, n = t // N, t % N
        er, gr, den = e[s, n], G[s, n], total[s, n] * N
        for c in range(p):
            gr[c] = er[c] / den
        yi = y[s, n]
        gr[yi] = er[yi] / den + (-1.0 / N)


@_jit
def sum_by_tokens_t(xt, a, b, out_a, out_b):  # pragma: no cover - compiled
    """out_a[s, t, k] = sum of x[s, n, k] over the pairs with a = t (and out_b by b), rows
    added in pair order from zero, for x given transposed: xt [S, K, N]."""
    S, K, N = xt.shape
    p = out_a.shape[1]
    for t in nb.prange(S * K):
        s, k = t // K, t % K
        la, lb, xr = np.zeros(p, xt.dtype), np.zeros(p, xt.dtype), xt[s, k]
        for n in range(N):
            la[a[s, n]] += xr[n]
            lb[b[s, n]] += xr[n]
        out_a[s, :, k] = la
        out_b[s, :, k] = lb


@_jit
def pair_grad(dh, h, pre, a, b, out_a, out_b, square):  # pragma: no cover - compiled
    """The gradient of the pre-activations (dh where h > 0 for ReLU, (dh pre) 2 for x^2),
    without materialising it, summed over the pairs that share token a (out_a [S, p, H]) and
    token b (out_b): rows added in pair order from zero, as index_add_ does. Each task owns
    BLOCK columns and accumulates them in a small local array (cache-resident)."""
    S, N, K = dh.shape
    p = out_a.shape[1]
    nblk = (K + BLOCK - 1) // BLOCK
    zero, two = np.zeros(1, dh.dtype)[0], np.full(1, 2, dh.dtype)[0]
    for t in nb.prange(S * nblk):
        s, j0 = t // nblk, (t % nblk) * BLOCK
        w = min(K, j0 + BLOCK) - j0
        la, lb = np.zeros((p, BLOCK), dh.dtype), np.zeros((p, BLOCK), dh.dtype)
        for n in range(N):
            ra, rb, dr = la[a[s, n]], lb[b[s, n]], dh[s, n, j0 : j0 + w]
            if square:
                xr = pre[s, n, j0 : j0 + w]
                for j in range(w):
                    g = (dr[j] * xr[j]) * two
                    ra[j] += g
                    rb[j] += g
            else:
                hr = h[s, n, j0 : j0 + w]
                for j in range(w):
                    g = dr[j] if hr[j] > zero else zero
                    ra[j] += g
                    rb[j] += g
        out_a[s, :, j0 : j0 + w] = la[:, :w]
        out_b[s, :, j0 : j0 + w] = lb[:, :w]
