// core/kernels.cpp — plain loops and BLAS calls; the math of each kernel is in its comment.
#include <attnlab/core/kernels.h>

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <attnlab/core/threads.h>

// The elementwise and row-wise loops below are compiled three times (AVX-512, AVX2, baseline
// x86-64) and the loader picks the one the CPU runs (GCC/Clang function multiversioning through
// glibc's ifunc), so a portable build still uses the wide vector units. Elsewhere (other CPUs,
// C libraries without ifunc, compilers) it is a plain function.
//
// ATTNLAB_VECTOR_ISA=avx2 (a CMake option, so a build switch: an ifunc is resolved before main
// runs) leaves the AVX-512 copy out, so an AVX-512 machine runs the AVX2 loops an AMD Zen or an
// Intel Haswell runs: the stand-in for the other kind of CPU in `make test-alt` (their sums add
// in another order, docs/reliability.md).
#if defined(__x86_64__) && defined(__ELF__) && defined(__GLIBC__) && defined(__has_attribute) && \
    !defined(ATTNLAB_NO_MULTIVERSION)
#if __has_attribute(target_clones)
#if defined(ATTNLAB_VECTOR_ISA_AVX2)
#define ATTN_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define ATTN_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#define ATTN_MULTIVERSIONED 1
#endif
#endif
#ifndef ATTN_VECTOR_CLONES
#define ATTN_VECTOR_CLONES
#endif

namespace attn {

// Which of the ATTN_VECTOR_CLONES versions runs here: the features that define x86-64-v4 and
// -v3 (for benchmark reports, core/kernels.h). Without multiversioning, the build's own target.
const char* vector_isa() {
#if defined(ATTN_MULTIVERSIONED)
  __builtin_cpu_init();
#if !defined(ATTNLAB_VECTOR_ISA_AVX2)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
    return "AVX-512";
#endif
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2")) return "AVX2";
  return "baseline x86-64";
#else
  return "as compiled (no multiversioning)";
#endif
}

// Loops over more elements than this run on all threads (`--threads`); below it the cost of
// waking the other threads is more than the work (a few microseconds against ~1 ns per element).
// One threshold for every loop in this file (softmax's used to be half of it; its rows are
// independent, so where the split falls changes no result). Products have their own:
// blas_runs_single_threaded below.
static constexpr int64_t kParallelMin = 65536;
// On a `parallel for simd` the threshold is `if (parallel : ...)`, never a bare `if`: since
// OpenMP 5.0 a bare if clause applies to the simd construct too, and where it is false GCC runs
// the scalar loop (Adam over a 256 × 256 weight ran 8× slower than over a larger one,
// docs/benchmarks.md, "The optimizer's passes").

typedef float v4 __attribute__((vector_size(16)));  // the width every SIMD x86 and ARM CPU has
static inline __attribute__((always_inline)) v4 load4(const float* x) {
  v4 v;
  std::memcpy(&v, x, sizeof v);  // unaligned load
  return v;
}

// Largest of x[0..n). GCC does not vectorise a max reduction over floats without
// -ffinite-math-only, so the 16 running maxima are four vectors of 4 floats, the width every SIMD
// x86 and ARM CPU has (one 16-float vector is lowered to scalar code with spills where the CPU
// lacks that width: docs/benchmarks.md, "What was tried").
static inline __attribute__((always_inline)) float row_max(const float* x, int64_t n) {
  const float ninf = -std::numeric_limits<float>::infinity();
  v4 acc[4];
  for (auto& a : acc) a = v4{ninf, ninf, ninf, ninf};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 4; k++) {
      const v4 v = load4(x + i + 4 * k);
      acc[k] = acc[k] < v ? v : acc[k];
    }
  for (; i + 4 <= n; i += 4) {  // a row of 24 (training's scores) is 16 + 8: no scalar tail
    const v4 v = load4(x + i);
    acc[0] = acc[0] < v ? v : acc[0];
  }
  for (int k = 1; k < 4; k++) acc[0] = acc[0] < acc[k] ? acc[k] : acc[0];  // any order: the same max (up to a zero's sign)
  float m = ninf;
  for (; i < n; i++) m = m < x[i] ? x[i] : m;
  for (int l = 0; l < 4; l++) m = m < acc[0][l] ? acc[0][l] : m;
  return m;
}

// Σ_i term(i) over i in [0, n), in one order fixed here: 16 running sums as four 4-float vectors
// (four(i) gives terms i .. i+3), then the vectors and their lanes added pairwise, then the last
// n mod 4 terms (one(i)). The additions are the same in every vector version (a term that is a
// product may be fused into its addition where the CPU has FMA). An `omp simd` reduction over a
// short row added its 16 lanes one after another, a chain of dependent additions longer than
// the row's own work (the attention softmax's rows of 24).
template <class Four, class One>
static inline __attribute__((always_inline)) float lanes_sum(int64_t n, Four four, One one) {
  v4 acc[4] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 4; k++) acc[k] += four(i + 4 * k);
  for (; i + 4 <= n; i += 4) acc[0] += four(i);
  const v4 a = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  float sum = (a[0] + a[1]) + (a[2] + a[3]);
  for (; i < n; i++) sum += one(i);
  return sum;
}

// ---- matrix products -------------------------------------------------------------------

// OpenBLAS runs a product with M N K below 4 * 65536 on the calling thread alone (its
// GEMM_MULTITHREAD_THRESHOLD); attention's per-head products (e.g. 24 x 24 x 64) are all that
// small, so a batch of them is spread over the threads instead, one product per thread at a time.
// matmul_forward splits a product over the threads only above the same size.
static bool blas_runs_single_threaded(int M, int N, int K) { return int64_t(M) * N * K < 4 * 65536; }

