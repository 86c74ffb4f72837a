// bench/own_kernel.cpp — would a hand-written matrix-product kernel beat OpenBLAS's at the
// step's shapes, and how far are both from what the cores can do?
//
// The products are ~85% of a training step and attnlab hands them to OpenBLAS, as PyTorch does,
// so the step can only get much faster than the PyTorch peer's with faster products. This
// measures the ceiling — the cores' peak of fused multiply-adds, twelve independent 8-float
// chains per core and nothing else — and times, one thread, OpenBLAS against a textbook
// AVX2 product written the way BLIS and OpenBLAS write theirs: both operands packed into
// panels (A in 6-row, B in 16-column ones, 256 deep), a 6 × 16 block of the result kept in
// twelve registers while 256 multiply-adds per element run through it. The shapes are one
// thread's half of the nine products of the bench model's step (kStepProducts, bench/micro.h).
// The hand-written product is checked against OpenBLAS's result before it is timed.
//
//   cmake --build build --target bench_own_kernel
//   build/bench_own_kernel            # x86-64 with AVX2 and FMA only
//
// Result: docs/benchmarks.md ("a hand-written kernel against OpenBLAS").
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/threads.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

namespace {

using attn::bench::seconds;

constexpr int MR = 6, NR = 16, KC = 256, MC = 144, NC = 2048;

// Fused multiply-adds per second on one core: 12 chains of 8 floats, as many as keep both FMA
// units busy through their latency.
__attribute__((target("avx2,fma"))) double fma_gflops_one_core() {
  __m256 acc[12];
  for (int j = 0; j < 12; j++) acc[j] = _mm256_set1_ps(0.001f * j);
  const __m256 m = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-7f);
  const long n = 50'000'000;
  const double t = seconds();
  for (long i = 0; i < n; i++)
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) acc[j] = _mm256_fmadd_ps(acc[j], m, c);
  const double s = seconds() - t;
  volatile float sink = 0;  // the chains' results are used, so they are computed
  for (int j = 0; j < 12; j++) sink = sink + acc[j][0];
  return 2.0 * 8 * 12 * n / s / 1e9;
}

// out (6 x 16 block at c, row stride ldc) = alpha * Apanel Bpanel (+ beta * out), K deep.
template <bool UseBeta>
__attribute__((target("avx2,fma"), noinline)) void kernel_6x16(int K, const float* __restrict a,
                                                                const float* __restrict b, float* c, long ldc,
                                                                float alpha, float beta) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int k = 0; k < K; k++, a += MR, b += NR) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00), c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10), c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20), c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30), c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40), c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50), c51 = _mm256_fmadd_ps(ai, b1, c51);
  }
  const __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < 2; j++) {
      __m256 r = _mm256_mul_ps(va, acc[2 * i + j]);
      if (UseBeta) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + i * ldc + 8 * j), r);
      _mm256_storeu_ps(c + i * ldc + 8 * j, r);
    }
}

// Rows i0.. of op(A) (m of them), depths k0.. (kc), into 6-row panels, depth-major; short
// panels padded with zeros. op(A)(i, k) = trans ? a[k lda + i] : a[i lda + k]. Each loop reads
// its source in the order it is stored.
void pack_a(float* __restrict dst, const float* __restrict a, long lda, bool trans, int i0, int m, int k0, int kc) {
  for (int ip = 0; ip < m; ip += MR, dst += MR * kc) {
    const int mr = std::min(MR, m - ip);
    if (trans) {
      for (int k = 0; k < kc; k++) {
        const float* src = a + long(k0 + k) * lda + i0 + ip;
        for (int i = 0; i < mr; i++) dst[k * MR + i] = src[i];
        for (int i = mr; i < MR; i++) dst[k * MR + i] = 0.f;
      }
    } else {
      for (int i = 0; i < mr; i++) {
        const float* src = a + long(i0 + ip + i) * lda + k0;
        for (int k = 0; k < kc; k++) dst[k * MR + i] = src[k];
      }
      for (int i = mr; i < MR; i++)
        for (int k = 0; k < kc; k++) dst[k * MR + i] = 0.f;
    }
  }
}

// Columns j0.. of op(B) (n of them), depths k0.. (kc), into 16-column panels, depth-major.
// op(B)(k, j) = trans ? b[j ldb + k] : b[k ldb + j].
void pack_b(float* __restrict dst, const float* __restrict b, long ldb, bool trans, int k0, int kc, int j0, int n) {
  for (int jp = 0; jp < n; jp += NR, dst += NR * kc) {
    const int nr = std::min(NR, n - jp);
    if (!trans) {
      for (int k = 0; k < kc; k++) {
        const float* src = b + long(k0 + k) * ldb + j0 + jp;
        for (int j = 0; j < nr; j++) dst[k * NR + j] = src[j];
        for (int j = nr; j < NR; j++) dst[k * NR + j] = 0.f;
      }
    } else {
      for (int j = 0; j < nr; j++) {
        const float* src = b + long(j0 + jp + j) * ldb + k0;
        for (int k = 0; k < kc; k++) dst[k * NR + j] = src[k];
      }
      for (int j = nr; j < NR; j++)
        for (int k = 0; k < kc; k++) dst[k * NR + j] = 0.f;
    }
  }
}

