/* Fused CPU kernels for the elementwise part of the fast training step (quadlens/_kernels.py).
 *
 * Each kernel performs the floating-point operations of the eager-torch code it replaces
 * (fastpath.Step(kernels=False)) in the same order, so both give the same bits (tested). Built
 * without -ffast-math and with -ffp-contract=off: the compiler may vectorise across independent
 * elements but never reorders or fuses a sum. Parallel loops run on the OpenMP runtime that torch
 * has loaded (this library is loaded after torch, and its libgomp.so.1 resolves to torch's), so
 * the kernels and torch's matmuls share one pool of threads instead of competing for the cores.
 * The sums over pairs add rows in pair order from zero, as index_add_ does; they are parallel
 * over columns, never over rows, so no result depends on the number of threads.
 *
 * One model at a time: N training pairs, H neurons (d_mlp), p tokens. Index arrays a, b, y [N]
 * (int64) hold each pair's tokens and label. Every array is C-contiguous unless said otherwise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 64 /* columns per task in pair_grad (its two local sums then fit in L1) */

#define KERNELS(T, SUF)                                                                         \
/* h = act(Ub[a] + V[b]) [N, H] (act: ReLU, or x^2 if square, which keeps the pre-activation   \
 * in pre); Ub = U + b_in [p, H], V [p, H]. */                                                  \