// The rows r0..r1 of out's columns c0..c1 set to bias[c0..c1): the bias a linear layer's product adds onto.
static void fill_bias(float* out, int ldo, const float* bias, int r0, int r1, int c0, int c1) {
  for (int r = r0; r < r1; r++) std::copy(bias + c0, bias + c1, out + int64_t(r) * ldo + c0);
}

// out (M,N, rows ldo apart) = alpha op(a) op(b) + beta out, with each operand's rows lda / ldb
// apart: matmul_forward's product on matrices that may sit inside wider ones (attention heads
// side by side, matmul_heads).
// With a bias (N floats), out = alpha op(a) op(b) + bias broadcast over the rows (beta is then 1):
// each thread writes the bias into its own block of out just before its product adds onto it, so
// the block is in that core's cache and no serial pass over out comes first.
static void gemm(float* out, int ldo, const float* a, int lda, const float* b, int ldb, int M, int N, int K,
                 bool trans_a, bool trans_b, float alpha, float beta, const float* bias = nullptr) {
  if (M == 0 || N == 0) return;
  if (bias) beta = 1.f;  // the product adds onto the bias rows
  if (K == 0) {  // BLAS leaves out untouched when K = 0; the product is beta * out.
    if (bias) fill_bias(out, ldo, bias, 0, M, 0, N);
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        float& o = out[int64_t(i) * ldo + j];
        o = beta == 0.f ? 0.f : beta * o;
      }
    return;
  }
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  if (omp_in_parallel() || blas_runs_single_threaded(M, N, K) || !splits_products()) {
    if (bias) fill_bias(out, ldo, bias, 0, M, 0, N);
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, out, ldo);
    return;
  }
  // One block of out's rows (or, when it is wider than tall, of its columns) per thread; each
  // block is an ordinary product of a's rows (b's columns) with all of the other operand.
  const bool by_rows = M >= N;
#pragma omp parallel
  {
    const int64_t len = by_rows ? M : N, nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int lo = int(len * t / nt), hi = int(len * (t + 1) / nt);
    if (hi > lo && bias) fill_bias(out, ldo, bias, by_rows ? lo : 0, by_rows ? hi : M, by_rows ? 0 : lo, by_rows ? N : hi);
    if (hi > lo && by_rows)
      cblas_sgemm(CblasRowMajor, ta, tb, hi - lo, N, K, alpha, trans_a ? a + lo : a + int64_t(lo) * lda, lda, b, ldb,
                  beta, out + int64_t(lo) * ldo, ldo);
    else if (hi > lo)
      cblas_sgemm(CblasRowMajor, ta, tb, M, hi - lo, K, alpha, a, lda, trans_b ? b + int64_t(lo) * ldb : b + lo, ldb,
                  beta, out + lo, ldo);
  }
}

void matmul_forward(float* out, const float* a, const float* b, int M, int N, int K, bool trans_a,
                    bool trans_b, float alpha, float beta) {
  gemm(out, N, a, trans_a ? M : K, b, trans_b ? K : N, M, N, K, trans_a, trans_b, alpha, beta);
}

void linear_forward(float* out, const float* x, const float* w, const float* bias, int R, int O, int I) {
  gemm(out, O, x, I, w, O, R, O, I, false, false, 1.f, bias ? 1.f : 0.f, bias);
}

// One load per 64-byte line of p[0, n), in order, four running sums so that the loads do not wait
// on each other; the sum goes to a volatile so that the loads stay.
void read_in_order(const float* p, int64_t n) {
  float acc[4] = {};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int k = 0; k < 4; k++) acc[k] += p[i + 16 * k];
  for (; i < n; i += 16) acc[0] += p[i];
  volatile float sink = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  (void)sink;
}

// Above this the pass did not pay: at d_model 256 an x of 1,536 × 1,024 floats (6 MiB) made the
// product 2% slower, while at d_model 128 one of 1,536 × 512 (3 MiB) made it 3-5% faster
// (bench/cold_operand.cpp, Zen 4). Below it not every shape gains: d_model 256's first
// feed-forward layer (x 1.5 MiB) took the same time either way.
static constexpr int64_t kReadFirstMaxBytes = int64_t(4) << 20;

void linear_weight_grad(float* dw, const float* x, const float* g, int R, int I, int O, float beta) {
  // On one thread: inside a parallel region, too small to split, or attnlab's count is 1. (A host
  // program that never sets the count and leaves OpenBLAS its own threads may get the pass before
  // a product OpenBLAS then threads: the pass's cost, and no other effect.)
  const bool one_thread = omp_in_parallel() || blas_runs_single_threaded(I, O, R) || num_threads() == 1;
  if (one_thread && int64_t(R) * I * int64_t(sizeof(float)) <= kReadFirstMaxBytes) read_in_order(x, int64_t(R) * I);
  gemm(dw, O, x, I, g, O, I, O, R, true, false, 1.f, beta);
}

void matmul_reference(float* out, const float* a, const float* b, int M, int N, int K, bool trans_a,
                      bool trans_b, float alpha, float beta) {
  for (int i = 0; i < M; i++) {
    for (int j = 0; j < N; j++) {
      double acc = 0;
      for (int k = 0; k < K; k++) {
        float av = trans_a ? a[int64_t(k) * M + i] : a[int64_t(i) * K + k];
        float bv = trans_b ? b[int64_t(j) * K + k] : b[int64_t(k) * N + j];
        acc += double(av) * bv;
      }
      float prev = beta == 0.f ? 0.f : beta * out[int64_t(i) * N + j];
      out[int64_t(i) * N + j] = alpha * float(acc) + prev;
    }
  }
}

void matmul_heads(float* out, HeadLayout lo, const float* a, HeadLayout la, const float* b, HeadLayout lb, int batch,
                  int M, int N, int K, bool trans_a, bool trans_b, float alpha, float beta) {
  // Small products (every head of a training batch) one per thread at a time; a large one (long
  // sequences) is split over the threads by gemm itself.
#pragma omp parallel for schedule(static) if (batch > 1 && blas_runs_single_threaded(M, N, K))
  for (int i = 0; i < batch; i++)
    gemm(out + lo.offset(i), lo.ld, a + la.offset(i), la.ld, b + lb.offset(i), lb.ld, M, N, K, trans_a, trans_b,
         alpha, beta);
}

