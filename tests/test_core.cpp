// tests/test_core.cpp — Tensor, kernels (BLAS against the plain-loop references), safetensors, file IO.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <limits>

#include <attnlab/core/csv.h>
#include <attnlab/core/fileio.h>
#include <attnlab/core/kernels.h>
#include <attnlab/core/safetensors.h>
#include <attnlab/core/tensor.h>
#include <attnlab/core/runtime.h>
#include <attnlab/core/threads.h>
#include <attnlab/core/words.h>

using namespace attn;
namespace fs = std::filesystem;

static Tensor random_tensor(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); i++) t[i] = rng.normal();
  return t;
}

static fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("attnlab-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// gram_backward_batched (dQ += alpha (G + Gᵀ) Q for every batch entry) against two plain-loop
// products per entry, on 1 and 2 threads; seeds seed, seed+1, seed+2 for Q, G and dQ.
static void check_gram_backward(int batch, int T, int D, uint64_t seed, float tol) {
  Tensor q = random_tensor({batch, T, D}, seed), g = random_tensor({batch, T, T}, seed + 1);
  for (int threads : {1, 2}) {
    set_threads(threads);
    Tensor dq = random_tensor({batch, T, D}, seed + 2), ref = dq.clone();
    gram_backward_batched(dq.data(), g.data(), q.data(), batch, T, D, 0.25f, true);
    for (int i = 0; i < batch; i++) {
      const float* gi = g.data() + int64_t(i) * T * T;
      matmul_reference(ref.data() + int64_t(i) * T * D, gi, q.data() + int64_t(i) * T * D, T, D, T, false, false, 0.25f, 1.f);
      matmul_reference(ref.data() + int64_t(i) * T * D, gi, q.data() + int64_t(i) * T * D, T, D, T, true, false, 0.25f, 1.f);
    }
    INFO("batch " << batch << " T " << T << " D " << D << " threads " << threads << " split " << splits_products());
    REQUIRE(max_abs_diff(dq, ref) < tol);
  }
}

TEST_CASE("tensor storage is shared by reshape and copied by clone") {
  Tensor a = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = a.reshape({3, 2});
  b.at({2, 1}) = 60;
  REQUIRE(a.at({1, 2}) == 60);
  REQUIRE(b.same_storage(a));
  Tensor c = a.clone();
  c[0] = -1;
  REQUIRE(a[0] == 1);
  REQUIRE(a.reshape({-1}).shape() == Shape{6});
  REQUIRE_THROWS_WITH(a.reshape({4, 2}), Catch::Contains("cannot reshape (2, 3) to (4, 2)"));
  REQUIRE_THROWS(Tensor({1, 1, 1, 1, 1}));
  REQUIRE_THROWS(Tensor::from({2}, {1, 2, 3}));
}

TEST_CASE("tensor storage: zeros are zero, empty has the shape, buffers are 64-byte aligned") {
  for (int64_t n : {0, 1, 3, 17, 1000, 1 << 20}) {
    Tensor z = Tensor::zeros({n});
    for (int64_t i = 0; i < n; i++) REQUIRE(z[i] == 0.f);
    Tensor e = Tensor::empty({2, n});
    CHECK(e.shape() == Shape{2, n});
    CHECK(e.numel() == 2 * n);
    CHECK(reinterpret_cast<uintptr_t>(e.data()) % 64 == 0);
    CHECK(reinterpret_cast<uintptr_t>(z.data()) % 64 == 0);
  }
  // A buffer freed and reallocated (the allocator may hand back the same memory) is zero again.
  { Tensor a = Tensor::full({4096}, 7.f); }
  Tensor b = Tensor::zeros({4096});
  for (int64_t i = 0; i < 4096; i++) REQUIRE(b[i] == 0.f);
  CHECK_THROWS_WITH(Tensor::empty({2, -1}), Catch::Contains("negative dimension"));
}

TEST_CASE("tensor prints like numpy, eliding the middle of long dims") {
  Tensor t = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  REQUIRE(fmt::format("{}", t) == "tensor (2, 3)\n[[1, 2, 3],\n [4, 5, 6]]");
  Tensor big({10});
  for (int i = 0; i < 10; i++) big[i] = float(i);
  REQUIRE(fmt::format("{}", big) == "tensor (10,)\n[0, 1, 2, ..., 7, 8, 9]");
}

TEST_CASE("sgemm matches the plain-loop reference for every transpose, alpha and beta") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const int M = 7, N = 5, K = 9;
      Tensor a = random_tensor(ta ? Shape{K, M} : Shape{M, K}, 1), b = random_tensor(tb ? Shape{N, K} : Shape{K, N}, 2);
      Tensor c1 = random_tensor({M, N}, 3), c2 = c1.clone();
      matmul_forward(c1.data(), a.data(), b.data(), M, N, K, ta, tb, 0.7f, 0.3f);
      matmul_reference(c2.data(), a.data(), b.data(), M, N, K, ta, tb, 0.7f, 0.3f);
      INFO("trans_a " << ta << " trans_b " << tb);
      REQUIRE(max_abs_diff(c1, c2) < 1e-5f);
    }
}

TEST_CASE("products large enough to be split over the threads equal the reference, in rows and in columns") {
  // Above OpenBLAS's threading threshold (M N K >= 4 * 65536) attnlab cuts the product into one
  // block per thread: of rows when M >= N, of columns otherwise; sizes that do not divide evenly.
  struct Size { int M, N, K; };
  for (Size sz : {Size{131, 67, 41}, Size{37, 211, 53}})
    for (int threads : {1, 2, 3})
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          set_threads(threads);
          const int M = sz.M, N = sz.N, K = sz.K;
          Tensor a = random_tensor(ta ? Shape{K, M} : Shape{M, K}, 21), b = random_tensor(tb ? Shape{N, K} : Shape{K, N}, 22);
          Tensor c1 = random_tensor({M, N}, 23), c2 = c1.clone();
          matmul_forward(c1.data(), a.data(), b.data(), M, N, K, ta, tb, 0.7f, 0.3f);
          matmul_reference(c2.data(), a.data(), b.data(), M, N, K, ta, tb, 0.7f, 0.3f);
          INFO(M << "x" << N << "x" << K << " threads " << threads << " split " << splits_products() << " trans_a " << ta
                 << " trans_b " << tb);
          REQUIRE(max_abs_diff(c1, c2) < 1e-4f);  // sums of 41-53 products of N(0,1) values, in float
        }
  // The gram gradient's products at long sequences: each large enough to be split, called from
  // inside gram_backward_batched's (then inactive) parallel region.
  check_gram_backward(3, 80, 64, 24, 1e-4f);  // sums of 80 products, in float
  set_threads(0);
}

TEST_CASE("linear_forward: the product added onto the bias rows, as matmul_forward onto a prefilled output") {
  // Each thread writes the bias into its own block just before its product: the same sgemm calls
  // as the prefill-then-product it replaces, so the same bits, whether split in rows or columns.
  struct Size { int R, O, I; };
  for (Size sz : {Size{131, 67, 41}, Size{37, 211, 53}, Size{5, 3, 4}, Size{9, 6, 0}})
    for (int threads : {1, 2, 3}) {
      set_threads(threads);
      const int R = sz.R, O = sz.O, I = sz.I;
      Tensor x = random_tensor({R, I}, 31), w = random_tensor({I, O}, 32), bias = random_tensor({O}, 33);
      Tensor got = Tensor::full({R, O}, 7.f), want = Tensor::empty({R, O}), ref = Tensor::empty({R, O});
      for (int r = 0; r < R; r++) std::copy(bias.data(), bias.data() + O, want.data() + int64_t(r) * O);
      ref = want.clone();
      linear_forward(got.data(), x.data(), w.data(), bias.data(), R, O, I);
      matmul_forward(want.data(), x.data(), w.data(), R, O, I, false, false, 1.f, 1.f);
      matmul_reference(ref.data(), x.data(), w.data(), R, O, I, false, false, 1.f, 1.f);
      INFO(R << "x" << O << "x" << I << " threads " << threads << " split " << splits_products());
      REQUIRE(max_abs_diff(got, want) == 0.f);
      REQUIRE(max_abs_diff(got, ref) < 1e-4f);
      Tensor nobias = Tensor::full({R, O}, 7.f), zero_ref = Tensor::empty({R, O});  // no bias: beta = 0
      linear_forward(nobias.data(), x.data(), w.data(), nullptr, R, O, I);
      matmul_reference(zero_ref.data(), x.data(), w.data(), R, O, I, false, false);
      REQUIRE(max_abs_diff(nobias, zero_ref) < 1e-4f);
    }
  set_threads(0);
}

TEST_CASE("linear_weight_grad: matmul_forward's product xᵀ g, to the bit, read first or not") {
  // On one thread x is read once in order before the product; the product is the same sgemm
  // call(s) as matmul_forward's, so the same bits, assigning (beta 0) and adding (beta 1). Sizes
  // below and above the split threshold; a row count that is not a multiple of the 16-float line.
  struct Size { int R, I, O; };
  for (Size sz : {Size{1536, 64, 64}, Size{37, 5, 3}, Size{101, 17, 260}, Size{1, 1, 1}})
    for (int threads : {1, 2}) {
      set_threads(threads);
      const int R = sz.R, I = sz.I, O = sz.O;
      Tensor x = random_tensor({R, I}, 41), g = random_tensor({R, O}, 42), start = random_tensor({I, O}, 43);
      for (float beta : {0.f, 1.f}) {
        Tensor got = start.clone(), want = start.clone(), ref = start.clone();
        linear_weight_grad(got.data(), x.data(), g.data(), R, I, O, beta);
        matmul_forward(want.data(), x.data(), g.data(), I, O, R, true, false, 1.f, beta);
        matmul_reference(ref.data(), x.data(), g.data(), I, O, R, true, false, 1.f, beta);
        INFO(R << "x" << I << "x" << O << " threads " << threads << " beta " << beta);
        REQUIRE(max_abs_diff(got, want) == 0.f);
        REQUIRE(max_abs_diff(got, ref) < 1e-4f * std::sqrt(float(R)));  // sums of R products of N(0,1) values, in float
      }
    }
  set_threads(0);
}

