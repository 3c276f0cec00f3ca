/* The dense gaussian masked table of MMF (mmf_core/models/masks.py, _GaussianTable) in one
 * pass over the (n, K, R) table each way, for float32 CPU tensors.
 *
 * Built and loaded by mmf_core/models/native.py; mmf_core/models/masks.py checks, before its
 * first use in a process, that it gives the ATen path's numbers bit for bit. That holds
 * because every step below is the same single IEEE float operation, in the same order, as
 * one of the ATen ops it replaces (compiled with -ffp-contract=off: no fused multiply-adds),
 * and the exponential is the one ATen calls on this build (MKL's vsExp, passed in as a
 * function pointer). The sums over k
 * (gradient of A) and over r (gradient of u) stay with ATen: their order of additions is
 * ATen's own and this file does not reproduce it.
 *
 *   forward   nd = u[i,k] * center - t[k,r]              (u * center, then the broadcast sub)
 *             q  = max((-0.5 * nd) * nd + 0, -87)          (addcmul into a zero, clamp_)
 *             e  = max(exp(q) - exp(-87), 0)               (exp_, sub_, clamp_: _FlushedExp)
 *             T  = A[i,r] * (e * c)                        (M = e * c, then A[:, None, :] * M)
 *   backward  gM = g * (e * c)                             (then ATen: gA = gM.sum(1))
 *             gq = (((g * A[i,r]) * c) * e) * nd           (then ATen: gu = gq.sum(-1) * -center)
 *
 * One call serves both sides of the product (or one). Their rows are split over `threads`
 * OpenMP threads (the libgomp torch loaded, so the same pool of threads), one contiguous
 * block each; the caller passes 1 when the tables together are under ATen's grain size, as
 * ATen's elementwise ops do. A thread's block of rows may span both sides.
 */
#include <omp.h>
#include <stddef.h>

typedef void (*vexp_fn)(const int *n, const float *a, float *r); /* Fortran ABI of MKL's vsExp */

enum { TILE = 16384 }; /* elements per call of vsExp: its ~1 us a call is paid once per 64 KB */

static void forward_rows(long i0, long i1, long K, long R, const float *A, const float *u, const float *t, float center,
                         float c, float exp_m87, float *T, float *e, vexp_fn vexp) {
    const long KR = K * R;
    const long step = KR >= TILE ? 1 : TILE / KR;
    for (long b0 = i0; b0 < i1; b0 += step) {
        const long b1 = b0 + step < i1 ? b0 + step : i1;
        for (long i = b0; i < b1; i++) {
            for (long k = 0; k < K; k++) {
                const float uc = u[i * K + k] * center;
                const float *tk = t + k * R;
                float *qk = e + i * KR + k * R;
                for (long r = 0; r < R; r++) {
                    const float nd = uc - tk[r];
                    const float q = (-0.5f * nd) * nd + 0.0f;
                    qk[r] = q < -87.0f ? -87.0f : q;
                }
            }
        }
        const int m = (int)((b1 - b0) * KR);
        vexp(&m, e + b0 * KR, e + b0 * KR);
        for (long i = b0; i < b1; i++) {
            const float *Ai = A + i * R;
            for (long k = 0; k < K; k++) {
                float *ek = e + i * KR + k * R;
                float *Tk = T + i * KR + k * R;
                for (long r = 0; r < R; r++) {
                    float v = ek[r] - exp_m87;
                    v = v < 0.0f ? 0.0f : v;
                    ek[r] = v;
                    Tk[r] = Ai[r] * (v * c);
                }
            }
        }
    }
}