void matmul_batched(float* out, const float* a, const float* b, int batch, int M, int N, int K, bool trans_a,
                    bool trans_b, float alpha, float beta) {
  const auto one_after_another = [](int rows, int cols) { return HeadLayout::contiguous(rows, cols); };
  matmul_heads(out, one_after_another(M, N), a, trans_a ? one_after_another(K, M) : one_after_another(M, K), b,
               trans_b ? one_after_another(N, K) : one_after_another(K, N), batch, M, N, K, trans_a, trans_b, alpha,
               beta);
}

// out (N,N, rows ldo apart) = alpha a aᵀ + beta out, a (N,K) with rows lda apart.
static void gram(float* out, int ldo, const float* a, int lda, int N, int K, float alpha, float beta) {
  if (N == 0) return;
  // ssyrk writes only the upper triangle of out = alpha a a^T + beta out ...
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, N, K, alpha, a, lda, beta, out, ldo);
  // ... S is symmetric, so mirror it into the lower triangle.
  for (int i = 0; i < N; i++)
    for (int j = 0; j < i; j++) out[int64_t(i) * ldo + j] = out[int64_t(j) * ldo + i];
}

void gram_forward(float* out, const float* a, int N, int K, float alpha, float beta) {
  gram(out, N, a, K, N, K, alpha, beta);
}

void gram_heads(float* out, HeadLayout lo, const float* a, HeadLayout la, int batch, int N, int K, float alpha,
                float beta) {
  // ssyrk is not split (gemm's splitting is for sgemm): with attnlab's threads in charge, its
  // batch is spread over them at every size.
#pragma omp parallel for schedule(static) if (batch > 1 && (blas_runs_single_threaded(N, N, K) || splits_products()))
  for (int i = 0; i < batch; i++) gram(out + lo.offset(i), lo.ld, a + la.offset(i), la.ld, N, K, alpha, beta);
}

void gram_batched(float* out, const float* a, int batch, int N, int K, float alpha, float beta) {
  gram_heads(out, HeadLayout::contiguous(N, N), a, HeadLayout::contiguous(N, K), batch, N, K, alpha, beta);
}

void gram_backward_heads(float* dq, HeadLayout ldq, const float* g, HeadLayout lg, const float* q, HeadLayout lq,
                         int batch, int N, int K, float alpha, bool accumulate) {
  // S = alpha Q Qᵀ: Q appears twice, so dL/dQ (+)= alpha (G + Gᵀ) Q — the symmetrised gradient.
  const float beta = accumulate ? 1.f : 0.f;
#pragma omp parallel if (batch > 1 && blas_runs_single_threaded(N, K, N))
  {
    std::vector<float> sym(size_t(N) * N);  // G + Gᵀ of one batch entry, per thread
#pragma omp for schedule(static)
    for (int b = 0; b < batch; b++) {
      const float* gb = g + lg.offset(b);
      for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) sym[size_t(i) * N + j] = gb[int64_t(i) * lg.ld + j] + gb[int64_t(j) * lg.ld + i];
      gemm(dq + ldq.offset(b), ldq.ld, sym.data(), N, q + lq.offset(b), lq.ld, N, K, N, false, false, alpha, beta);
    }
  }
}

void gram_backward_batched(float* dq, const float* g, const float* q, int batch, int N, int K, float alpha,
                           bool accumulate) {
  gram_backward_heads(dq, HeadLayout::contiguous(N, K), g, HeadLayout::contiguous(N, N), q, HeadLayout::contiguous(N, K),
                      batch, N, K, alpha, accumulate);
}

// ---- elementwise -----------------------------------------------------------------------

ATTN_VECTOR_CLONES void add_forward(float* out, const float* a, const float* b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

ATTN_VECTOR_CLONES void mul_forward(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

ATTN_VECTOR_CLONES void axpy(float* y, float alpha, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelMin)
  for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

ATTN_VECTOR_CLONES void scale_forward(float* out, const float* inp, float alpha, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = alpha * inp[i];
}

void scale_backward(float* dinp, const float* dout, float alpha, int64_t n, bool accumulate) {
  if (accumulate) axpy(dinp, alpha, dout, n);
  else if (alpha == 1.f) std::copy(dout, dout + n, dinp);
  else scale_forward(dinp, dout, alpha, n);
}

// dbias[c0 .. c0 + W) += each column's sum down the rows, in row order, with the W running sums in
// registers: written as `dbias[c] += dout[r * C + c]` over the rows, each addition stores dbias
// and the next row's loads it back (dbias might alias dout), a chain through memory: the bias
// gradients of a d_model 64 step took 1.4-1.5 ms on one thread against 0.5-0.6 (`attnlab bench`'s
// kernels column, docs/benchmarks.md). The same additions in the same order, so the same bits.
template <int W>
static inline __attribute__((always_inline)) void column_sums(float* dbias, const float* dout, int64_t R, int C, int c0) {
  v4 acc[W / 4];
  std::memcpy(acc, dbias + c0, sizeof acc);
  for (int64_t r = 0; r < R; r++)
    for (int k = 0; k < W / 4; k++) acc[k] += load4(dout + r * C + c0 + 4 * k);
  std::memcpy(dbias + c0, acc, sizeof acc);
}

ATTN_VECTOR_CLONES void bias_backward(float* dbias, const float* dout, int64_t R, int C) {
  // Each thread owns a block of columns and sums it down all rows: every column's sum is in row
  // order at any block width and thread count. Blocks of 64 columns, or of 16 where 64 would
  // leave a thread without one (d_model 64 on two threads).
  const int block = C >= 2 * 64 ? 64 : 16;
#pragma omp parallel for schedule(static) if (R * C > kParallelMin && C >= 2 * block)
  for (int c0 = 0; c0 < C; c0 += block) {
    const int c1 = std::min(C, c0 + block);
    if (c1 - c0 == 64) {
      column_sums<64>(dbias, dout, R, C, c0);
    } else if (c1 - c0 == 16) {
      column_sums<16>(dbias, dout, R, C, c0);
    } else {  // the last, narrower block
      for (int64_t r = 0; r < R; r++)
        for (int c = c0; c < c1; c++) dbias[c] += dout[r * C + c];
    }
  }
}

ATTN_VECTOR_CLONES void relu_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = inp[i] > 0.f ? inp[i] : 0.f;
}

ATTN_VECTOR_CLONES void relu_backward(float* dinp, const float* dout, const float* out, int64_t n, bool accumulate) {
  // out = max(x, 0)  =>  dL/dx = dL/dout * [out > 0]
  if (accumulate) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      const float g = dout[i];  // loaded whatever the branch: see dropout_forward
      dinp[i] += out[i] > 0.f ? g : 0.f;
    }
  } else {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      const float g = dout[i];
      dinp[i] = out[i] > 0.f ? g : 0.f;
    }
  }
}