TEST_CASE("ssyrk gram product equals the general product a aᵀ, both triangles") {
  const int N = 6, K = 4;
  Tensor a = random_tensor({N, K}, 4);
  Tensor g({N, N}), ref({N, N});
  gram_forward(g.data(), a.data(), N, K, 0.5f);
  matmul_reference(ref.data(), a.data(), a.data(), N, N, K, false, true, 0.5f);
  REQUIRE(max_abs_diff(g, ref) < 1e-5f);
}

TEST_CASE("masked softmax: rows sum to one, masked entries are zero, a fully masked row is zero") {
  const float ninf = -std::numeric_limits<float>::infinity();
  Tensor x = random_tensor({1, 1, 3, 3}, 5), mask({1, 3, 3}), p({1, 1, 3, 3});
  mask.at({0, 0, 2}) = ninf;
  for (int j = 0; j < 3; j++) mask.at({0, 2, j}) = ninf;
  softmax_forward(p.data(), x.data(), mask.data(), 1, 1, 3, 3, 0.5f);
  REQUIRE(p.at({0, 0, 0, 0}) + p.at({0, 0, 0, 1}) == Approx(1.f));
  REQUIRE(p.at({0, 0, 0, 2}) == 0.f);
  REQUIRE(p.at({0, 0, 1, 0}) + p.at({0, 0, 1, 1}) + p.at({0, 0, 1, 2}) == Approx(1.f));
  for (int j = 0; j < 3; j++) REQUIRE(p.at({0, 0, 2, j}) == 0.f);
  // value check on row 1: softmax(0.5 x)
  double z = 0;
  for (int j = 0; j < 3; j++) z += std::exp(0.5 * x.at({0, 0, 1, j}));
  REQUIRE(p.at({0, 0, 1, 1}) == Approx(std::exp(0.5 * x.at({0, 0, 1, 1})) / z).epsilon(1e-5));
}

TEST_CASE("attention softmax at training shapes equals a double-precision evaluation, on 1 and 2 threads") {
  // (B,H,Tq,Tk) = (24,5,24,24) with a causal mask and one fully masked row: each head's 24 rows
  // one block, above the parallel threshold; a Tk of 1 and of 37 (row sums with a 1-float tail,
  // and a 4-float step and a 1-float one); and of 700, where a block holds 5 rows and each head's
  // last block 4.
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int Tk : {24, 1, 37, 700})
    for (int threads : {1, 2}) {
      set_threads(threads);
      const int B = Tk == 24 ? 24 : 3, H = 5, Tq = 24;
      Tensor x = random_tensor({B, H, Tq, Tk}, 51), mask({B, Tq, Tk}), p = Tensor::empty({B, H, Tq, Tk});
      for (int b = 0; b < B; b++)
        for (int i = 0; i < Tq; i++)
          for (int j = 0; j < Tk; j++) mask.at({b, i, j}) = (j > i || (b == 1 && i == 3)) ? ninf : 0.f;
      softmax_forward(p.data(), x.data(), mask.data(), B, H, Tq, Tk, 0.7f);
      for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
          for (int i = 0; i < Tq; i++) {
            double mx = -1e30, z = 0;
            for (int j = 0; j < Tk; j++)
              if (mask.at({b, i, j}) == 0.f) mx = std::max(mx, 0.7 * x.at({b, h, i, j}));
            for (int j = 0; j < Tk; j++)
              if (mask.at({b, i, j}) == 0.f) z += std::exp(0.7 * x.at({b, h, i, j}) - mx);
            for (int j = 0; j < Tk; j++) {
              const double want = mask.at({b, i, j}) == 0.f ? std::exp(0.7 * x.at({b, h, i, j}) - mx) / z : 0.0;
              INFO("Tk " << Tk << " threads " << threads << " at " << b << "," << h << "," << i << "," << j);
              REQUIRE(p.at({b, h, i, j}) == Approx(want).epsilon(1e-5).margin(1e-7));
            }
          }
    }
  // One sequence of one head (batch 1): its 40 row blocks are what the two threads share.
  {
    set_threads(2);
    const int Tq = 200, Tk = 700;
    Tensor x = random_tensor({1, 1, Tq, Tk}, 52), p = Tensor::empty({1, 1, Tq, Tk});
    softmax_forward(p.data(), x.data(), nullptr, 1, 1, Tq, Tk, 0.5f);
    for (int i = 0; i < Tq; i++) {
      double mx = -1e30, z = 0;
      for (int j = 0; j < Tk; j++) mx = std::max(mx, 0.5 * x[int64_t(i) * Tk + j]);
      for (int j = 0; j < Tk; j++) z += std::exp(0.5 * x[int64_t(i) * Tk + j] - mx);
      for (int j = 0; j < Tk; j += 97) {
        INFO("row " << i << " column " << j);
        REQUIRE(p[int64_t(i) * Tk + j] == Approx(std::exp(0.5 * x[int64_t(i) * Tk + j] - mx) / z).epsilon(1e-5).margin(1e-7));
      }
    }
    // no queries, or no keys: nothing to write, nothing read
    softmax_forward(p.data(), x.data(), nullptr, 2, 3, 0, Tk, 0.5f);
    softmax_forward(p.data(), x.data(), nullptr, 2, 3, Tq, 0, 0.5f);
  }
  set_threads(0);
}

TEST_CASE("layer norm output has zero mean and unit variance before the affine part") {
  const int R = 4, C = 16;
  Tensor x = random_tensor({R, C}, 6), y({R, C}), mean({R}), rstd({R});
  Tensor w = Tensor::full({C}, 1.f), b({C});
  layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), R, C);
  for (int r = 0; r < R; r++) {
    double m = 0, v = 0;
    for (int c = 0; c < C; c++) m += y.at({r, c});
    m /= C;
    for (int c = 0; c < C; c++) v += (y.at({r, c}) - m) * (y.at({r, c}) - m);
    REQUIRE(std::fabs(m) < 1e-5);
    REQUIRE(v / C == Approx(1.0).epsilon(1e-3));
  }
}

TEST_CASE("cross-entropy with smoothing and an ignored row equals the formula") {
  Tensor logits = Tensor::from({2, 3}, {1.f, 2.f, 3.f, 0.f, 0.f, 0.f});
  Tensor probs({2, 3});
  int32_t targets[2] = {2, 0};
  int64_t count = 0;
  double total = cross_entropy_forward(probs.data(), &count, logits.data(), targets, 2, 3, 0.1f, /*ignore=*/0);
  REQUIRE(count == 1);
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double expect = 0.9 * (lse - 3.0) + 0.1 * (lse - 2.0);  // mean logit is 2
  REQUIRE(total == Approx(expect).epsilon(1e-6));
}

// Both exponentials over a block, compiled as the kernels are (core/kernels.cpp's ATTN_VECTOR_CLONES:
// the AVX-512 and AVX2 clones contract into FMAs, the baseline does not), so the clone this CPU
// runs in softmax and cross-entropy is the one compared.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
static void both_exps(float* a, float* b, const float* x, int n) {
#pragma omp simd
  for (int i = 0; i < n; i++) a[i] = exp_fast(x[i]);
#pragma omp simd
  for (int i = 0; i < n; i++) b[i] = exp_nonpositive(x[i]);
}