static void backward_rows(long i0, long i1, long K, long R, const float *g, const float *A, const float *u,
                          const float *t, const float *e, float center, float c, float *gM, float *gq) {
    const long KR = K * R;
    for (long i = i0; i < i1; i++) {
        const float *Ai = A + i * R;
        for (long k = 0; k < K; k++) {
            const long o = i * KR + k * R;
            const float *gk = g + o;
            const float *ek = e + o;
            if (gM != NULL) {
                float *out = gM + o;
                for (long r = 0; r < R; r++) out[r] = gk[r] * (ek[r] * c);
            }
            if (gq != NULL) {
                const float uc = u[i * K + k] * center;
                const float *tk = t + k * R;
                float *out = gq + o;
                for (long r = 0; r < R; r++) out[r] = (((gk[r] * Ai[r]) * c) * ek[r]) * (uc - tk[r]);
            }
        }
    }
}

/* This thread's rows of [0, n): one contiguous block per thread, as at::parallel_for splits them. */
static void my_rows(long n, long *i0, long *i1) {
    const long nt = omp_get_num_threads(), id = omp_get_thread_num();
    const long chunk = (n + nt - 1) / nt;
    *i0 = id * chunk < n ? id * chunk : n;
    *i1 = *i0 + chunk < n ? *i0 + chunk : n;
}

/* Rows [0, nA) of side 0, then nB rows of side 1 (nB may be 0), split over `threads` as one
 * range: two tables each under the grain size still share the threads. */
typedef void (*rows_fn)(long i0, long i1, int side, const void *args);

static void run_sides(long nA, long nB, int threads, rows_fn rows, const void *args) {
    if (threads <= 1) { /* no parallel region at all: even a one-thread region costs ~20 us next to torch's pool */
        rows(0, nA, 0, args);
        rows(0, nB, 1, args);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        long i0, i1;
        my_rows(nA + nB, &i0, &i1);
        if (i0 < nA)
            rows(i0, i1 < nA ? i1 : nA, 0, args);
        if (i1 > nA)
            rows((i0 > nA ? i0 : nA) - nA, i1 - nA, 1, args);
    }
}

struct forward_args {
    long K, R;
    const float *F[2], *u[2], *t;
    float center, c, exp_m87;
    float *T[2], *e[2];
    vexp_fn vexp;
};

static void forward_side(long i0, long i1, int s, const void *p) {
    const struct forward_args *a = p;
    forward_rows(i0, i1, a->K, a->R, a->F[s], a->u[s], a->t, a->center, a->c, a->exp_m87, a->T[s], a->e[s], a->vexp);
}

void mmf_gaussian_tables_forward(long nA, long nB, long K, long R, const float *A, const float *uA, const float *B,
                                 const float *uB, const float *t, float center, float c, float exp_m87, float *TA,
                                 float *eA, float *TB, float *eB, void *vexp_ptr, int threads) {
    const struct forward_args a = {K, R, {A, B}, {uA, uB}, t, center, c, exp_m87,
                                   {TA, TB}, {eA, eB}, (vexp_fn)vexp_ptr};
    run_sides(nA, nB, threads, forward_side, &a);
}

struct backward_args {
    long K, R;
    const float *g[2], *F[2], *u[2], *e[2], *t;
    float center, c;
    float *gM[2], *gq[2];
};

static void backward_side(long i0, long i1, int s, const void *p) {
    const struct backward_args *a = p;
    backward_rows(i0, i1, a->K, a->R, a->g[s], a->F[s], a->u[s], a->t, a->e[s], a->center, a->c, a->gM[s], a->gq[s]);
}

/* gMA / gqA / gMB / gqB may be NULL: that gradient is not wanted. */
void mmf_gaussian_tables_backward(long nA, long nB, long K, long R, const float *gA, const float *A, const float *uA,
                                  const float *eA, const float *gB, const float *B, const float *uB, const float *eB,
                                  const float *t, float center, float c, float *gMA, float *gqA, float *gMB, float *gqB,
                                  int threads) {
    const struct backward_args a = {K, R, {gA, gB}, {A, B}, {uA, uB}, {eA, eB}, t, center, c, {gMA, gMB}, {gqA, gqB}};
    run_sides(nA, nB, threads, backward_side, &a);
}