void hidden_##SUF(const T *Ub, const T *V, const int64_t *a, const int64_t *b, T *pre, T *h,   \
                  int64_t N, int64_t H, int square) {                                           \
    _Pragma("omp parallel for schedule(static)")                                                \
    for (int64_t n = 0; n < N; n++) {                                                           \
        const T *ua = Ub + a[n] * H, *vb = V + b[n] * H;                                        \
        T *out = h + n * H;                                                                     \
        if (square) {                                                                           \
            T *keep = pre + n * H;                                                              \
            for (int64_t j = 0; j < H; j++) {                                                   \
                T x = ua[j] + vb[j];                                                            \
                keep[j] = x;                                                                    \
                out[j] = x * x;                                                                 \
            }                                                                                   \
        } else {                                                                                \
            for (int64_t j = 0; j < H; j++) {                                                   \
                T x = ua[j] + vb[j];                                                            \
                out[j] = x > (T)0 ? x : (T)0;                                                   \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
                                                                                                \
/* z = logits - max(logits) in float64 and z_label = z at the label, where                      \
 * logits = (mlp + (D_a[a] + D_b[b])) + bias in T. mlp and z are stored transposed ([p, N]:     \
 * element (n, c) at c N + n), as the logits come out of the matmul; D [2p, p] stacks D_a over  \
 * D_b; bias [p]. */                                                                            \
void shifted_logits_##SUF(const T *mlp, const T *D, const T *bias, const int64_t *a,           \
                          const int64_t *b, const int64_t *y, double *z, double *z_label,       \
                          int64_t N, int64_t p) {                                               \
    _Pragma("omp parallel for schedule(static)")                                                \
    for (int64_t n = 0; n < N; n++) {                                                           \
        const T *da = D + a[n] * p, *db = D + (p + b[n]) * p;                                   \
        double m = -__builtin_inf();                                                            \
        for (int64_t c = 0; c < p; c++) {                                                       \
            T v = (mlp[c * N + n] + (da[c] + db[c])) + bias[c];                                 \
            z[c * N + n] = (double)v;                                                           \
            m = (double)v > m ? (double)v : m;                                                  \
        }                                                                                       \
        for (int64_t c = 0; c < p; c++)                                                         \
            z[c * N + n] -= m;                                                                  \
        z_label[n] = z[y[n] * N + n];                                                           \
    }                                                                                           \
}                                                                                               \
                                                                                                \
/* G = e / (total N) - onehot(y) / N in T, from e = exp(z) (float64, stored [p, N] like z) and  \
 * its row sums total [N]: the gradient of the mean cross-entropy. G is stored [p, N] too. */   \
void softmax_grad_##SUF(const double *e, const double *total, const int64_t *y, T *G,          \
                        int64_t N, int64_t p) {                                                 \
    double inv = -1.0 / (double)N;                                                              \
    _Pragma("omp parallel for schedule(static)")                                                \
    for (int64_t n = 0; n < N; n++) {                                                           \
        double den = total[n] * (double)N;                                                      \
        for (int64_t c = 0; c < p; c++)                                                         \
            G[c * N + n] = (T)(e[c * N + n] / den);                                             \
        int64_t yi = y[n];                                                                      \
        G[yi * N + n] = (T)(e[yi * N + n] / den + inv);                                         \
    }                                                                                           \
}                                                                                               \
                                                                                                \
/* out_a[t, k] = sum of x[n, k] over the pairs with a = t (out_b by b), rows added in pair     \
 * order from zero, for x given transposed: xt [K, N]; out_a and out_b [p, K]. */               \
void sum_by_tokens_t_##SUF(const T *xt, const int64_t *a, const int64_t *b, T *out_a,          \
                           T *out_b, int64_t N, int64_t K, int64_t p) {                         \
    _Pragma("omp parallel")                                                                     \
    {                                                                                           \
        T *la = (T *)malloc(2 * p * sizeof(T)), *lb = la + p;                                   \
        _Pragma("omp for schedule(static)")                                                     \
        for (int64_t k = 0; k < K; k++) {                                                       \
            const T *xr = xt + k * N;                                                           \
            memset(la, 0, 2 * p * sizeof(T));                                                   \
            for (int64_t n = 0; n < N; n++) {                                                   \
                la[a[n]] += xr[n];                                                              \
                lb[b[n]] += xr[n];                                                              \
            }                                                                                   \
            for (int64_t t = 0; t < p; t++) {                                                   \
                out_a[t * K + k] = la[t];                                                       \
                out_b[t * K + k] = lb[t];                                                       \
            }                                                                                   \
        }                                                                                       \
        free(la);                                                                               \
    }                                                                                           \
}                                                                                               \
                                                                                                \
/* The gradient of the pre-activations (dh where h > 0 for ReLU, (dh pre) 2 for x^2), without  \
 * materialising it, summed over the pairs that share token a (out_a [p, H]) and token b        \
 * (out_b): rows added in pair order from zero. Each task owns BLOCK columns and accumulates    \
 * them in two small local arrays. */                                                           \
void pair_grad_##SUF(const T *dh, const T *h, const T *pre, const int64_t *a, const int64_t *b, \
                     T *out_a, T *out_b, int64_t N, int64_t H, int64_t p, int square) {         \
    int64_t nblk = (H + BLOCK - 1) / BLOCK;                                                     \
    _Pragma("omp parallel")                                                                     \
    {                                                                                           \
        T *la = (T *)malloc(2 * p * BLOCK * sizeof(T)), *lb = la + p * BLOCK;                   \
        _Pragma("omp for schedule(static)")                                                     \
        for (int64_t t = 0; t < nblk; t++) {                                                    \
            int64_t j0 = t * BLOCK, w = (H < j0 + BLOCK ? H : j0 + BLOCK) - j0;                 \
            memset(la, 0, 2 * p * BLOCK * sizeof(T));                                           \
            for (int64_t n = 0; n < N; n++) {                                                   \
                T *restrict ra = la + a[n] * BLOCK, *restrict rb = lb + b[n] * BLOCK;           \
                const T *dr = dh + n * H + j0;                                                  \
                if (square) {                                                                   \
                    const T *xr = pre + n * H + j0;                                             \
                    for (int64_t j = 0; j < w; j++) {                                           \
                        T g = (dr[j] * xr[j]) * (T)2;                                           \
                        ra[j] += g;                                                             \
                        rb[j] += g;                                                             \
                    }                                                                           \
                } else {                                                                        \
                    const T *hr = h + n * H + j0;                                               \
                    for (int64_t j = 0; j < w; j++) {                                           \
                        T g = hr[j] > (T)0 ? dr[j] : (T)0;                                      \
                        ra[j] += g;                                                             \
                        rb[j] += g;                                                             \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
            for (int64_t r = 0; r < p; r++) {                                                   \
                memcpy(out_a + r * H + j0, la + r * BLOCK, w * sizeof(T));                      \
                memcpy(out_b + r * H + j0, lb + r * BLOCK, w * sizeof(T));                      \
            }                                                                                   \
        }                                                                                       \
        free(la);                                                                               \
    }                                                                                           \
}

KERNELS(float, f32)
KERNELS(double, f64)