TEST_CASE("exp_nonpositive gives exp_fast's bits at or below zero") {
  // Bitwise equality (a NaN for a NaN: exp_fast returns x itself, exp_nonpositive a computed NaN):
  // the two are the same arithmetic, minus exp_fast's steps for x > 0. Floats with the sign bit
  // set, as bit patterns: one in 61 of all 2^31 (each exponent and many mantissas), and every
  // pattern within 4096 of where a result changes branch: -0, the cut to 0 at -87.34, each step
  // of k (x = (j - 1/2) ln 2, j = 0..-126).
  std::vector<uint32_t> patterns;
  for (uint64_t u = 0x80000000u; u <= 0xffffffffu; u += 61) patterns.push_back(uint32_t(u));
  auto pattern = [](float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    return bits;
  };
  std::vector<float> edges = {-0.f, -87.33654475f};
  for (int j = 0; j >= -126; j--) edges.push_back(float((j - 0.5) * 0.6931471805599453));
  for (float e : edges)
    for (int64_t d = -4096; d <= 4096; d++) {
      const int64_t bits = int64_t(pattern(e)) + d;
      if (bits >= 0x80000000LL && bits <= 0xffffffffLL) patterns.push_back(uint32_t(bits));
    }
  patterns.push_back(0);  // +0
  std::vector<float> x(patterns.size()), a(x.size()), b(x.size());
  std::memcpy(x.data(), patterns.data(), sizeof(float) * x.size());
  both_exps(a.data(), b.data(), x.data(), int(x.size()));
  int64_t differ = 0;
  uint32_t first = 0;
  for (size_t i = 0; i < x.size(); i++) {
    const bool same = (std::isnan(a[i]) || std::isnan(b[i])) ? std::isnan(a[i]) && std::isnan(b[i])
                                                               : std::memcmp(&a[i], &b[i], sizeof(float)) == 0;
    if (!same && differ++ == 0) first = patterns[i];
  }
  INFO(x.size() << " patterns; first differing 0x" << std::hex << first);
  CHECK(x.size() > 35000000);
  CHECK(differ == 0);
  CHECK(exp_nonpositive(0.f) == 1.f);
  CHECK(exp_nonpositive(-std::numeric_limits<float>::infinity()) == 0.f);
  CHECK(exp_nonpositive(-100.f) == 0.f);
  CHECK(std::isnan(exp_nonpositive(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("exp_fast matches std::exp to 3e-7 relative and handles the edges") {
  double worst = 0, worst_x = 0;
  for (double x = -87.0; x <= 88.0; x += 0.0007) {
    const double ref = std::exp(double(float(x)));
    const double rel = std::fabs(exp_fast(float(x)) - ref) / ref;
    if (rel > worst) worst = rel, worst_x = x;
  }
  INFO("worst relative error " << worst << " at x = " << worst_x);
  CHECK(worst < 3e-7);
  CHECK(exp_fast(0.f) == 1.f);
  CHECK(std::fabs(exp_fast(88.5f) - std::exp(88.5f)) / std::exp(88.5f) < 2e-5);
  CHECK(exp_fast(-std::numeric_limits<float>::infinity()) == 0.f);
  CHECK(exp_fast(-100.f) == 0.f);
  CHECK(std::isinf(exp_fast(89.f)));
  CHECK(std::isinf(exp_fast(std::numeric_limits<float>::infinity())));
  CHECK(std::isnan(exp_fast(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("vectorised softmax and cross-entropy equal a double-precision evaluation") {
  // The kernels' loops are compiled per instruction set; whichever runs here must give the
  // textbook numbers, odd row lengths (remainder loops) included.
  for (int V : {1, 7, 33, 1000}) {
    Tensor logits = random_tensor({5, V}, 11 + V), probs = Tensor::empty({5, V});
    for (int64_t i = 0; i < logits.numel(); i++) logits[i] *= 4.f;
    std::vector<int32_t> targets = {0, V - 1, V / 2, 0, -1};
    int64_t count = 0;
    const double total = cross_entropy_forward(probs.data(), &count, logits.data(), targets.data(), 5, V, 0.f, -1);
    double ref_total = 0;
    for (int r = 0; r < 5; r++) {
      double mx = -1e30, sum = 0;
      for (int v = 0; v < V; v++) mx = std::max(mx, double(logits.at({r, v})));
      for (int v = 0; v < V; v++) sum += std::exp(double(logits.at({r, v})) - mx);
      for (int v = 0; v < V; v++)
        REQUIRE(probs.at({r, v}) == Approx(std::exp(double(logits.at({r, v})) - mx) / sum).epsilon(1e-5).margin(1e-7));
      if (targets[r] >= 0) ref_total += mx + std::log(sum) - logits.at({r, targets[r]});
    }
    CHECK(count == 4);
    CHECK(total == Approx(ref_total).epsilon(1e-5));
    Tensor sm = Tensor::empty({5, V});
    softmax_forward(sm.data(), logits.data(), nullptr, 1, 1, 5, V, 1.f);
    for (int64_t i = 0; i < sm.numel(); i++) REQUIRE(sm[i] == Approx(probs[i]).epsilon(1e-5).margin(1e-7));
  }
}

TEST_CASE("logsumexp_rows gives the very normaliser log_softmax_forward subtracts, bit for bit") {
  // A beam search ranks score + (logit − lse) with lse from logsumexp_rows, where it ranked
  // score + log_softmax(logit): the two must agree to the bit for the search to be unchanged
  // (models/decode.cpp). Widths around the vector lengths reach every remainder loop.
  for (int C : {1, 15, 16, 17, 31, 32, 33, 4000}) {
    INFO("C " << C);
    const int64_t R = 7;
    Tensor x = random_tensor({R, C}, 61);
    for (int64_t i = 0; i < R * C; i++) x[i] *= 6.f;  // logits of a few units
    Tensor y = Tensor::empty({R, C});
    log_softmax_forward(y.data(), x.data(), R, C);
    std::vector<float> lse(static_cast<size_t>(R));
    logsumexp_rows(lse.data(), x.data(), R, C);
    for (int64_t r = 0; r < R; r++)
      for (int c = 0; c < C; c++) REQUIRE(y[r * C + c] == x[r * C + c] - lse[size_t(r)]);
  }
}

TEST_CASE("cross-entropy's one-pass forward and backward gives the two passes' loss and gradient, bit for bit") {
  // logits_cross_entropy runs both per row in one pass; the two-pass kernels are the reference.
  // Rows enough to go parallel (R * V above 65,536), odd widths, smoothing, ignored rows, and 1
  // and 2 threads (each thread's first and last row among the rows; not three: OpenMP leaves the
  // order in which three threads' partial losses are added unspecified).
  for (int threads : {1, 2}) {
    set_threads(threads);
    for (int V : {1, 7, 33, 1000, 8000})
      for (float smoothing : {0.f, 0.1f}) {
        INFO("threads " << threads << " V " << V << " smoothing " << smoothing);
        const int R = 40;
        Tensor logits = random_tensor({R, V}, 500 + V);
        for (int64_t i = 0; i < logits.numel(); i++) logits[i] *= 6.f;
        std::vector<int32_t> targets(R);
        for (int r = 0; r < R; r++) targets[r] = r % 5 == 3 ? -1 : (r * 7919) % V;
        Tensor probs = Tensor::empty({R, V}), two = Tensor::empty({R, V}), one = logits.clone();
        int64_t count2 = 0, count1 = 0;
        const double total2 = cross_entropy_forward(probs.data(), &count2, logits.data(), targets.data(), R, V, smoothing, -1);
        cross_entropy_backward(two.data(), probs.data(), targets.data(), R, V, smoothing, -1, 1.f / 32, false);
        const double total1 = cross_entropy_forward_backward(one.data(), &count1, targets.data(), R, V, smoothing, -1, 1.f / 32);
        REQUIRE(count1 == count2);
        REQUIRE(count1 == 32);
        REQUIRE(total1 == total2);
        REQUIRE(one.to_vector() == two.to_vector());
      }
  }
  set_threads(0);
}

TEST_CASE("the row maximum behind cross-entropy and log-softmax finds the largest logit wherever it is") {
  // One logit of +200 among -200s: a row maximum that missed it (a lane or the tail of the
  // vector loop) would make exp(x - max) overflow to inf and the loss inf or NaN. (A maximum too
  // large, say the previous row's, would give every exponential 0 and the loss inf too.)
  for (int V : {1, 2, 15, 16, 17, 31, 32, 33, 47, 100, 300}) {
    for (int at = 0; at < V; at++) {
      std::vector<float> x(size_t(V), -200.f), out(static_cast<size_t>(V)), probs(static_cast<size_t>(V));
      x[size_t(at)] = 200.f;
      log_softmax_forward(out.data(), x.data(), 1, V);
      INFO("V " << V << " max at " << at);
      REQUIRE(out[size_t(at)] == Approx(0.0).margin(1e-6));
      if (V > 1) REQUIRE(out[size_t((at + 1) % V)] == Approx(-400.0).epsilon(1e-6));
      int64_t count = 0;
      const int32_t target = at;
      const double loss = cross_entropy_forward(probs.data(), &count, x.data(), &target, 1, V, 0.f, -1);
      REQUIRE(loss == Approx(0.0).margin(1e-6));
      REQUIRE(probs[size_t(at)] == Approx(1.0));
    }
    // The one-pass kernel over V rows on 1, 2 and 3 threads: row r's largest at r, so that every
    // position is some row's, and the rows' levels 300 apart, so that a maximum taken from another
    // row (a thread's neighbour, a kernel that carries it from row to row) overflows or zeroes every
    // exponential.
    std::vector<float> z(size_t(V) * size_t(V));
    std::vector<int32_t> targets(static_cast<size_t>(V));
    for (int r = 0; r < V; r++) {
      const float peak = r % 2 ? -100.f : 200.f;
      for (int v = 0; v < V; v++) z[size_t(r) * size_t(V) + size_t(v)] = v == r ? peak : peak - 400.f;
      targets[size_t(r)] = r;
    }
    for (int threads : {1, 2, 3}) {  // V = 300: 90,000 logits, split over the threads
      set_threads(threads);
      std::vector<float> zt = z;
      int64_t count = 0;
      const double total = cross_entropy_forward_backward(zt.data(), &count, targets.data(), V, V, 0.f, -1, 1.f);
      INFO("V " << V << ", one pass, threads " << threads);
      REQUIRE(count == V);
      REQUIRE(total == Approx(0.0).margin(1e-6 * V));
      for (int r = 0; r < V; r++)
        for (int v = 0; v < V; v++) REQUIRE(zt[size_t(r) * size_t(V) + size_t(v)] == Approx(0.0).margin(1e-6));  // p - onehot
    }
    set_threads(0);
  }
}

TEST_CASE("dropout backward redraws exactly the forward's mask") {
  const int64_t n = 10000;
  const float p = 0.3f;
  Tensor x = Tensor::full({n}, 1.f), out = Tensor::empty({n});
  const uint64_t seed = 0x1234567887654321ULL;
  dropout_forward(out.data(), x.data(), n, p, seed);
  Tensor dx = Tensor::full({n}, 0.5f), g = Tensor::full({n}, 2.f);
  dropout_backward(dx.data(), g.data(), n, p, seed, true);
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; i++) {
    // out = mask (x = 1), so dx = 0.5 + 2 * mask, element by element
    REQUIRE(dx[i] == Approx(0.5f + 2.f * out[i]));
    dropped += out[i] == 0.f;
  }
  CHECK(dropped > n * 0.27);
  CHECK(dropped < n * 0.33);
  for (int64_t i = 0; i < n; i++) {
    REQUIRE((out[i] == 0.f) == dropout_dropped(seed, i, p));
    if (out[i] != 0.f) REQUIRE(out[i] == Approx(1.f / (1.f - p)));
  }
  // Another seed gives another mask; neighbouring elements are not correlated.
  Tensor out2 = Tensor::empty({n});
  dropout_forward(out2.data(), x.data(), n, p, seed + 1);
  int64_t same = 0, both = 0;
  for (int64_t i = 0; i < n; i++) same += (out[i] == 0.f) == (out2[i] == 0.f);
  for (int64_t i = 0; i + 1 < n; i++) both += out[i] == 0.f && out[i + 1] == 0.f;
  CHECK(same < n * 0.62);                   // independent masks agree on p² + (1-p)² = 58%
  CHECK(both == Approx(n * p * p).epsilon(0.15));  // pairs dropped together: p²
}

TEST_CASE("dropout_dropped is lowbias32 over i * 0x9e3779b9 + the seed's low half, against p * 2^24") {
  // The mask's definition written out, as the kernels computed it before they stepped the hash's
  // input by an add: a run's masks, and so its numbers, must not move when the kernels do.
  const auto mix32 = [](uint32_t x) {
    x ^= x >> 16, x *= 0x7feb352dU, x ^= x >> 15, x *= 0x846ca68bU, x ^= x >> 16;
    return x;
  };
  const auto dropped = [&](uint64_t seed, int64_t i, float p) {
    const uint32_t h = mix32(mix32(uint32_t(i) * 0x9e3779b9U + uint32_t(seed)) ^ uint32_t(seed >> 32));
    return (h >> 8) < static_cast<uint32_t>(double(p) * 16777216.0);
  };
  const int64_t wrap = int64_t(1) << 32;  // i past 2^32 draws i mod 2^32's mask
  for (const uint64_t seed : {0x1234567887654321ULL, 0ULL, ~0ULL})
    for (const float p : {0.f, 0.1f, 0.3f, 0.5f, std::nextafter(1.f, 0.f)})
      for (const int64_t i0 : {int64_t(0), wrap - 1000, 5 * wrap + 17}) {
        int64_t differ = 0;
        for (int64_t i = i0; i < i0 + 20000; i++) differ += dropout_dropped(seed, i, p) != dropped(seed, i, p);
        INFO("seed " << seed << ", p " << p << ", from " << i0);
        REQUIRE(differ == 0);
      }
  // And one mask pinned, so that the definition above cannot drift with the code: seed
  // 0x1234567887654321 at p 0.3 drops 22,925 of 76,807 elements, the first 64 as these bits
  // (computed once, by the formula above, before the kernels changed).
  uint64_t first = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < 76807; i++) {
    const bool d = dropout_dropped(0x1234567887654321ULL, i, 0.3f);
    count += d;
    if (i < 64) first |= uint64_t(d) << i;
  }
  CHECK(first == 0x081200923f8000e2ULL);
  CHECK(count == 22925);
}

TEST_CASE("every dropout kernel draws dropout_dropped's mask, element by element, on 1 to 3 threads") {
  // The kernels step the hash's input by an add from each thread's first element on;
  // dropout_dropped multiplies the index. Above the threading threshold and of an odd length,
  // so that the threads' blocks end anywhere; two seeds.
  const int64_t n = 300 * 256 + 7;
  const float p = 0.3f, keep = 1.f / (1.f - p);
  Tensor ones = Tensor::full({n}, 1.f), zeros = Tensor::full({n}, 0.f);
  for (const uint64_t seed : {0x1234567887654321ULL, 0xabcdef01fffffff0ULL}) {
    Tensor want = Tensor::empty({n}), want_acc = Tensor::empty({n});
    for (int64_t i = 0; i < n; i++) {
      want[i] = dropout_dropped(seed, i, p) ? 0.f : keep;
      want_acc[i] = 0.5f + want[i];
    }
    for (int threads : {1, 2, 3}) {
      set_threads(threads);
      Tensor fwd = Tensor::empty({n}), bwd = Tensor::empty({n}), bwd_acc = Tensor::full({n}, 0.5f);
      Tensor added = Tensor::empty({n}), relu_drop = Tensor::empty({n});
      dropout_forward(fwd.data(), ones.data(), n, p, seed);
      dropout_backward(bwd.data(), ones.data(), n, p, seed, false);
      dropout_backward(bwd_acc.data(), ones.data(), n, p, seed, true);
      dropout_add_forward(added.data(), zeros.data(), ones.data(), n, p, seed);
      relu_dropout_forward(relu_drop.data(), ones.data(), n, p, seed);
      const std::pair<const char*, const Tensor*> got[] = {{"dropout_forward", &fwd},
                                                           {"dropout_backward", &bwd},
                                                           {"dropout_backward, adding", &bwd_acc},
                                                           {"dropout_add_forward", &added},
                                                           {"relu_dropout_forward", &relu_drop}};
      for (const auto& [kernel, t] : got) {
        const Tensor& w = t == &bwd_acc ? want_acc : want;
        int64_t first_bad = -1;
        for (int64_t i = 0; i < n && first_bad < 0; i++)
          if ((*t)[i] != w[i]) first_bad = i;
        INFO(kernel << ", seed " << seed << ", threads " << threads << ": first element that differs " << first_bad);
        CHECK(first_bad == -1);
      }
    }
  }
  set_threads(0);
}

TEST_CASE("relu_dropout equals relu then dropout, forward and backward, bit for bit, on 1 and 2 threads") {
  const int64_t n = 300 * 256;  // above the threading threshold
  Tensor x = random_tensor({n}, 61), g = random_tensor({n}, 62), acc0 = random_tensor({n}, 63);
  x[5] = 0.f, x[6] = -0.f;  // the kink: relu gives 0, and no gradient passes
  // The backward reads the output: [out > 0] must be [x > 0] and kept wherever x is odd too
  // (the largest float kept becomes +Inf, the smallest positive one stays positive). Each at
  // many places, so that some are dropped and some kept.
  const float odd[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                       std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min(),
                       std::numeric_limits<float>::max(), -std::numeric_limits<float>::denorm_min()};
  for (int64_t i = 0; i < 600; i++) x[100 + 7 * i] = odd[i % 6];
  for (int threads : {1, 2}) {
    set_threads(threads);
    Tensor relu_out = Tensor::empty({n}), want = Tensor::empty({n}), got = Tensor::full({n}, 9.f);
    relu_forward(relu_out.data(), x.data(), n);
    dropout_forward(want.data(), relu_out.data(), n, 0.3f, 1234);
    relu_dropout_forward(got.data(), x.data(), n, 0.3f, 1234);
    INFO("threads " << threads);
    REQUIRE(std::memcmp(got.data(), want.data(), sizeof(float) * size_t(n)) == 0);
    for (bool accumulate : {false, true}) {
      Tensor drop_grad = Tensor::empty({n}), want_dx = accumulate ? acc0.clone() : Tensor::full({n}, 9.f);
      Tensor got_dx = want_dx.clone();
      dropout_backward(drop_grad.data(), g.data(), n, 0.3f, 1234, false);
      relu_backward(want_dx.data(), drop_grad.data(), relu_out.data(), n, accumulate);
      relu_dropout_backward(got_dx.data(), g.data(), got.data(), n, 0.3f, accumulate);
      INFO("accumulate " << accumulate);
      REQUIRE(std::memcmp(got_dx.data(), want_dx.data(), sizeof(float) * size_t(n)) == 0);
    }
  }
  set_threads(0);
  // and it drops: about 30% of the positive inputs are 0, the rest scaled by 1/0.7
  Tensor y = Tensor::empty({n});
  relu_dropout_forward(y.data(), x.data(), n, 0.3f, 1234);
  int64_t positive = 0, dropped = 0;
  for (int64_t i = 0; i < n; i++)
    if (x[i] > 0.f) {
      positive++;
      if (y[i] == 0.f) dropped++;
      else REQUIRE(y[i] == x[i] * (1.f / 0.7f));
    } else {
      REQUIRE(y[i] == 0.f);
    }
  REQUIRE(double(dropped) / double(positive) == Approx(0.3).margin(0.01));
}

TEST_CASE("dropout_add equals dropout then add, bit for bit, on 1 and 2 threads") {
  // Random x and y of one size: had the compiler fused y * keep into the add (one rounding where
  // dropout then add round twice), most kept elements would differ in their last bit.
  for (const int64_t n : {int64_t(1001), int64_t(300 * 256)}) {  // below and above the threading threshold
    Tensor x = random_tensor({n}, 71), y = random_tensor({n}, 72);
    // Signed zeros and non-finite values, where a dropped element meets them and where a kept one
    // does (an element dropped at p 0.1 is dropped at 0.5 too: the same hash, a higher threshold).
    int64_t dropped_i = 0;
    while (!dropout_dropped(4321, dropped_i, 0.1f)) dropped_i++;
    int64_t kept_i = dropped_i + 5;  // clear of the special values set after dropped_i
    while (dropout_dropped(4321, kept_i, 0.5f)) kept_i++;
    REQUIRE(dropped_i + 4 < n);
    REQUIRE(kept_i + 4 < n);
    x[dropped_i] = -0.f;  // -0 + a dropped (+0) element: +0
    x[kept_i] = -0.f, y[kept_i] = -0.f;  // -0 + a kept -0: -0
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    for (int64_t i : {dropped_i, kept_i}) y[i + 1] = nan, y[i + 2] = inf, y[i + 3] = -inf, x[i + 4] = nan;
    for (int threads : {1, 2}) {
      set_threads(threads);
      INFO("n " << n << ", threads " << threads);
      for (const float p : {0.1f, 0.5f}) {
        Tensor dropped = Tensor::empty({n}), want = Tensor::empty({n}), got = Tensor::full({n}, 9.f);
        dropout_forward(dropped.data(), y.data(), n, p, 4321);
        add_forward(want.data(), x.data(), dropped.data(), n);
        dropout_add_forward(got.data(), x.data(), y.data(), n, p, 4321);
        REQUIRE(std::memcmp(got.data(), want.data(), sizeof(float) * size_t(n)) == 0);
        REQUIRE(!std::signbit(got[dropped_i]));
        REQUIRE(std::signbit(got[kept_i]));
        int64_t kept = 0;
        for (int64_t i = 0; i < n; i++) kept += got[i] != x[i];
        CHECK(double(kept) / double(n) == Approx(1.0 - p).margin(0.05));  // and it drops p of y
      }
    }
  }
  set_threads(0);
}

TEST_CASE("permute0213_add accumulates the same permutation permute0213 writes") {
  const int A = 2, B = 3, C = 4, D = 5;
  Tensor in = random_tensor({A, B, C, D}, 3), base = random_tensor({A, C, B, D}, 4);
  Tensor perm = Tensor::empty({A, C, B, D});
  permute0213(perm.data(), in.data(), A, B, C, D);
  Tensor acc = base.clone();
  permute0213_add(acc.data(), in.data(), A, B, C, D);
  for (int64_t i = 0; i < acc.numel(); i++) REQUIRE(acc[i] == base[i] + perm[i]);
  // and permute0213 is a permutation: element (a,b,c,d) lands at (a,c,b,d)
  CHECK(perm.at({1, 2, 0, 4}) == in.at({1, 0, 2, 4}));
}

TEST_CASE("batched products spread over threads equal the plain-loop reference, entry by entry") {
  // Attention's shapes: per-head products small enough that OpenBLAS runs each on one thread,
  // so the batch is split over the threads instead.
  const int batch = 12, M = 24, N = 20, K = 16;
  for (int threads : {1, 2})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        set_threads(threads);
        Tensor a = random_tensor(ta ? Shape{batch, K, M} : Shape{batch, M, K}, 11);
        Tensor b = random_tensor(tb ? Shape{batch, N, K} : Shape{batch, K, N}, 12);
        Tensor c = random_tensor({batch, M, N}, 13), ref = c.clone();
        matmul_batched(c.data(), a.data(), b.data(), batch, M, N, K, ta, tb, 0.5f, 1.f);
        for (int i = 0; i < batch; i++)
          matmul_reference(ref.data() + i * M * N, a.data() + i * M * K, b.data() + i * K * N, M, N, K, ta, tb, 0.5f, 1.f);
        INFO("threads " << threads << " trans_a " << ta << " trans_b " << tb);
        REQUIRE(max_abs_diff(c, ref) < 1e-5f);
      }
  // the gram product's gradient: dQ += alpha (G + Gᵀ) Q for every entry
  check_gram_backward(batch, 24, 16, 14, 1e-5f);
  set_threads(0);
}

TEST_CASE("products on heads side by side equal the same products on split heads, bit for bit") {
  // Attention reads (B, T, H·D) with a row stride instead of copying it to (B, H, T, D) first;
  // BLAS computes each element the same way whatever the stride, so this is equality, not a
  // tolerance. T 24 is a training batch's (one head per thread); T 300 makes each head's product
  // large enough that gemm splits it over the threads.
  for (int T : {24, 300})
    for (int threads : {1, 2}) {
      set_threads(threads);
      const int B = 3, H = 4, D = 8, C = H * D, batch = B * H;
      const HeadLayout packed = HeadLayout::side_by_side(H, T, D), scores = HeadLayout::contiguous(T, T);
      Tensor q = random_tensor({B, T, C}, 41), k = random_tensor({B, T, C}, 42), g = random_tensor({B, H, T, T}, 43);
      Tensor qs = Tensor::empty({B, H, T, D}), ks = Tensor::empty({B, H, T, D});
      permute0213(qs.data(), q.data(), B, T, H, D);
      permute0213(ks.data(), k.data(), B, T, H, D);
      INFO("T " << T << ", threads " << threads);
      // S = α Q Kᵀ, then dQ = α G K and dK += α Gᵀ Q (beta 1: a second writer), and O = P V
      Tensor s1 = Tensor::empty({B, H, T, T}), s2 = Tensor::empty({B, H, T, T});
      matmul_heads(s1.data(), scores, q.data(), packed, k.data(), packed, batch, T, T, D, false, true, 0.3f);
      matmul_batched(s2.data(), qs.data(), ks.data(), batch, T, T, D, false, true, 0.3f);
      for (int64_t i = 0; i < s1.numel(); i++) REQUIRE(s1[i] == s2[i]);
      Tensor dk1 = random_tensor({B, T, C}, 44), dk2 = Tensor::empty({B, H, T, D});
      permute0213(dk2.data(), dk1.data(), B, T, H, D);
      matmul_heads(dk1.data(), packed, g.data(), scores, q.data(), packed, batch, T, D, T, true, false, 0.3f, 1.f);
      matmul_batched(dk2.data(), g.data(), qs.data(), batch, T, D, T, true, false, 0.3f, 1.f);
      Tensor dk2_packed = Tensor::empty({B, T, C});
      permute0213(dk2_packed.data(), dk2.data(), B, H, T, D);
      for (int64_t i = 0; i < dk1.numel(); i++) REQUIRE(dk1[i] == dk2_packed[i]);
      Tensor o1 = Tensor::empty({B, T, C}), o2 = Tensor::empty({B, H, T, D}), o2_packed = Tensor::empty({B, T, C});
      matmul_heads(o1.data(), packed, g.data(), scores, k.data(), packed, batch, T, D, T, false, false);
      matmul_batched(o2.data(), g.data(), ks.data(), batch, T, D, T, false, false);
      permute0213(o2_packed.data(), o2.data(), B, H, T, D);
      for (int64_t i = 0; i < o1.numel(); i++) REQUIRE(o1[i] == o2_packed[i]);
      // the symmetric product and its gradient α (G + Gᵀ) Q
      gram_heads(s1.data(), scores, q.data(), packed, batch, T, D, 0.3f);
      gram_batched(s2.data(), qs.data(), batch, T, D, 0.3f);
      for (int64_t i = 0; i < s1.numel(); i++) REQUIRE(s1[i] == s2[i]);
      Tensor dq1 = Tensor::empty({B, T, C}), dq2 = Tensor::empty({B, H, T, D}), dq2_packed = Tensor::empty({B, T, C});
      gram_backward_heads(dq1.data(), packed, g.data(), scores, q.data(), packed, batch, T, D, 0.3f, false);
      gram_backward_batched(dq2.data(), g.data(), qs.data(), batch, T, D, 0.3f, false);
      permute0213(dq2_packed.data(), dq2.data(), B, H, T, D);
      for (int64_t i = 0; i < dq1.numel(); i++) REQUIRE(dq1[i] == dq2_packed[i]);
    }
  set_threads(0);
}

TEST_CASE("backward kernels: assigning into a fresh buffer equals adding onto zeros, element for element") {
  // The first writer of a gradient assigns (accumulate = false) into memory nobody zeroed; here
  // that memory is NaN, so an element the assign path skips (e.g. a padding row) fails the test.
  // Sizes above the threading threshold, on 1 and 2 threads.
  const int64_t R = 600, C = 256, n = R * C;
  Tensor x = random_tensor({R, C}, 31), g = random_tensor({R, C}, 32), w = random_tensor({C}, 33);
  Tensor probs = Tensor::empty({R, C}), mean = Tensor::empty({R}), rstd = Tensor::empty({R});
  std::vector<int32_t> targets(R);
  for (int64_t r = 0; r < R; r++) targets[r] = r % 7 == 0 ? -1 : int32_t((r * 37) % C);  // -1: ignored rows
  int64_t count = 0;
  cross_entropy_forward(probs.data(), &count, x.data(), targets.data(), R, int(C), 0.1f, -1);
  Tensor out = Tensor::empty({R, C});
  layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), w.data(), R, int(C), 1e-5f);
  Tensor sm = Tensor::empty({R, C});
  softmax_forward(sm.data(), x.data(), nullptr, 1, 1, int(R), int(C), 0.5f);
  Tensor rd = Tensor::empty({n});  // relu_dropout's output, which its backward reads
  relu_dropout_forward(rd.data(), x.data(), n, 0.1f, 77);
  const int batch = 40, T = 24, D = 16;  // gram: 40 products of 24 x 16
  Tensor q = random_tensor({batch, T, D}, 34), gq = random_tensor({batch, T, T}, 35);
  // kernel(dst, accumulate) for each backward kernel with an assign mode
  std::vector<std::pair<const char*, std::function<void(float*, bool)>>> kernels = {
      {"relu", [&](float* d, bool acc) { relu_backward(d, g.data(), x.data(), n, acc); }},
      {"gelu", [&](float* d, bool acc) { gelu_backward(d, g.data(), x.data(), n, acc); }},
      {"dropout", [&](float* d, bool acc) { dropout_backward(d, g.data(), n, 0.1f, 77, acc); }},
      {"relu_dropout", [&](float* d, bool acc) { relu_dropout_backward(d, g.data(), rd.data(), n, 0.1f, acc); }},
      {"softmax", [&](float* d, bool acc) { softmax_backward(d, g.data(), sm.data(), R, int(C), 0.5f, acc); }},
      {"log_softmax", [&](float* d, bool acc) { log_softmax_backward(d, g.data(), x.data(), R, int(C), acc); }},
      {"cross_entropy",
       [&](float* d, bool acc) { cross_entropy_backward(d, probs.data(), targets.data(), R, int(C), 0.1f, -1, 0.01f, acc); }},
      {"layernorm", [&](float* d, bool acc) {
         Tensor dw = Tensor::zeros({C}), db = Tensor::zeros({C});
         layernorm_backward(d, dw.data(), db.data(), g.data(), x.data(), w.data(), mean.data(), rstd.data(), R, int(C), acc);
       }},
      {"gram", [&](float* d, bool acc) { gram_backward_batched(d, gq.data(), q.data(), batch, T, D, 0.25f, acc); }},
  };
  for (int threads : {1, 2}) {
    set_threads(threads);
    for (auto& [name, kernel] : kernels) {
      INFO(name << " on " << threads << " threads");
      const int64_t m = std::string(name) == "gram" ? q.numel() : n;
      Tensor added = Tensor::zeros({m}), assigned = Tensor::full({m}, std::numeric_limits<float>::quiet_NaN());
      kernel(added.data(), true);
      kernel(assigned.data(), false);
      REQUIRE(all_finite(assigned));
      REQUIRE(max_abs_diff(assigned, added) <= 1e-6f * std::max(1.0, l2_norm(added)));
      // and accumulating onto something adds exactly what assigning writes
      Tensor base = random_tensor({m}, 36), sum = base.clone();
      kernel(sum.data(), true);
      for (int64_t i = 0; i < m; i++) REQUIRE(sum[i] == Approx(base[i] + assigned[i]).margin(1e-6));
    }
  }
  set_threads(0);
  // the ignored rows really are zero, not skipped
  Tensor ce = Tensor::full({R, C}, std::numeric_limits<float>::quiet_NaN());
  cross_entropy_backward(ce.data(), probs.data(), targets.data(), R, int(C), 0.1f, -1, 0.01f, false);
  CHECK(ce.at({0, 5}) == 0.f);
  CHECK(ce.at({7, 100}) == 0.f);
  CHECK(ce.at({1, 3}) != 0.f);
}

TEST_CASE("adam_update (vectorised, threaded) equals the plain loop of its formula") {
  for (const int64_t n : {int64_t(4099), int64_t(200000)}) {  // below and above the threading threshold
  INFO("n " << n);
  Tensor g = random_tensor({n}, 41), w0 = random_tensor({n}, 42);
  const float lr = 1e-3f, b1 = 0.9f, b2 = 0.98f, eps = 1e-9f, wd = 0.01f;
  for (int threads : {1, 2}) {
    set_threads(threads);
    Tensor w = w0.clone(), m = Tensor::zeros({n}), v = Tensor::zeros({n});
    std::vector<float> rw(w0.data(), w0.data() + n), rm(n, 0.f), rv(n, 0.f);
    for (int t = 1; t <= 3; t++) {
      const float bc1 = 1.f - std::pow(b1, float(t)), bc2 = 1.f - std::pow(b2, float(t));
      adam_update(w.data(), m.data(), v.data(), g.data(), n, lr, b1, b2, eps, wd, bc1, bc2);
      for (int64_t k = 0; k < n; k++) {
        rm[k] = b1 * rm[k] + (1.f - b1) * g[k];
        rv[k] = b2 * rv[k] + (1.f - b2) * g[k] * g[k];
        rw[k] -= lr * ((rm[k] / bc1) / (std::sqrt(rv[k] / bc2) + eps) + wd * rw[k]);
      }
    }
    INFO("threads " << threads);
    for (int64_t k = 0; k < n; k++) {
      REQUIRE(w[k] == Approx(rw[k]).epsilon(1e-6).margin(1e-7));
      REQUIRE(m[k] == Approx(rm[k]).epsilon(1e-6).margin(1e-9));
    }
    // and it moved: three steps of lr against the gradient's sign, about 3e-3 each
    CHECK(std::fabs(w[7] - w0[7]) > 2e-3);
  }
  }
  set_threads(0);
}

TEST_CASE("adam_update_tensors gives adam_update's bits tensor by tensor, on 1 and 2 threads") {
  // Pieces of every tensor shared among the threads: the sizes below put piece edges inside
  // tensors, tensors shorter than a vector, and one tensor above the threading threshold.
  const std::vector<int64_t> sizes = {1, 17, 4096, 65536, 65537, 200003, 3};
  std::vector<Tensor> g, w0;
  for (size_t i = 0; i < sizes.size(); i++) {
    g.push_back(random_tensor({sizes[i]}, 81 + uint64_t(i)));
    w0.push_back(random_tensor({sizes[i]}, 91 + uint64_t(i)));
  }
  for (int threads : {1, 2}) {
    set_threads(threads);
    std::vector<Tensor> w1, m1, v1, w2, m2, v2;
    for (size_t i = 0; i < sizes.size(); i++) {
      w1.push_back(w0[i].clone()), m1.push_back(Tensor::zeros({sizes[i]})), v1.push_back(Tensor::zeros({sizes[i]}));
      w2.push_back(w0[i].clone()), m2.push_back(Tensor::zeros({sizes[i]})), v2.push_back(Tensor::zeros({sizes[i]}));
    }
    for (int t = 1; t <= 2; t++) {
      const float bc1 = 1.f - std::pow(0.9f, float(t)), bc2 = 1.f - std::pow(0.98f, float(t));
      std::vector<AdamTensor> all;
      for (size_t i = 0; i < sizes.size(); i++) {
        set_threads(1);  // the reference: each tensor alone, on one thread
        adam_update(w1[i].data(), m1[i].data(), v1[i].data(), g[i].data(), sizes[i], 1e-3f, 0.9f, 0.98f, 1e-9f, 0.01f,
                    bc1, bc2, 0.5f);
        all.push_back({w2[i].data(), m2[i].data(), v2[i].data(), g[i].data(), sizes[i]});
      }
      set_threads(threads);
      adam_update_tensors(all, 1e-3f, 0.9f, 0.98f, 1e-9f, 0.01f, bc1, bc2, 0.5f);
    }
    for (size_t i = 0; i < sizes.size(); i++) {
      INFO("threads " << threads << ", tensor of " << sizes[i]);
      const size_t bytes = size_t(sizes[i]) * sizeof(float);
      REQUIRE(std::memcmp(w1[i].data(), w2[i].data(), bytes) == 0);
      REQUIRE(std::memcmp(m1[i].data(), m2[i].data(), bytes) == 0);
      REQUIRE(std::memcmp(v1[i].data(), v2[i].data(), bytes) == 0);
      CHECK(w2[i][0] != w0[i][0]);  // and it moved
    }
  }
  set_threads(0);
}

TEST_CASE("adam_update's grad_scale gives the bits of scaling the gradient in place first") {
  // Clipping's factor taken inside the update (Adam::step's grad_scale) must not move a weight by
  // a bit against the pass it replaces: scale_forward in place, then the update at scale 1.
  for (const int64_t n : {int64_t(4099), int64_t(200000)}) {
    for (int threads : {1, 2}) {
      set_threads(threads);
      INFO("n " << n << ", threads " << threads);
      const Tensor g = random_tensor({n}, 51), w0 = random_tensor({n}, 52);
      const float s = 0.37f;  // a factor clipping could give
      Tensor w1 = w0.clone(), m1 = Tensor::zeros({n}), v1 = Tensor::zeros({n});
      Tensor w2 = w0.clone(), m2 = Tensor::zeros({n}), v2 = Tensor::zeros({n});
      for (int t = 1; t <= 2; t++) {
        const float bc1 = 1.f - std::pow(0.9f, float(t)), bc2 = 1.f - std::pow(0.98f, float(t));
        Tensor scaled = g.clone();
        scale_forward(scaled.data(), scaled.data(), s, n);
        adam_update(w1.data(), m1.data(), v1.data(), scaled.data(), n, 1e-3f, 0.9f, 0.98f, 1e-9f, 0.01f, bc1, bc2);
        adam_update(w2.data(), m2.data(), v2.data(), g.data(), n, 1e-3f, 0.9f, 0.98f, 1e-9f, 0.01f, bc1, bc2, s);
      }
      REQUIRE(std::memcmp(w1.data(), w2.data(), size_t(n) * sizeof(float)) == 0);
      REQUIRE(std::memcmp(m1.data(), m2.data(), size_t(n) * sizeof(float)) == 0);
      REQUIRE(std::memcmp(v1.data(), v2.data(), size_t(n) * sizeof(float)) == 0);
      CHECK(w2[5] != w0[5]);  // and it moved
    }
  }
  set_threads(0);
}

TEST_CASE("sum_squares equals the plain double sum, and the same bits at any thread count") {
  // Partial sums in blocks and lanes add in another order than one running sum: equal to 1e-12
  // relative, not to the bit. Across thread counts the order is fixed: equal to the bit.
  for (const int64_t n : {int64_t(0), int64_t(1), int64_t(31), int64_t(32), int64_t(33), int64_t(65536), int64_t(65537),
                          int64_t(300001)}) {
    INFO("n " << n);
    Tensor x = random_tensor({std::max<int64_t>(n, 1)}, 51);
    double ref = 0;
    for (int64_t i = 0; i < n; i++) ref += double(x[i]) * double(x[i]);
    set_threads(1);
    const double one = sum_squares(x.data(), n);
    set_threads(2);
    const double two = sum_squares(x.data(), n);
    REQUIRE(one == Approx(ref).epsilon(1e-12).margin(0));
    REQUIRE(one == two);
  }
  set_threads(0);
}

TEST_CASE("elementwise kernels split over threads give their single-thread results") {
  // Sizes above the parallel threshold; the one-thread run is the reference.
  const int64_t R = 600, C = 256, n = R * C;
  Tensor x = random_tensor({R, C}, 21), y = random_tensor({R, C}, 22), w = random_tensor({C}, 23);
  auto run = [&](int threads) {
    set_threads(threads);
    std::vector<Tensor> o;
    Tensor t = Tensor::empty({R, C});
    add_forward(t.data(), x.data(), y.data(), n);
    o.push_back(t.clone());
    relu_forward(t.data(), x.data(), n);
    o.push_back(t.clone());
    Tensor acc = y.clone();
    relu_backward(acc.data(), x.data(), t.data(), n, true);
    axpy(acc.data(), 0.5f, x.data(), n);
    o.push_back(acc);
    dropout_forward(t.data(), x.data(), n, 0.1f, 99);
    o.push_back(t.clone());
    Tensor dd = y.clone();
    dropout_backward(dd.data(), x.data(), n, 0.1f, 99, true);
    o.push_back(dd);
    Tensor dbias = Tensor::full({C}, 0.5f);  // column sums, each column summed in row order
    bias_backward(dbias.data(), x.data(), R, int(C));
    o.push_back(dbias);
    Tensor perm = Tensor::empty({4, 25, 6, 256}), pacc = y.reshape({4, 6, 25, 256}).clone();
    permute0213(perm.data(), x.data(), 4, 6, 25, 256);
    permute0213_add(pacc.data(), x.data(), 4, 6, 25, 256);
    o.push_back(perm);
    o.push_back(pacc);
    Tensor out = Tensor::empty({R, C}), mean = Tensor::empty({R}), rstd = Tensor::empty({R});
    layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), y.data(), R, int(C), 1e-5f);
    Tensor dx = Tensor::zeros({R, C}), dw = Tensor::full({C}, 1.f), db = Tensor::zeros({C});
    layernorm_backward(dx.data(), dw.data(), db.data(), y.data(), x.data(), w.data(), mean.data(), rstd.data(), R, int(C),
                       true);
    o.push_back(out);
    o.push_back(dx);
    o.push_back(dw);
    o.push_back(db);
    return o;
  };
  std::vector<Tensor> one = run(1), two = run(2);
  set_threads(0);
  for (size_t k = 0; k < one.size(); k++) {
    INFO("output " << k);
    // same arithmetic split by index or by row (layer norm's output and input gradient included)
    if (k < 10) REQUIRE(max_abs_diff(one[k], two[k]) == 0.f);
    // layer norm's weight and bias grads are sums over 600 rows, added in another order
    else REQUIRE(max_abs_diff(one[k], two[k]) < 1e-4f);
  }
  // and the split sums are right: db = Σ_rows dy
  Tensor db_ref = Tensor::zeros({C});
  for (int64_t r = 0; r < R; r++)
    for (int64_t c = 0; c < C; c++) db_ref[c] += y[r * C + c];
  REQUIRE(max_abs_diff(two[11], db_ref) < 1e-3f);
  // Narrow layers (d_model 64 and below) split their columns in blocks of 16, wider ones in blocks
  // of 64: still each column summed in row order, onto what dbias held, so the same bits as the
  // loop by hand on any number of threads. 2400 rows: every width here is above the parallel
  // threshold (40 and 48 columns: three blocks, the last of 8 or 16; 200: three of 64 and one of
  // 8; 144 and 208: blocks of 64 and a last one of 16; 100: six of 16 and one of 4; 16 and 20: one
  // thread's block, and a last one of 4).
  for (int narrow : {64, 40, 48, 100, 128, 144, 200, 208, 256, 16, 20}) {
    Tensor g = random_tensor({4 * R, narrow}, 24);
    std::vector<Tensor> sums;
    for (int threads : {1, 2, 3}) {
      set_threads(threads);
      Tensor db = Tensor::full({narrow}, 0.5f);
      bias_backward(db.data(), g.data(), R * 4, narrow);
      sums.push_back(db);
    }
    set_threads(0);
    Tensor ref = Tensor::full({narrow}, 0.5f);
    for (int64_t c = 0; c < narrow; c++)
      for (int64_t r = 0; r < 4 * R; r++) ref[c] += g[r * narrow + c];  // the same order, by hand
    INFO("columns " << narrow);
    REQUIRE(max_abs_diff(sums[0], ref) == 0.f);
    REQUIRE(max_abs_diff(sums[1], ref) == 0.f);
    REQUIRE(max_abs_diff(sums[2], ref) == 0.f);
  }
  Tensor bias_ref = Tensor::full({C}, 0.5f);
  for (int64_t r = 0; r < R; r++)
    for (int64_t c = 0; c < C; c++) bias_ref[c] += x[r * C + c];
  REQUIRE(max_abs_diff(two[5], bias_ref) < 1e-3f);
}

TEST_CASE("threads setting reaches both BLAS and the framework") {
  set_threads(1);
  REQUIRE(num_threads() == 1);
  CHECK_FALSE(splits_products());
  set_threads(2);
  REQUIRE(num_threads() == 2);
  // With OpenBLAS, attnlab splits the products over its threads unless told not to.
  const bool openblas = std::string(blas_kernels()) != "unknown BLAS";
  CHECK(splits_products() == openblas);
  setenv("ATTNLAB_OPENBLAS_THREADS", "1", 1);
  set_threads(2);
  CHECK_FALSE(splits_products());
  setenv("ATTNLAB_OPENBLAS_THREADS", "0", 1);
  set_threads(2);
  CHECK(splits_products() == openblas);
  unsetenv("ATTNLAB_OPENBLAS_THREADS");
  set_threads(0);
}

TEST_CASE("a thread setting in the environment that is not a number is refused, naming the variable") {
  using Catch::Matchers::Contains;
  for (const char* bad : {"two", "-3", "2x", "1.5", "5000"}) {
    setenv("ATTNLAB_THREADS", bad, 1);
    INFO("ATTNLAB_THREADS=" << bad);
    REQUIRE_THROWS_WITH(set_threads(0), Contains("ATTNLAB_THREADS='" + std::string(bad) + "'") &&
                                            Contains("expected a whole number from 1 to 1024"));
  }
  setenv("ATTNLAB_THREADS", "1", 1);
  set_threads(0);
  CHECK(num_threads() == 1);
  setenv("ATTNLAB_THREADS", "0", 1);  // all cores, as --threads 0
  set_threads(0);
  CHECK(num_threads() == int(std::max(1u, std::thread::hardware_concurrency())));
  unsetenv("ATTNLAB_THREADS");
  setenv("ATTNLAB_OPENBLAS_THREADS", "yes", 1);
  REQUIRE_THROWS_WITH(set_threads(2), Contains("ATTNLAB_OPENBLAS_THREADS='yes': expected 1"));
  unsetenv("ATTNLAB_OPENBLAS_THREADS");
  set_threads(0);
}

TEST_CASE("startup re-executes once with OpenMP's idle threads set to sleep after a short spin") {
  // test_main calls init_runtime like attnlab's main: this process is the re-executed one
  // (or the user chose a wait policy themselves, which is kept).
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  REQUIRE((policy != nullptr || spin != nullptr));
  const char* set = std::getenv("ATTNLAB_RUNTIME_SET");  // what init_runtime set
  if (set && std::string(set).find("OMP_WAIT_POLICY") != std::string::npos) {
    CHECK(std::string(policy) == "passive");
    REQUIRE(spin != nullptr);
    CHECK(std::string(spin) == attn::kSpinCount);
  }
}

TEST_CASE("BLAS kernel choice: never downgrade, upgrade generic kernels to what the CPU supports") {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  CHECK(fast_blas_core_for_this_cpu("SkylakeX") == nullptr);
  CHECK(fast_blas_core_for_this_cpu("Zen") == nullptr);
  const char* from_prescott = fast_blas_core_for_this_cpu("Prescott");
  if (avx512) CHECK(std::string(from_prescott) == "SkylakeX");
  else if (avx2) CHECK(std::string(from_prescott) == "Haswell");
  else CHECK(from_prescott == nullptr);
  const char* from_haswell = fast_blas_core_for_this_cpu("Haswell");
  if (avx512) CHECK(std::string(from_haswell) == "SkylakeX");
  else CHECK(from_haswell == nullptr);
}

TEST_CASE("safetensors round-trips names, shapes, values and metadata") {
  fs::path d = temp_dir("st");
  Tensor a = random_tensor({2, 3}, 7), b = random_tensor({5}, 8);
  save_safetensors((d / "x.safetensors").string(), {{"enc.0.wq.weight", a}, {"bias", b}}, {{"step", "12"}});
  SafetensorsFile f = load_safetensors((d / "x.safetensors").string());
  REQUIRE(f.tensors.size() == 2);
  REQUIRE(f.metadata.at("step") == "12");
  REQUIRE(max_abs_diff(*f.find("enc.0.wq.weight"), a) == 0.f);
  REQUIRE(max_abs_diff(*f.find("bias"), b) == 0.f);
  // header starts at byte 8 and data is 8-byte aligned, as the format's writer does
  std::string bytes = read_file((d / "x.safetensors").string());
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  REQUIRE((8 + n) % 8 == 0);
  REQUIRE(bytes[8] == '{');
  fs::remove_all(d);
}

static std::string with_header(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; i++) out[i] = char((n >> (8 * i)) & 0xff);
  return out + json + data;
}

