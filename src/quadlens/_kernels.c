/* The fused CPU training step (quadlens/_kernels.py): everything between the circuit's forward
 * and its backward, for one model, in two passes over its training pairs.
 *
 * The pairs are cut into chunks of CHUNK pairs. A chunk's hidden activations [CHUNK, H] are
 * formed, used and dropped while they are in the cache: no [N, H] tensor is ever written. Pass 1
 * (`fused_forward`) takes each chunk through the ReLU (or x^2), the product with O and the direct
 * path to its logits minus their maximum, in float64. Between the passes the caller takes the
 * exponential and the row sums with torch (its vectorised exp). Pass 2 (`fused_backward`) forms
 * each chunk's activations again, the gradient of the mean cross-entropy, its product with the
 * activations (into dO) and with O (dh), and the sums of the pre-activations' gradient over the
 * pairs that share token a and token b.
 *
 * The three large products of a chunk are single-threaded BLAS calls (sgemm_/dgemm_ of the BLAS
 * inside torch, whose address the caller passes: MKL in torch's x86 builds), made in the
 * orientations that run fastest on such small blocks. The threads share the work by parts: NPART
 * fixed runs of consecutive chunks, each summing into its own partial gradients, which are then
 * added in part order. Which thread takes which part changes nothing, so no result depends on the
 * number of threads; the results do depend on CHUNK and NPART, which are constants here.
 *
 * Built without -ffast-math and with -ffp-contract=off. Parallel loops run on the OpenMP runtime
 * that torch has loaded (this library is loaded after torch and its libgomp.so.1 resolves to
 * torch's), so the kernels and torch's own work share one pool of threads; inside a parallel
 * region MKL runs sequentially.
 *
 * One model: N training pairs, H neurons (d_mlp), p tokens. Index arrays a, b, y [N] (int64) hold
 * each pair's tokens and label. Every array is C-contiguous.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 128 /* pairs per chunk */
#define NPART 4   /* runs of chunks with their own partial sums */

typedef void (*gemm_f32)(const char *, const char *, const int *, const int *, const int *,
                         const float *, const float *, const int *, const float *, const int *,
                         const float *, float *, const int *);
typedef void (*gemm_f64)(const char *, const char *, const int *, const int *, const int *,
                         const double *, const double *, const int *, const double *,
                         const int *, const double *, double *, const int *);
static gemm_f32 sgemm_ptr = 0;
static gemm_f64 dgemm_ptr = 0;

/* The Fortran BLAS gemm routines to call (column-major C = alpha op(A) op(B) + beta C). */
void set_gemm(void *s, void *d) {
    sgemm_ptr = (gemm_f32)s;
    dgemm_ptr = (gemm_f64)d;
}

int n_parts(void) { return NPART; }

static void gemm_call_f32(char ta, char tb, int m, int n, int k, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc) {
    float one = 1.0f;
    sgemm_ptr(&ta, &tb, &m, &n, &k, &one, A, &lda, B, &ldb, &beta, C, &ldc);
}

static void gemm_call_f64(char ta, char tb, int m, int n, int k, const double *A, int lda,
                          const double *B, int ldb, double beta, double *C, int ldc) {
    double one = 1.0;
    dgemm_ptr(&ta, &tb, &m, &n, &k, &one, A, &lda, B, &ldb, &beta, C, &ldc);
}