static const float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)

void gelu_forward(float* out, const float* inp, int64_t n) {
  // gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  for (int64_t i = 0; i < n; i++) {
    float x = inp[i];
    out[i] = 0.5f * x * (1.f + std::tanh(kGeluScale * (x + 0.044715f * x * x * x)));
  }
}

void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool accumulate) {
  // d/dx = 0.5 (1 + tanh u) + 0.5 x sech^2(u) du/dx,  u = s (x + 0.044715 x^3)
  for (int64_t i = 0; i < n; i++) {
    float x = inp[i];
    float u = kGeluScale * (x + 0.044715f * x * x * x);
    float th = std::tanh(u);
    float sech2 = 1.f - th * th;
    float du = kGeluScale * (1.f + 3.f * 0.044715f * x * x);
    const float d = dout[i] * (0.5f * (1.f + th) + 0.5f * x * sech2 * du);
    dinp[i] = accumulate ? dinp[i] + d : d;
  }
}

// ---- softmax ---------------------------------------------------------------------------

ATTN_VECTOR_CLONES void softmax_forward(float* out, const float* inp, const float* mask, int B, int H, int Tq, int Tk,
                     float scale) {
  // Blocks of one head's rows, at most 4096 floats or else one row (a head's whole (Tq, Tk)
  // scores in training, where Tk = 24), spread over the threads: each pass runs as one loop over the block's contiguous
  // values, because a row alone leaves most of an AVX-512 loop to its scalar remainder, and the
  // block's mask rows are contiguous too (docs/benchmarks.md, "What was tried").
  const int64_t rows_per_block = std::max<int64_t>(1, 4096 / std::max(Tk, 1));
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t blocks_per_head = (Tq + rows_per_block - 1) / rows_per_block;
#pragma omp parallel for schedule(static) if (int64_t(B) * H * Tq * Tk > kParallelMin)
  for (int64_t block = 0; block < int64_t(B) * H * blocks_per_head; block++) {
    const int64_t bh = block / blocks_per_head, i0 = block % blocks_per_head * rows_per_block;
    const float* mat_mask = mask ? mask + (bh / H) * int64_t(Tq) * Tk : nullptr;  // broadcast over heads
    const int64_t i1 = std::min<int64_t>(Tq, i0 + rows_per_block), first = (bh * Tq + i0) * Tk, nb = (i1 - i0) * Tk;
    const float* x = inp + first;
    float* y = out + first;
    if (mat_mask) {  // y = scale x + mask
      const float* m = mat_mask + i0 * Tk;
#pragma omp simd
      for (int64_t k = 0; k < nb; k++) y[k] = scale * x[k] + m[k];
    } else {
#pragma omp simd
      for (int64_t k = 0; k < nb; k++) y[k] = scale * x[k];
    }
    for (int64_t r = 0; r < i1 - i0; r++) {  // minus the row's max
      float* yr = y + r * Tk;
      float maxv = row_max(yr, Tk);  // (GCC leaves a float max reduction in a loop scalar)
      if (maxv == ninf) maxv = 0.f;  // fully masked row: every y is -inf, every exp 0
      for (int j = 0; j < Tk; j++) yr[j] -= maxv;
    }
#pragma omp simd
    for (int64_t k = 0; k < nb; k++) y[k] = exp_nonpositive(y[k]);  // y - max <= 0
    for (int64_t r = 0; r < i1 - i0; r++) {  // normalise; a fully masked row stays all zeros
      float* yr = y + r * Tk;
      const float sum = lanes_sum(Tk, [&](int64_t j) { return load4(yr + j); }, [&](int64_t j) { return yr[j]; });
      if (sum == 0.f) continue;
      const float inv = 1.f / sum;
      for (int j = 0; j < Tk; j++) yr[j] *= inv;
    }
  }
}

ATTN_VECTOR_CLONES void softmax_backward(float* dinp, const float* dout, const float* out, int64_t rows, int Tk,
                                         float scale, bool accumulate) {
  // y = softmax(s x + m)  =>  dL/dx_j = s * y_j (dL/dy_j - sum_k dL/dy_k y_k)
#pragma omp parallel for schedule(static) if (rows * Tk > kParallelMin)
  for (int64_t r = 0; r < rows; r++) {
    const float* dy = dout + r * Tk;
    const float* y = out + r * Tk;
    const float dot = lanes_sum(Tk, [&](int64_t j) { return load4(dy + j) * load4(y + j); },
                                [&](int64_t j) { return dy[j] * y[j]; });
    float* dx = dinp + r * Tk;
    if (accumulate)
      for (int j = 0; j < Tk; j++) dx[j] += scale * y[j] * (dy[j] - dot);
    else
      for (int j = 0; j < Tk; j++) dx[j] = scale * y[j] * (dy[j] - dot);
  }
}