TEST_CASE("safetensors reader rejects every malformed file with a message naming it") {
  const std::string data8(8, '\0');
  auto bad = [](const std::string& bytes, const std::string& why) {
    INFO(why);
    REQUIRE_THROWS_WITH(decode_safetensors(bytes, "ckpt.safetensors"),
                        Catch::StartsWith("ckpt.safetensors: not a valid safetensors file") && Catch::Contains(why));
  };
  bad("abc", "shorter than the 8-byte header");
  bad(with_header("{", ""), "not well-formed JSON");
  bad(with_header("[1]", ""), "not a JSON object");
  std::string huge(8, '\xff');
  bad(huge + "{}", "exceeds");
  bad(std::string("\x10\0\0\0\0\0\0\0", 8) + "{}", "runs past the end");
  bad(with_header(R"({"w":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", data8), "unknown dtype");
  bad(with_header(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", data8), "F32 only");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8), "needs 12");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8), "gap or overlap");
  bad(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  data8),
      "gap or overlap");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data8), "truncated or trailing");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"), "truncated or trailing");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8), "negative");
  bad(with_header(R"({"w":{"dtype":"F32","shape":[2]}})", data8), "lacks");
  // a valid file, truncated at every length, is always rejected (never read as garbage)
  std::string good = encode_safetensors({{"w", random_tensor({3, 2}, 9)}});
  for (size_t len = 0; len < good.size(); len++) REQUIRE_THROWS(decode_safetensors(good.substr(0, len), "t"));
}