static void *scratch(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

#define KERNELS(T, SUF)                                                                         \
/* h [B, H] = act(Ub[a] + V[b]) for the B pairs of a chunk (act: ReLU, or x^2 if square). */    \
static void chunk_hidden_##SUF(const T *Ub, const T *V, const int64_t *a, const int64_t *b,     \
                               T *h, int64_t B, int64_t H, int square) {                        \
    for (int64_t i = 0; i < B; i++) {                                                           \
        const T *ua = Ub + a[i] * H, *vb = V + b[i] * H;                                        \
        T *out = h + i * H;                                                                     \
        if (square) {                                                                           \
            for (int64_t j = 0; j < H; j++) {                                                   \
                T x = ua[j] + vb[j];                                                            \
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
/* Pass 1. z [N, p] = logits - max(logits) in float64 and z_label [N] = z at the label, where   \
 * logits = (act(Ub[a] + V[b]) O + (D_a[a] + D_b[b])) + bias in T; Ub = U + b_in [p, H],        \
 * V [p, H], Ot = O transposed [p, H], D [2p, p] stacks D_a over D_b, bias [p]. */              \
void fused_forward_##SUF(const T *Ub, const T *V, const T *Ot, const T *D, const T *bias,      \
                         const int64_t *a, const int64_t *b, const int64_t *y, double *z,      \
                         double *z_label, int64_t N, int64_t H, int64_t p, int square) {        \
    int64_t nch = (N + CHUNK - 1) / CHUNK;                                                      \
    _Pragma("omp parallel")                                                                     \
    {                                                                                           \
        T *h = (T *)scratch(CHUNK * H * sizeof(T)), *Lt = (T *)scratch(CHUNK * p * sizeof(T)); \
        _Pragma("omp for schedule(static)")                                                     \
        for (int64_t c = 0; c < nch; c++) {                                                     \
            int64_t n0 = c * CHUNK, B = (N < n0 + CHUNK ? N : n0 + CHUNK) - n0;                 \
            chunk_hidden_##SUF(Ub, V, a + n0, b + n0, h, B, H, square);                         \
            /* Lt [p, B] = Ot h^T (column-major: h O, B x p) */                                 \
            gemm_call_##SUF('T', 'N', (int)B, (int)p, (int)H, h, (int)H, Ot, (int)H, (T)0, Lt,  \
                            (int)B);                                                            \
            for (int64_t i = 0; i < B; i++) {                                                   \
                int64_t n = n0 + i;                                                             \
                const T *da = D + a[n] * p, *db = D + (p + b[n]) * p;                           \
                double *zr = z + n * p, m = -__builtin_inf();                                   \
                for (int64_t k = 0; k < p; k++) {                                               \
                    T v = (Lt[k * B + i] + (da[k] + db[k])) + bias[k];                          \
                    zr[k] = (double)v;                                                          \
                    m = (double)v > m ? (double)v : m;                                          \
                }                                                                               \
                for (int64_t k = 0; k < p; k++)                                                 \
                    zr[k] -= m;                                                                 \
                z_label[n] = zr[y[n]];                                                          \
            }                                                                                   \
        }                                                                                       \
        free(h);                                                                                \
        free(Lt);                                                                               \
    }                                                                                           \
}                                                                                               \
                                                                                                \
/* Pass 2. From e = exp(z) [N, p] (float64) and its row sums total [N]: G = e / (total N) -      \
 * onehot(y) / N (in T), the gradient of the mean cross-entropy, and the gradients of the        \
 * circuit's pieces, each the sum of NPART partial sums added in part order, one after another   \
 * in `out` (2p H + 2p p + p H + p elements): dUV [2p, H] (the pre-activations' gradient, dh     \
 * where h > 0 for ReLU and (dh x) 2 for x^2, summed over the pairs sharing token a, over those  \
 * sharing b), dD [2p, p] (G summed likewise), dOt [p, H] (dO transposed: h^T G) and dbias [p]   \
 * (G summed over the pairs). `parts` is scratch for the partial sums: NPART times as many. */   \
void fused_backward_##SUF(const T *Ub, const T *V, const T *Ot, const double *e,               \
                          const double *total, const int64_t *a, const int64_t *b,              \
                          const int64_t *y, T *parts, T *out, int64_t N, int64_t H, int64_t p,  \
                          int square) {                                                         \
    int64_t nch = (N + CHUNK - 1) / CHUNK;                                                      \
    int64_t per = 2 * p * H + 2 * p * p + p * H + p;                                            \
    double inv = -1.0 / (double)N;                                                              \
    _Pragma("omp parallel")                                                                     \
    {                                                                                           \
        T *h = (T *)scratch(CHUNK * H * sizeof(T)), *dh = (T *)scratch(CHUNK * H * sizeof(T)); \
        T *G = (T *)scratch(CHUNK * p * sizeof(T));                                             \
        _Pragma("omp for schedule(static)")                                                     \
        for (int64_t part = 0; part < NPART; part++) {                                          \
            T *pUV = parts + part * per, *pD = pUV + 2 * p * H, *pO = pD + 2 * p * p;           \
            T *pb = pO + p * H;                                                                 \
            memset(pUV, 0, per * sizeof(T));                                                    \
            for (int64_t c = part * nch / NPART; c < (part + 1) * nch / NPART; c++) {           \
                int64_t n0 = c * CHUNK, B = (N < n0 + CHUNK ? N : n0 + CHUNK) - n0;             \
                const int64_t *ca = a + n0, *cb = b + n0;                                       \
                chunk_hidden_##SUF(Ub, V, ca, cb, h, B, H, square);                             \
                for (int64_t i = 0; i < B; i++) {                                               \
                    int64_t n = n0 + i, yi = y[n];                                              \
                    double den = total[n] * (double)N;                                          \
                    const double *er = e + n * p;                                               \
                    T *g = G + i * p, *ra = pD + ca[i] * p, *rb = pD + (p + cb[i]) * p;         \
                    for (int64_t k = 0; k < p; k++)                                             \
                        g[k] = (T)(er[k] / den);                                                \
                    g[yi] = (T)(er[yi] / den + inv);                                            \
                    for (int64_t k = 0; k < p; k++) {                                           \
                        ra[k] += g[k];                                                          \
                        rb[k] += g[k];                                                          \
                        pb[k] += g[k];                                                          \
                    }                                                                           \
                }                                                                               \
                /* pO [p, H] += G^T h (column-major: h^T G, H x p) */                           \
                gemm_call_##SUF('N', 'T', (int)H, (int)p, (int)B, h, (int)H, G, (int)p, (T)1,  \
                                pO, (int)H);                                                    \
                /* dh [B, H] = G O^T (column-major: O G^T, H x B) */                            \
                gemm_call_##SUF('N', 'N', (int)H, (int)B, (int)p, Ot, (int)H, G, (int)p, (T)0, \
                                dh, (int)H);                                                    \
                for (int64_t i = 0; i < B; i++) {                                               \
                    T *restrict ra = pUV + ca[i] * H, *restrict rb = pUV + (p + cb[i]) * H;     \
                    const T *hr = h + i * H, *dr = dh + i * H;                                  \
                    if (square) {                                                               \
                        const T *ua = Ub + ca[i] * H, *vb = V + cb[i] * H;                      \
                        for (int64_t j = 0; j < H; j++) {                                       \
                            T g = (dr[j] * (ua[j] + vb[j])) * (T)2;                             \
                            ra[j] += g;                                                         \
                            rb[j] += g;                                                         \
                        }                                                                       \
                    } else {                                                                    \
                        for (int64_t j = 0; j < H; j++) {                                       \
                            T g = hr[j] > (T)0 ? dr[j] : (T)0;                                  \
                            ra[j] += g;                                                         \
                            rb[j] += g;                                                         \
                        }                                                                       \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        free(h);                                                                                \
        free(dh);                                                                               \
        free(G);                                                                                \
        /* the parts added in part order (out is laid out like one part) */                     \
        _Pragma("omp for schedule(static)")                                                     \
        for (int64_t j = 0; j < per; j++) {                                                     \
            T s = parts[j];                                                                     \
            for (int64_t q = 1; q < NPART; q++)                                                 \
                s += parts[q * per + j];                                                        \
            out[j] = s;                                                                         \
        }                                                                                       \
    }                                                                                           \
}

KERNELS(float, f32)
KERNELS(double, f64)