// log Σ_c exp(x_c), as log_softmax_forward subtracts it: one body, inlined into each vector
// version of both callers, so the two agree to the bit.
static inline __attribute__((always_inline)) float row_logsumexp(const float* x, int C) {
  const float maxv = row_max(x, C);
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int c = 0; c < C; c++) sum += exp_fast(x[c] - maxv);
  return maxv + float(std::log(sum));
}

ATTN_VECTOR_CLONES void log_softmax_forward(float* out, const float* inp, int64_t R, int C) {
  for (int64_t r = 0; r < R; r++) {
    const float* x = inp + r * C;
    const float lse = row_logsumexp(x, C);
    for (int c = 0; c < C; c++) out[r * C + c] = x[c] - lse;
  }
}

ATTN_VECTOR_CLONES void logsumexp_rows(float* lse, const float* inp, int64_t R, int C) {
  for (int64_t r = 0; r < R; r++) lse[r] = row_logsumexp(inp + r * C, C);
}

ATTN_VECTOR_CLONES void log_softmax_backward(float* dinp, const float* dout, const float* out, int64_t R, int C,
                                             bool accumulate) {
  // y = x - logsumexp(x)  =>  dL/dx_j = dL/dy_j - exp(y_j) sum_k dL/dy_k
  for (int64_t r = 0; r < R; r++) {
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < C; c++) sum += dout[r * C + c];
    if (accumulate)
      for (int c = 0; c < C; c++) dinp[r * C + c] += dout[r * C + c] - exp_fast(out[r * C + c]) * sum;
    else
      for (int c = 0; c < C; c++) dinp[r * C + c] = dout[r * C + c] - exp_fast(out[r * C + c]) * sum;
  }
}

// ---- attention over a decoder's cache ----------------------------------------------------

ATTN_VECTOR_CLONES void cache_scores(float* s, const float* q, const float* keys, const int32_t* const* slot, int64_t R,
                                     int64_t H, int64_t T, int64_t D, int64_t slots) {
#pragma omp parallel for schedule(static) if (R * H * T * D > kParallelMin)
  for (int64_t rh = 0; rh < R * H; rh++) {
    const int64_t r = rh / H, h = rh % H;
    const float* qv = q + rh * D;
    for (int64_t t = 0; t < T; t++) {
      const float* kv = keys + ((t * slots + slot[t][r]) * H + h) * D;
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (int64_t d = 0; d < D; d++) dot += qv[d] * kv[d];
      s[rh * T + t] = dot;
    }
  }
}

ATTN_VECTOR_CLONES void cache_context(float* o, const float* p, const float* values, const int32_t* const* slot,
                                      int64_t R, int64_t H, int64_t T, int64_t D, int64_t slots) {
#pragma omp parallel for schedule(static) if (R * H * T * D > kParallelMin)
  for (int64_t rh = 0; rh < R * H; rh++) {
    const int64_t r = rh / H, h = rh % H;
    float* ov = o + rh * D;
    std::fill_n(ov, D, 0.f);
    for (int64_t t = 0; t < T; t++) {
      const float pt = p[rh * T + t];
      if (pt == 0.f) continue;
      const float* vv = values + ((t * slots + slot[t][r]) * H + h) * D;
#pragma omp simd
      for (int64_t d = 0; d < D; d++) ov[d] += pt * vv[d];
    }
  }
}

// ---- layer norm ------------------------------------------------------------------------

ATTN_VECTOR_CLONES void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t R, int C, float eps) {
#pragma omp parallel for schedule(static) if (R * C > kParallelMin)
  for (int64_t r = 0; r < R; r++) {
    const float* x = inp + r * C;
    float m = 0.f;
#pragma omp simd reduction(+ : m)
    for (int c = 0; c < C; c++) m += x[c];
    m /= C;
    float v = 0.f;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
    v /= C;
    const float s = 1.f / std::sqrt(v + eps);
    float* y = out + r * C;
    for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = s;
  }
}

ATTN_VECTOR_CLONES void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t R, int C,
                        bool accumulate) {
  // y = xhat * w + b, xhat = (x - mean) * rstd
  // dL/dw += dy * xhat; dL/db += dy
  // dL/dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * w
  // Rows run in parallel; each thread sums its rows' dw and db apart, then the sums are added
  // in thread order (the same order every run with the same --threads).
  const int threads = R * C > kParallelMin ? omp_get_max_threads() : 1;
  std::vector<float> partial(size_t(threads) * 2 * C, 0.f);
#pragma omp parallel num_threads(threads)
  {
    float* dw = partial.data() + size_t(omp_get_thread_num()) * 2 * C;
    float* db = dw + C;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; r++) {
      const float* dy = dout + r * C;
      const float* x = inp + r * C;
      const float m = mean[r], s = rstd[r];
      float dnorm_mean = 0.f, dnorm_norm_mean = 0.f;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
      for (int c = 0; c < C; c++) {
        const float xhat = (x[c] - m) * s;
        const float dnorm = dy[c] * weight[c];
        dnorm_mean += dnorm;
        dnorm_norm_mean += dnorm * xhat;
      }
      dnorm_mean /= C;
      dnorm_norm_mean /= C;
      for (int c = 0; c < C; c++) {
        const float xhat = (x[c] - m) * s;
        db[c] += dy[c];
        dw[c] += xhat * dy[c];
      }
      if (dinp) {
        float* dx = dinp + r * C;
        for (int c = 0; c < C; c++) {
          const float xhat = (x[c] - m) * s;
          const float d = s * (dy[c] * weight[c] - dnorm_mean - xhat * dnorm_norm_mean);
          dx[c] = accumulate ? dx[c] + d : d;
        }
      }
    }
  }
  for (int t = 0; t < threads; t++)
    for (int c = 0; c < C; c++) {
      if (dweight) dweight[c] += partial[size_t(t) * 2 * C + c];
      if (dbias) dbias[c] += partial[size_t(t) * 2 * C + C + c];
    }
}