TEST_CASE("atomic write: a failed (disk-full) write leaves the previous file intact and no temp file") {
  fs::path d = temp_dir("atomic");
  const std::string path = (d / "model.safetensors").string();
  write_file_atomic(path, "old complete contents");
  set_write_fault_after(4);
  REQUIRE_THROWS_WITH(write_file_atomic(path, std::string(100, 'x')), Catch::Contains("No space left on device"));
  set_write_fault_after(-1);
  REQUIRE(read_file(path) == "old complete contents");
  int files = 0;
  for (auto& e : fs::directory_iterator(d)) files += e.is_regular_file();
  REQUIRE(files == 1);
  REQUIRE_THROWS_WITH(write_file_atomic((d / "no/such/dir/x").string(), "x"), Catch::Contains("no/such/dir/x: cannot write"));
  REQUIRE_THROWS_WITH(read_file((d / "missing").string()), Catch::Contains("missing: cannot open"));
  fs::remove_all(d);
}

TEST_CASE("numbers in messages as people write them: a float's shortest spelling, counted nouns") {
  CHECK(attn::human(double(0.003f)) == "0.003");  // not 0.003000000026077032, as config.json holds it
  CHECK(attn::human(nlohmann::json(double(7e-4f))) == "0.0007");
  CHECK(attn::human(nlohmann::json(0.1)) == "0.1");
  CHECK(attn::human(nlohmann::json(1.0 / 3.0)) == "0.3333333333333333");  // a real double keeps its digits
  CHECK(attn::human(nlohmann::json(4000)) == "4000");
  CHECK(attn::human(nlohmann::json(2.0)) == "2");
  CHECK(attn::human(nlohmann::json("qq")) == "qq");
  CHECK(attn::human(nlohmann::json(true)) == "true");
  CHECK(attn::counted(1, "step") == "1 step");
  CHECK(attn::counted(0, "step") == "0 steps");
  CHECK(attn::counted(2, "entry", "entries") == "2 entries");
}