// out (M x N) = alpha op(A) op(B) + beta out, the loop order of BLIS: a 256-deep slice of B
// packed (L3), then 144 rows of A packed (L2), then 16-column panels of B (L1) against each
// 6-row panel of A.
void own_product(float* out, const float* a, const float* b, int M, int N, int K, bool ta, bool tb, float alpha,
                 float beta) {
  const long lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
  // The packing buffers, allocated once (as a BLAS keeps its own): 144 KiB and 2 MiB. One
  // thread at a time, as this benchmark calls it.
  alignas(64) static float Ap[MC * KC];
  alignas(64) static float Bp[KC * NC];
  alignas(32) float edge[MR * NR];
  for (int jc = 0; jc < N; jc += NC) {
    const int nc = std::min(NC, N - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      const float bet = pc == 0 ? beta : 1.f;  // later slices add to the first's result
      pack_b(Bp, b, ldb, tb, pc, kc, jc, nc);
      for (int ic = 0; ic < M; ic += MC) {
        const int mc = std::min(MC, M - ic);
        pack_a(Ap, a, lda, ta, ic, mc, pc, kc);
        for (int jr = 0; jr < nc; jr += NR)
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = std::min(MR, mc - ir), nr = std::min(NR, nc - jr);
            float* c = out + long(ic + ir) * ldc + jc + jr;
            const float *ap = Ap + long(ir) * kc, *bp = Bp + long(jr) * kc;
            if (mr == MR && nr == NR && bet == 0.f) {
              kernel_6x16<false>(kc, ap, bp, c, ldc, alpha, 0.f);
            } else if (mr == MR && nr == NR) {
              kernel_6x16<true>(kc, ap, bp, c, ldc, alpha, bet);
            } else {  // a block at the edge: through a full-size buffer
              kernel_6x16<false>(kc, ap, bp, edge, NR, alpha, 0.f);
              for (int i = 0; i < mr; i++)
                for (int j = 0; j < nr; j++)
                  c[i * ldc + j] = edge[i * NR + j] + (bet == 0.f ? 0.f : bet * c[i * ldc + j]);
            }
          }
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  attn::bench::start(argc, argv);
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::puts("bench_own_kernel: this CPU has no AVX2 and FMA; nothing to measure");
    return 0;
  }
  std::printf("fused multiply-add peak, GFLOP/s per core:");
  for (int r = 0; r < 3; r++) std::printf(" %.1f", fma_gflops_one_core());
  double both = 0;
#pragma omp parallel num_threads(2) reduction(+ : both)
  both = fma_gflops_one_core();
  std::printf("; two cores at once %.1f\n", both);

  attn::set_threads(1);  // matmul_forward then calls OpenBLAS on this thread alone
  std::printf("one thread, best of 10 in each of 3 alternating rounds (GFLOP/s): OpenBLAS | hand-written\n");
  double t_blas = 0, t_own = 0;
  for (const attn::bench::Product& whole : attn::bench::kStepProducts) {
    const attn::bench::Product p = attn::bench::one_of_two_threads(whole);
    std::vector<float> a(size_t(p.M) * p.K), b(size_t(p.K) * p.N), ref(size_t(p.M) * p.N), own(ref.size());
    for (size_t i = 0; i < a.size(); i++) a[i] = float(int(i * 7919 % 23) - 11) * 0.01f;
    for (size_t i = 0; i < b.size(); i++) b[i] = float(int(i * 104729 % 19) - 9) * 0.01f;
    // Same result as OpenBLAS's, to float rounding, both as a product and accumulating into it.
    for (float beta : {0.f, 1.f}) {
      for (size_t i = 0; i < ref.size(); i++) ref[i] = own[i] = float(i % 5);
      attn::matmul_forward(ref.data(), a.data(), b.data(), p.M, p.N, p.K, p.trans_a, p.trans_b, 0.5f, beta);
      own_product(own.data(), a.data(), b.data(), p.M, p.N, p.K, p.trans_a, p.trans_b, 0.5f, beta);
      double err = 0, scale = 0;
      for (size_t i = 0; i < ref.size(); i++)
        err = std::max(err, double(std::fabs(own[i] - ref[i]))), scale = std::max(scale, double(std::fabs(ref[i])));
      if (!(err <= 1e-5 * scale)) {
        std::fprintf(stderr, "bench_own_kernel: %s: hand-written product differs from OpenBLAS by %g (largest %g)\n",
                     p.what, err, scale);
        return 1;
      }
    }
    const double flop = 2.0 * p.M * p.N * p.K;
    std::printf("  %-24s %5d x %4d x %4d %c%c ", p.what, p.M, p.N, p.K, p.trans_a ? 'T' : 'N', p.trans_b ? 'T' : 'N');
    double best_blas = 1e9, best_own = 1e9;
    for (int round = 0; round < 3; round++) {
      double rb = 1e9, ro = 1e9;
      for (int rep = 0; rep < 10; rep++) {
        double t = seconds();
        attn::matmul_forward(ref.data(), a.data(), b.data(), p.M, p.N, p.K, p.trans_a, p.trans_b);
        rb = std::min(rb, seconds() - t);
        t = seconds();
        own_product(own.data(), a.data(), b.data(), p.M, p.N, p.K, p.trans_a, p.trans_b, 1.f, 0.f);
        ro = std::min(ro, seconds() - t);
      }
      std::printf(" %5.1f | %5.1f ", flop / rb / 1e9, flop / ro / 1e9);
      best_blas = std::min(best_blas, rb), best_own = std::min(best_own, ro);
    }
    std::printf("\n");
    t_blas += best_blas, t_own += best_own;
  }
  std::printf("all nine, best times: OpenBLAS %.1f ms, hand-written %.1f ms (%.2fx)\n", 1e3 * t_blas, 1e3 * t_own,
              t_blas / t_own);
}

#else
int main() {
  std::puts("bench_own_kernel: x86-64 (GCC or Clang) only");
  return 0;
}
#endif