// ---- embeddings ------------------------------------------------------------------------

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int C) {
  for (int64_t n = 0; n < N; n++) std::copy(table + int64_t(ids[n]) * C, table + int64_t(ids[n] + 1) * C, out + n * C);
}

ATTN_VECTOR_CLONES void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int C) {
  // out[n] = table[ids[n]]  =>  dtable[ids[n]] += dout[n]  (a token used twice gets both)
  // The row's loop is written here, not a call to axpy: axpy's parallel region, entered even when
  // it runs on one thread, cost more than a row's additions (1.6 ms of a d 64 step for 3,072 rows).
  for (int64_t n = 0; n < N; n++) {
    float* d = dtable + int64_t(ids[n]) * C;
    const float* g = dout + n * C;
#pragma omp simd
    for (int c = 0; c < C; c++) d[c] += g[c];
  }
}

// ---- loss ------------------------------------------------------------------------------

// One row of cross_entropy_forward and of cross_entropy_backward: one body each, inlined into
// every vector version of the kernels below, so the one-pass kernel gives the two passes' bits.
// ce_row_exp: the row's loss term (0 for an ignored row), with the exponentials e_v = exp(x_v -
// max) left in p and their sum in *sum_out; p may be x itself (each x[v] is read before p[v] is
// written). ce_row_forward then divides them by the sum: p = softmax(x).
static inline __attribute__((always_inline)) double ce_row_exp(float* p, const float* x, int32_t target, int V,
                                                               float smoothing, int ignore_id, float* sum_out) {
  const float maxv = row_max(x, V);
  const float x_target = target == ignore_id ? 0.f : x[target];
  // Float partial sums (one per vector lane, then added up): each term is at most 1, so the
  // rounding error stays near 1e-7 * sqrt(V) relative — double lanes halved the vector width.
  float sum = 0.f, sum_x = 0.f;
#pragma omp simd reduction(+ : sum, sum_x)
  for (int v = 0; v < V; v++) {
    const float xv = x[v];
    const float e = exp_nonpositive(xv - maxv);
    p[v] = e;
    sum += e;
    sum_x += xv;
  }
  *sum_out = sum;
  if (target == ignore_id) return 0;
  // loss = -(1-eps) log p_y - eps/V sum_v log p_v,   log p_v = x_v - lse
  const double lse = maxv + std::log(double(sum));
  const double nll = lse - x_target;
  const double smooth = lse - double(sum_x) / V;
  return (1.0 - smoothing) * nll + smoothing * smooth;
}

static inline __attribute__((always_inline)) double ce_row_forward(float* p, const float* x, int32_t target, int V,
                                                                   float smoothing, int ignore_id) {
  float sum = 0.f;
  const double loss = ce_row_exp(p, x, target, V, smoothing, ignore_id, &sum);
  const float inv = 1.f / sum;
  for (int v = 0; v < V; v++) p[v] *= inv;
  return loss;
}

// dx (+)= scale (p - q) for one row; dx may be p itself (each p[v] is read before dx[v] is written).
static inline __attribute__((always_inline)) void ce_row_backward(float* dx, const float* p, int32_t target, int V,
                                                                  float smoothing, int ignore_id, float scale,
                                                                  bool accumulate) {
  // dloss/dx_v = p_v - q_v,  q = (1-eps) onehot(y) + eps/V
  const float uniform = smoothing / V;
  if (target == ignore_id) {  // padding: no gradient
    if (!accumulate) std::fill(dx, dx + V, 0.f);
    return;
  }
  if (accumulate)
    for (int v = 0; v < V; v++) dx[v] += scale * (p[v] - uniform);
  else
    for (int v = 0; v < V; v++) dx[v] = scale * (p[v] - uniform);
  dx[target] -= scale * (1.f - smoothing);
}

ATTN_VECTOR_CLONES double cross_entropy_forward(float* probs, int64_t* count, const float* logits, const int32_t* targets,
                             int64_t R, int V, float smoothing, int ignore_id) {
  double total = 0;
  int64_t counted = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, counted) if (R * V > kParallelMin)
  for (int64_t r = 0; r < R; r++) {
    total += ce_row_forward(probs + r * V, logits + r * V, targets[r], V, smoothing, ignore_id);
    counted += targets[r] != ignore_id;
  }
  *count = counted;
  return total;
}

ATTN_VECTOR_CLONES void cross_entropy_backward(float* dlogits, const float* probs, const int32_t* targets, int64_t R, int V,
                            float smoothing, int ignore_id, float scale, bool accumulate) {
#pragma omp parallel for schedule(static) if (R * V > kParallelMin)
  for (int64_t r = 0; r < R; r++)
    ce_row_backward(dlogits + r * V, probs + r * V, targets[r], V, smoothing, ignore_id, scale, accumulate);
}

// ce_row_backward of the probabilities e_v / sum, made as it goes from the exponentials ce_row_exp
// left in dx: the two passes' bits (ce_row_forward's p_v = e_v * inv, then scale (p_v - q_v)) in
// one pass. Each product e_v * inv goes through an AND with `all_ones`, a mask of all ones the
// compiler cannot see (the caller's), so that it is rounded on its own as the stored probability
// was, and not fused with the subtraction into one multiply-add.
static inline __attribute__((always_inline)) void ce_row_backward_exp(float* dx, float sum, int32_t target, int V,
                                                                      float smoothing, int ignore_id, float scale,
                                                                      uint32_t all_ones) {
  const float uniform = smoothing / V, inv = 1.f / sum;
  if (target == ignore_id) {
    std::fill(dx, dx + V, 0.f);
    return;
  }
  for (int v = 0; v < V; v++) {
    uint32_t bits;
    const float e = dx[v] * inv;
    std::memcpy(&bits, &e, sizeof bits);
    bits &= all_ones;
    float p;
    std::memcpy(&p, &bits, sizeof p);
    dx[v] = scale * (p - uniform);
  }
  dx[target] -= scale * (1.f - smoothing);
}