// ---- the stand-in for another kind of CPU (make test-alt) -------------------------------------
// A fingerprint of the bits this process's kernels compute on fixed inputs: a BLAS product, and
// attnlab's own reducing loops (softmax, layer norm, cross-entropy; their sums are where the
// AVX-512 and AVX2 copies add in another order).
static std::string kernel_fingerprint() {
  auto fnv = [](const float* x, int64_t n, uint64_t h) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(x);
    for (int64_t i = 0; i < n * 4; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
  };
  const int M = 61, N = 67, K = 301;
  Tensor a = random_tensor({M, K}, 1), b = random_tensor({K, N}, 2), c({M, N});
  matmul_forward(c.data(), a.data(), b.data(), M, N, K, false, false);
  const uint64_t product = fnv(c.data(), c.numel(), 1469598103934665603ull);
  const int R = 37, C = 203;
  Tensor x = random_tensor({R, C}, 3), out({R, C}), mean({R}), rstd({R}), w = random_tensor({C}, 4), bias = random_tensor({C}, 5);
  uint64_t loops = 1469598103934665603ull;
  softmax_forward(out.data(), x.data(), nullptr, 1, 1, R, C, 0.7f);
  loops = fnv(out.data(), out.numel(), loops);
  layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), bias.data(), R, C);
  loops = fnv(out.data(), out.numel(), loops);
  std::vector<int32_t> targets(R);
  for (int r = 0; r < R; r++) targets[size_t(r)] = (r * 7) % C;
  int64_t count = 0;
  const float loss = float(cross_entropy_forward(out.data(), &count, x.data(), targets.data(), R, C, 0.1f, -1));
  loops = fnv(&loss, 1, fnv(out.data(), out.numel(), loops));
  return fmt::format("blas {} isa {} product {:016x} loops {:016x}", blas_kernels(), vector_isa(), product, loops);
}

