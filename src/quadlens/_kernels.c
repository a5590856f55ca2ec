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
 * The circuit's own forward and backward (`circuit_forward`, `circuit_backward`: the products of
 * the weights that give U, V, O and the direct path, and the chain rule back to each parameter,
 * science.md §1) are here too: some twenty small products, each one single-threaded BLAS call (a
 * "job"), the independent ones of a stage shared among the threads, a barrier between stages.
 * Through torch each product was split over the threads and paid the dispatcher, and the circuit
 * took a quarter of the step at a third of the machine's matmul rate. A job is a fixed piece of
 * work (which thread runs it changes nothing), so these bits do not depend on the thread count.
 *
 * One model: N training pairs, H neurons (d_mlp), p tokens, d = d_model, nh heads of d_head e.
 * Index arrays a, b, y [N] (int64) hold each pair's tokens and label. Every array is C-contiguous.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Subnormal floats are flushed to zero inside the kernels (FTZ and DAZ in each thread's MXCSR,
 * set on entry to a parallel region and restored on leaving it, so torch's own work never sees
 * the change). Once a model fits its training pairs, the off-label probabilities / N fall below
 * float32's smallest normal number (1.2e-38) for more and more pairs; x86 cores handle subnormal
 * operands and results in microcode, and the backward pass ran 10-20 times slower (measured:
 * 1.6 ms at epoch 0, 38 ms by epoch 1,000). What is flushed is below 1.2e-38 in a gradient whose
 * entries are ~1e-4, so no trained weight can tell. */
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FLUSH_BEGIN unsigned int saved_csr = _mm_getcsr(); _mm_setcsr(saved_csr | 0x8040u);
#define FLUSH_END _mm_setcsr(saved_csr);
#else
#define FLUSH_BEGIN
#define FLUSH_END
#endif

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

/* Row-major C [M, N] = alpha op(A) op(B) + beta C, where op(X) is X, or X transposed if its flag
 * is 'T' (X stored [K, M] or [N, K]); lda, ldb, ldc are row strides. Column-major BLAS computes
 * the transpose: C^T = op(B)^T op(A)^T. */
static void mm_f32(char ta, char tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_ptr(&tb, &ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc);
}

static void mm_f64(char ta, char tb, int M, int N, int K, double alpha, const double *A, int lda,
                   const double *B, int ldb, double beta, double *C, int ldc) {
    dgemm_ptr(&tb, &ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc);
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
        FLUSH_BEGIN                                                                             \
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
        FLUSH_END                                                                               \
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
        FLUSH_BEGIN                                                                             \
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
        FLUSH_END                                                                               \
    }                                                                                           \
}

KERNELS(float, f32)
KERNELS(double, f64)

/* A stage of the circuit: jobs 0 .. n-1, shared among the threads as they come free. */
#define STAGE(n) _Pragma("omp for schedule(dynamic, 1)") for (int job = 0; job < (n); job++)

#define CIRCUIT(T, SUF)                                                                         \
/* The circuit of one model (science.md §1; fastpath's docstring), from its parameters W_E [p,  \
 * d], W_pos [2, d], W_V [nh, d, e], W_O [nh, e, d], W_in [d, H], b_in [H], W_out [H, d], b_out  \
 * [d], W_U [d, p]. Writes E [2p, d] (W_E + W_pos[0] over W_E + W_pos[1]), Wv [d, nh e] (W_V's   \
 * heads side by side), W_OV = Wv W_O [d, d], R [2p, d] (1/2 E W_OV, plus E on the b rows),     \
 * UVb [2p, H] (R W_in, plus b_in on the a rows: U + b_in over V), D [2p, p] = R W_U (D_a over   \
 * D_b), Ot [p, H] = (W_out W_U)^T and bias [p] = b_out W_U. */                                 \