ATTN_VECTOR_CLONES double cross_entropy_forward_backward(float* z, int64_t* count, const int32_t* targets, int64_t R,
                                                         int V, float smoothing, int ignore_id, float scale) {
  double total = 0;
  int64_t counted = 0;
  uint32_t all_ones = ~0u;
  __asm__("" : "+r"(all_ones));  // its value unknown to the compiler from here on (ce_row_backward_exp)
#pragma omp parallel for schedule(static) reduction(+ : total, counted) if (R * V > kParallelMin)
  for (int64_t r = 0; r < R; r++) {  // each row's two passes while it is in L1
    float sum = 0.f;
    total += ce_row_exp(z + r * V, z + r * V, targets[r], V, smoothing, ignore_id, &sum);
    counted += targets[r] != ignore_id;
    ce_row_backward_exp(z + r * V, sum, targets[r], V, smoothing, ignore_id, scale, all_ones);
  }
  *count = counted;
  return total;
}

// ---- dropout ---------------------------------------------------------------------------

// lowbias32 (Chris Wellons' integer hash, bias 0.17): two rounds over (index, seed).
static inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// Element i's mask is drawn from x_i = i * kWeyl + seed_lo (mod 2^32), hashed with seed_hi. The
// loops below step x by kWeyl, an add, through OpenMP's `linear` clause, which also starts each
// thread's x at its first element's (the same x_i, so the same masks: tests/test_core.cpp checks
// every element against dropout_dropped's multiply, and dropout_dropped against the formula
// written out). GCC then keeps one vector add where it had a multiply per element; Clang
// recomputes x_i from i (still the same x_i, and no faster).
static constexpr uint32_t kWeyl = 0x9e3779b9U;

// The hash's top 24 bits against p * 2^24, (h >> 8) < drop_threshold(p), compared without the
// shift: for integers that is h < drop_threshold(p) * 2^8. p < 1 (the ops check it), so
// drop_threshold(p) < 2^24 and the bound fits in 32 bits.
static inline bool dropped_x(uint32_t x, uint32_t seed_hi, uint32_t bound) { return mix32(mix32(x) ^ seed_hi) < bound; }

static inline uint32_t drop_threshold(float p) { return static_cast<uint32_t>(double(p) * 16777216.0); }
static inline uint32_t drop_bound(float p) { return drop_threshold(p) << 8; }

// v where pass, else +0, selected by a bit mask. Written as a float select (pass ? v : 0.f), the
// compiler may fuse the product that made v with an add that follows into one multiply-add (one
// rounding where the two unfused ops have two), and the bits would no longer be those of the ops
// a fused kernel stands for, or of the assigning path the accumulating one must match. (GCC
// fused them in the sanitizer build's scalar code.)
static inline __attribute__((always_inline)) float pass_or_zero(float v, bool pass) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  bits &= pass ? ~0u : 0u;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

bool dropout_dropped(uint64_t seed, int64_t i, float p) {
  return dropped_x(uint32_t(i) * kWeyl + uint32_t(seed), uint32_t(seed >> 32), drop_bound(p));
}

ATTN_VECTOR_CLONES void dropout_forward(float* out, const float* inp, int64_t n, float p, uint64_t seed) {
  const float keep = 1.f / (1.f - p);
  const uint32_t hi = uint32_t(seed >> 32), bound = drop_bound(p);
  uint32_t hash_in = uint32_t(seed);
  // Each input is loaded whether or not it is dropped: `dropped ? 0 : inp[i] * keep` makes GCC
  // emit a masked load in the AVX2 clone, slow on AMD's Zen cores (docs/benchmarks.md).
#pragma omp parallel for simd schedule(static) linear(hash_in : kWeyl) if (parallel : n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float v = inp[i] * keep;
    out[i] = dropped_x(hash_in, hi, bound) ? 0.f : v;
    hash_in += kWeyl;
  }
}

ATTN_VECTOR_CLONES void dropout_backward(float* dinp, const float* dout, int64_t n, float p, uint64_t seed,
                                         bool accumulate) {
  const float keep = 1.f / (1.f - p);
  const uint32_t hi = uint32_t(seed >> 32), bound = drop_bound(p);
  uint32_t hash_in = uint32_t(seed);
  if (accumulate) {
#pragma omp parallel for simd schedule(static) linear(hash_in : kWeyl) if (parallel : n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      dinp[i] += pass_or_zero(dout[i] * keep, !dropped_x(hash_in, hi, bound));
      hash_in += kWeyl;
    }
  } else {
#pragma omp parallel for simd schedule(static) linear(hash_in : kWeyl) if (parallel : n > kParallelMin)
    for (int64_t i = 0; i < n; i++) {
      const float g = dout[i] * keep;  // loaded whatever the branch: see dropout_forward
      dinp[i] = dropped_x(hash_in, hi, bound) ? 0.f : g;
      hash_in += kWeyl;
    }
  }
}

ATTN_VECTOR_CLONES void dropout_add_forward(float* out, const float* x, const float* y, int64_t n, float p,
                                            uint64_t seed) {
  const float keep = 1.f / (1.f - p);
  const uint32_t hi = uint32_t(seed >> 32), bound = drop_bound(p);
  uint32_t hash_in = uint32_t(seed);
#pragma omp parallel for simd schedule(static) linear(hash_in : kWeyl) if (parallel : n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {  // dropout_forward's value, y * keep or +0, then add's
    out[i] = x[i] + pass_or_zero(y[i] * keep, !dropped_x(hash_in, hi, bound));
    hash_in += kWeyl;
  }
}