// Hidden ([.]): run by the check below, in another process and with another environment.
TEST_CASE("print this process's kernel fingerprint", "[.fingerprint]") { std::printf("%s\n", kernel_fingerprint().c_str()); }

[[maybe_unused]] static std::string fingerprint_of(const std::string& binary, const std::string& env) {  // used by the [.alt] cases
  const std::string cmd = "env " + env + " " + binary + " '[.fingerprint]' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  REQUIRE(::pclose(p) == 0);
  const size_t at = out.find("blas ");
  REQUIRE(at != std::string::npos);
  return out.substr(at, out.find('\n', at) - at);
}

// Run by `make test-alt` only (a ctest entry of its own, tests/CMakeLists.txt): this build with
// ATTNLAB_VECTOR_ISA=avx2 and OPENBLAS_CORETYPE=Sandybridge set, beside the default build. The
// stand-in is real only if its bits differ: a BLAS family whose product gives this machine's
// default bits (Zen and Haswell share their sgemm) would test nothing.
TEST_CASE("the stand-in for another CPU computes other bits than this machine's default", "[.alt]") {
  const char* family = std::getenv("OPENBLAS_CORETYPE");
  REQUIRE(family != nullptr);
  REQUIRE(std::string(blas_kernels()) == family);
  REQUIRE(std::string(vector_isa()) == "AVX2");  // the AVX-512 copy is not in this build
#ifndef ATTNLAB_DEFAULT_TEST_CORE
  FAIL("build with -DATTNLAB_DEFAULT_BUILD=<the default build directory> (make test-alt does)");
#else
  const std::string here = kernel_fingerprint();
  // the default build, as the command line runs it (its BLAS choice, its vector loops)
  const std::string there = fingerprint_of(ATTNLAB_DEFAULT_TEST_CORE, "-u OPENBLAS_CORETYPE");
  INFO("here:    " << here << "\ndefault: " << there);
  auto field = [](const std::string& f, const std::string& name) {
    const size_t at = f.find(name + " ");
    return f.substr(at + name.size() + 1, f.find(' ', at + name.size() + 1) - at - name.size() - 1);
  };
  REQUIRE(field(here, "product") != field(there, "product"));
  // this build's loops against the default build's under the same BLAS: on an AVX-512 CPU the
  // default runs its AVX-512 copy (other sums: other bits); elsewhere both run the AVX2 copy and
  // must agree bit for bit
  const std::string same_blas = fingerprint_of(ATTNLAB_DEFAULT_TEST_CORE, std::string("OPENBLAS_CORETYPE=") + family);
  INFO("default under " << family << ": " << same_blas);
  if (same_blas.find("isa AVX-512") != std::string::npos)
    REQUIRE(field(here, "loops") != field(same_blas, "loops"));
  else
    REQUIRE(field(here, "loops") == field(same_blas, "loops"));
#endif
}