void circuit_forward_##SUF(const T *W_E, const T *W_pos, const T *W_V, const T *W_O,            \
                           const T *W_in, const T *b_in, const T *W_out, const T *b_out,        \
                           const T *W_U, T *E, T *Wv, T *W_OV, T *R, T *UVb, T *D, T *Ot,       \
                           T *bias, int64_t p, int64_t d, int64_t nh, int64_t e, int64_t H) {   \
    int P = (int)p, Dm = (int)d, Hn = (int)H, he = (int)(nh * e), H2 = (int)(H / 2);            \
    _Pragma("omp parallel")                                                                     \
    {                                                                                           \
        FLUSH_BEGIN                                                                             \
        STAGE(4) {                                                                              \
            if (job == 0) {                                                                     \
                for (int64_t h = 0; h < nh; h++)                                                \
                    for (int64_t i = 0; i < d; i++)                                             \
                        memcpy(Wv + i * nh * e + h * e, W_V + (h * d + i) * e, e * sizeof(T));  \
                mm_##SUF('N', 'N', Dm, Dm, he, 1, Wv, he, W_O, Dm, 0, W_OV, Dm);                \
            } else if (job == 3) {                                                              \
                for (int64_t t = 0; t < 2 * p; t++)                                             \
                    for (int64_t i = 0; i < d; i++)                                             \
                        E[t * d + i] = W_E[(t % p) * d + i] + W_pos[(t / p) * d + i];           \
                for (int64_t k = 0; k < p; k++) {                                               \
                    T s = 0;                                                                    \
                    for (int64_t i = 0; i < d; i++)                                             \
                        s += b_out[i] * W_U[i * p + k];                                         \
                    bias[k] = s;                                                                \
                }                                                                               \
            } else { /* the two halves of Ot's neurons: Ot = W_U^T W_out^T */                   \
                int j0 = job == 1 ? 0 : H2, n = job == 1 ? H2 : Hn - H2;                        \
                mm_##SUF('T', 'T', P, n, Dm, 1, W_U, P, W_out + j0 * d, Dm, 0, Ot + j0, Hn);    \
            }                                                                                   \
        }                                                                                       \
        STAGE(2) { /* R, a rows and b rows */                                                   \
            T *Ej = E + job * p * d, *Rj = R + job * p * d;                                     \
            mm_##SUF('N', 'N', P, Dm, Dm, (T)0.5, Ej, Dm, W_OV, Dm, 0, Rj, Dm);                 \
            if (job == 1)                                                                       \
                for (int64_t i = 0; i < p * d; i++)                                             \
                    Rj[i] += Ej[i];                                                             \
        }                                                                                       \
        STAGE(3) {                                                                              \
            if (job < 2) { /* U + b_in, then V */                                               \
                T *out = UVb + job * p * H;                                                     \
                mm_##SUF('N', 'N', P, Hn, Dm, 1, R + job * p * d, Dm, W_in, Hn, 0, out, Hn);    \
                if (job == 0)                                                                   \
                    for (int64_t t = 0; t < p; t++)                                             \
                        for (int64_t j = 0; j < H; j++)                                         \
                            out[t * H + j] += b_in[j];                                          \
            } else {                                                                            \
                mm_##SUF('N', 'N', 2 * P, P, Dm, 1, R, Dm, W_U, P, 0, D, P);                    \
            }                                                                                   \
        }                                                                                       \
        FLUSH_END                                                                               \
    }                                                                                           \
}                                                                                               \
                                                                                                \
/* The circuit's backward: from the gradients of the loss with respect to [U; V] (dUV [2p, H]), \
 * [D_a; D_b] (dD [2p, p]), O (given transposed, dOt [p, H]) and the logit bias (dbias [p]),     \
 * those of the parameters, one after another in `out` in the order W_E, W_pos, W_V, W_O, W_in,  \
 * b_in, W_out, b_out, W_U (each in its shape). E, W_OV and R are circuit_forward's; dR, dE [2p, \
 * d] and dW_OV [d, d] are scratch. */                                                          \