ATTN_VECTOR_CLONES void relu_dropout_forward(float* out, const float* inp, int64_t n, float p, uint64_t seed) {
  const float keep = 1.f / (1.f - p);
  const uint32_t hi = uint32_t(seed >> 32), bound = drop_bound(p);
  uint32_t hash_in = uint32_t(seed);
#pragma omp parallel for simd schedule(static) linear(hash_in : kWeyl) if (parallel : n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float v = (inp[i] > 0.f ? inp[i] : 0.f) * keep;  // relu_forward's value, then dropout_forward's
    out[i] = dropped_x(hash_in, hi, bound) ? 0.f : v;
    hash_in += kWeyl;
  }
}

ATTN_VECTOR_CLONES void relu_dropout_backward(float* dinp, const float* dout, const float* out, int64_t n, float p,
                                              bool accumulate) {
  // dropout_backward's gradient, dout * keep or 0, then relu_backward's: the same bits
  const float keep = 1.f / (1.f - p);
  if (accumulate) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelMin)
    for (int64_t i = 0; i < n; i++) dinp[i] += pass_or_zero(dout[i] * keep, out[i] > 0.f);
  } else {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelMin)
    for (int64_t i = 0; i < n; i++) dinp[i] = pass_or_zero(dout[i] * keep, out[i] > 0.f);
  }
}

// ---- layout ----------------------------------------------------------------------------

void permute0213(float* out, const float* inp, int A, int B, int C, int D) {
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(A) * B * C * D > kParallelMin)
  for (int a = 0; a < A; a++)
    for (int b = 0; b < B; b++)
      for (int c = 0; c < C; c++) {
        const float* src = inp + (((int64_t(a) * B + b) * C + c) * D);
        float* dst = out + (((int64_t(a) * C + c) * B + b) * D);
        std::copy(src, src + D, dst);
      }
}

ATTN_VECTOR_CLONES void permute0213_add(float* out, const float* inp, int A, int B, int C, int D) {
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(A) * B * C * D > kParallelMin)
  for (int a = 0; a < A; a++)
    for (int b = 0; b < B; b++)
      for (int c = 0; c < C; c++) {
        const float* src = inp + (((int64_t(a) * B + b) * C + c) * D);
        float* dst = out + (((int64_t(a) * C + c) * B + b) * D);
        for (int d = 0; d < D; d++) dst[d] += src[d];
      }
}

// ---- optimizer -------------------------------------------------------------------------

// One parameter's update, inlined into adam_update's loop and adam_update_tensors' pieces.
static inline __attribute__((always_inline)) void adam_element(float* w, float* m, float* v, const float* g, int64_t k,
                                                               float lr, float beta1, float beta2, float eps,
                                                               float weight_decay, float bc1, float bc2,
                                                               float grad_scale) {
  const float gk = grad_scale * g[k];  // scale_forward's product: grad_scale 1 gives g[k] itself
  m[k] = beta1 * m[k] + (1.f - beta1) * gk;
  v[k] = beta2 * v[k] + (1.f - beta2) * gk * gk;
  const float mhat = m[k] / bc1, vhat = v[k] / bc2;
  w[k] -= lr * (mhat / (std::sqrt(vhat) + eps) + weight_decay * w[k]);
}

ATTN_VECTOR_CLONES void adam_update(float* w, float* m, float* v, const float* g, int64_t n, float lr, float beta1,
                                    float beta2, float eps, float weight_decay, float bc1, float bc2,
                                    float grad_scale) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelMin)
  for (int64_t k = 0; k < n; k++) adam_element(w, m, v, g, k, lr, beta1, beta2, eps, weight_decay, bc1, bc2, grad_scale);
}

ATTN_VECTOR_CLONES void adam_update_tensors(const std::vector<AdamTensor>& tensors, float lr, float beta1, float beta2,
                                            float eps, float weight_decay, float bc1, float bc2, float grad_scale) {
  struct Piece {
    const AdamTensor* t;
    int64_t begin, n;
  };
  std::vector<Piece> pieces;
  int64_t total = 0;
  for (const AdamTensor& t : tensors) {
    for (int64_t b = 0; b < t.n; b += kParallelMin) pieces.push_back({&t, b, std::min(kParallelMin, t.n - b)});
    total += t.n;
  }
  // Each piece's loop runs on the thread that took it: no region inside the region.
#pragma omp parallel for schedule(dynamic) if (total > kParallelMin)
  for (size_t i = 0; i < pieces.size(); i++) {
    const Piece& p = pieces[i];
    float *w = p.t->w + p.begin, *m = p.t->m + p.begin, *v = p.t->v + p.begin;
    const float* g = p.t->g + p.begin;
#pragma omp simd
    for (int64_t k = 0; k < p.n; k++) adam_element(w, m, v, g, k, lr, beta1, beta2, eps, weight_decay, bc1, bc2, grad_scale);
  }
}

// Thirty-two partial sums (four AVX-512 vectors of doubles) let the adds' latency overlap: one
// sum would wait on its own add at every element.
ATTN_VECTOR_CLONES double sum_squares(const float* x, int64_t n) {
  constexpr int64_t kBlock = 65536, kLanes = 32;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> block_sum(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t end = std::min(n, (b + 1) * kBlock);
    double part[kLanes] = {};
    int64_t i = b * kBlock;
    for (; i + kLanes <= end; i += kLanes)
#pragma omp simd
      for (int64_t j = 0; j < kLanes; j++) part[j] += double(x[i + j]) * double(x[i + j]);
    double s = 0;
    for (; i < end; i++) s += double(x[i]) * double(x[i]);
    for (double p : part) s += p;
    block_sum[size_t(b)] = s;
  }
  double s = 0;
  for (double b : block_sum) s += b;
  return s;
}

}  // namespace attn