TEST_CASE("csv: a cell is read back as it was written, by one quoting rule") {
  const std::vector<std::string> cells = {"plain", "a,b", "say \"qq\"", "two\nlines", "", "AMD EPYC, 2 cores"};
  std::string line;
  for (const std::string& c : cells) line += (line.empty() ? "" : ",") + attn::csv_field(c);
  REQUIRE(attn::csv_field("plain") == "plain");
  REQUIRE(attn::csv_field("a,b") == "\"a,b\"");
  REQUIRE(attn::csv_field("say \"qq\"") == "\"say \"\"qq\"\"\"");
  auto rows = attn::parse_csv("h1,h2,h3,h4,h5,h6\n" + line + "\n", "t.csv");
  REQUIRE(rows.size() == 2);
  REQUIRE(rows[1] == cells);
  // a line its writer has not finished is left out, quoted or not
  REQUIRE(attn::parse_csv("a,b\n1,2\n3,", "t.csv").size() == 2);
  REQUIRE(attn::parse_csv("a,b\n1,\"open", "t.csv").size() == 1);
  REQUIRE(attn::parse_csv("a,,\n", "t.csv")[0] == std::vector<std::string>{"a", "", ""});
  // a quote still open when the writer has ended its lines is damage, named
  REQUIRE_THROWS_WITH(attn::parse_csv("a,b\n1,\"x\n", "t.csv"), "t.csv:2: a quoted cell is not closed");
  REQUIRE_THROWS_WITH(attn::csv_number("t.csv", 3, "1.5x"), "t.csv:4: expected a number, got '1.5x'");
  REQUIRE(std::isnan(attn::csv_number("t.csv", 3, "nan")));
}