void circuit_backward_##SUF(const T *W_V, const T *W_O, const T *W_in, const T *W_out,         \
                            const T *b_out, const T *W_U, const T *E, const T *W_OV,            \
                            const T *R, const T *dUV, const T *dD, const T *dOt,                \
                            const T *dbias, T *dR, T *dE, T *dW_OV, T *out, int64_t p,          \
                            int64_t d, int64_t nh, int64_t e, int64_t H) {                      \
    int P = (int)p, Dm = (int)d, Hn = (int)H, E_ = (int)e, H2 = (int)(H / 2);                   \
    T *gE = out, *gpos = gE + p * d, *gV = gpos + 2 * d, *gO = gV + nh * d * e;                 \
    T *gin = gO + nh * e * d, *gbin = gin + d * H, *gout = gbin + H, *gbout = gout + H * d;     \
    T *gU = gbout + d;                                                                          \
    _Pragma("omp parallel")                                                                     \
    {                                                                                           \
        FLUSH_BEGIN                                                                             \
        STAGE(6) {                                                                              \
            if (job < 2) { /* dR = dUV W_in^T + dD W_U^T, a rows and b rows */                  \
                mm_##SUF('N', 'T', P, Dm, Hn, 1, dUV + job * p * H, Hn, W_in, Hn, 0,            \
                         dR + job * p * d, Dm);                                                 \
                mm_##SUF('N', 'T', P, Dm, P, 1, dD + job * p * p, P, W_U, P, 1,                 \
                         dR + job * p * d, Dm);                                                 \
            } else if (job < 4) { /* dW_in = R^T dUV, by halves of the neurons */               \
                int j0 = job == 2 ? 0 : H2, n = job == 2 ? H2 : Hn - H2;                        \
                mm_##SUF('T', 'N', Dm, n, 2 * P, 1, R, Dm, dUV + j0, Hn, 0, gin + j0, Hn);      \
            } else if (job == 4) { /* dW_U = R^T dD + W_out^T dO + b_out (x) dbias; db_out */   \
                mm_##SUF('T', 'N', Dm, P, 2 * P, 1, R, Dm, dD, P, 0, gU, P);                    \
                mm_##SUF('T', 'T', Dm, P, Hn, 1, W_out, Dm, dOt, Hn, 1, gU, P);                 \
                for (int64_t i = 0; i < d; i++) {                                               \
                    T s = 0;                                                                    \
                    for (int64_t k = 0; k < p; k++) {                                           \
                        gU[i * p + k] += b_out[i] * dbias[k];                                   \
                        s += W_U[i * p + k] * dbias[k];                                         \
                    }                                                                           \
                    gbout[i] = s;                                                               \
                }                                                                               \
            } else { /* dW_out = dO W_U^T; db_in = dU summed over the tokens */                 \
                mm_##SUF('T', 'T', Hn, Dm, P, 1, dOt, Hn, W_U, P, 0, gout, Dm);                 \
                for (int64_t j = 0; j < H; j++)                                                 \
                    gbin[j] = 0;                                                                \
                for (int64_t t = 0; t < p; t++)                                                 \
                    for (int64_t j = 0; j < H; j++)                                             \
                        gbin[j] += dUV[t * H + j];                                              \
            }                                                                                   \
        }                                                                                       \
        STAGE(2) { /* with dT = dR / 2: dE = dT W_OV^T (plus dR on the b rows), dW_OV = E^T dT */ \
            if (job == 0) {                                                                     \
                mm_##SUF('N', 'T', 2 * P, Dm, Dm, (T)0.5, dR, Dm, W_OV, Dm, 0, dE, Dm);         \
                for (int64_t i = p * d; i < 2 * p * d; i++)                                     \
                    dE[i] += dR[i];                                                             \
            } else {                                                                            \
                mm_##SUF('T', 'N', Dm, Dm, 2 * P, (T)0.5, E, Dm, dR, Dm, 0, dW_OV, Dm);         \
            }                                                                                   \
        }                                                                                       \
        STAGE(3) {                                                                              \
            if (job == 0) { /* dW_V[h] = dW_OV W_O[h]^T */                                      \
                for (int64_t h = 0; h < nh; h++)                                                \
                    mm_##SUF('N', 'T', Dm, E_, Dm, 1, dW_OV, Dm, W_O + h * e * d, Dm, 0,        \
                             gV + h * d * e, E_);                                               \
            } else if (job == 1) { /* dW_O[h] = W_V[h]^T dW_OV */                               \
                for (int64_t h = 0; h < nh; h++)                                                \
                    mm_##SUF('T', 'N', E_, Dm, Dm, 1, W_V + h * d * e, E_, dW_OV, Dm, 0,        \
                             gO + h * e * d, Dm);                                               \
            } else { /* dW_E: both positions' rows; dW_pos: each position's rows summed */      \
                for (int64_t i = 0; i < d; i++)                                                 \
                    gpos[i] = gpos[d + i] = 0;                                                  \
                for (int64_t t = 0; t < p; t++)                                                 \
                    for (int64_t i = 0; i < d; i++) {                                           \
                        T x = dE[t * d + i], y = dE[(p + t) * d + i];                           \
                        gE[t * d + i] = x + y;                                                  \
                        gpos[i] += x;                                                           \
                        gpos[d + i] += y;                                                       \
                    }                                                                           \
            }                                                                                   \
        }                                                                                       \
        FLUSH_END                                                                               \
    }                                                                                           \
}

CIRCUIT(float, f32)
CIRCUIT(double, f64)
