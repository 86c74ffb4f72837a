// bench/attention_order.cpp — what attention's order of work costs: the step's kernels for one
// self-attention site (scores, softmax, dropout, context, forward and backward) run op by op
// over the whole batch, as the tape runs them, against the same calls made one sequence at a
// time, so that a sequence's scores and probabilities (4 heads × 24 × 24 floats, 9 KB) stay in
// L1 between the ops. The second order is what an attention op fused per sequence would get
// from cache; both write every intermediate a backward needs to memory. A 64 MB pass evicts the
// caches before each timed pass. Best of 20 each, one thread by default.
//
//   cmake --build build --target bench_attention_order
//   build/bench_attention_order --threads 1 [--d 64]
//
// Result: docs/benchmarks.md ("Narrow steps", what bounds d 64).
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/rng.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

using namespace attn;

int main(int argc, char** argv) {
  bench::start(argc, argv);
  int C = 64;
  for (int i = 1; i + 1 < argc; i++)
    if (!std::strcmp(argv[i], "--d")) C = std::atoi(argv[i + 1]);
  const int B = 64, T = 24, H = 4;
  if (C < H || C % H != 0 || C > 1024) {
    std::fprintf(stderr, "bench_attention_order: --d must be a multiple of %d up to 1024, got %d\n", H, C);
    return 2;
  }
  const int D = C / H;
  const int64_t nx = int64_t(B) * T * C, ns = int64_t(B) * H * T * T;
  const float alpha = 1.f / std::sqrt(float(D)), p = 0.1f;
  const uint64_t seed = 12345;
  Rng rng(1);
  auto filled = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = rng.normal();
    return v;
  };
  std::vector<float> q = filled(nx), k = filled(nx), v = filled(nx), dout = filled(nx);
  std::vector<float> s(static_cast<size_t>(ns)), prob(s.size()), dropped(s.size()), ds(s.size()), dp(s.size());
  std::vector<float> out(static_cast<size_t>(nx)), dq(out.size()), dk(out.size()), dv(out.size());
  std::vector<float> mask(static_cast<size_t>(B) * T * T, 0.f), evict(size_t(16) << 20, 1.f);
  for (int b = 0; b < B; b++)
    for (int i = 0; i < T; i++)
      for (int j = i + 1; j < T; j++) mask[(size_t(b) * T + i) * T + j] = -std::numeric_limits<float>::infinity();

  const HeadLayout wide = HeadLayout::side_by_side(H, T, D), square = HeadLayout::contiguous(T, T);
  // Sequences b0 .. b0+nb-1: every call of the site on their slices (offsets of sequence b0).
  auto forward = [&](int b0, int nb) {
    const int64_t xo = int64_t(b0) * T * C, so = int64_t(b0) * H * T * T, n = int64_t(nb) * H * T * T;
    matmul_heads(s.data() + so, square, q.data() + xo, wide, k.data() + xo, wide, nb * H, T, T, D, false, true, alpha);
    softmax_forward(prob.data() + so, s.data() + so, mask.data() + int64_t(b0) * T * T, nb, H, T, T, 1.f);
    dropout_forward(dropped.data() + so, prob.data() + so, n, p, seed);
    matmul_heads(out.data() + xo, wide, dropped.data() + so, square, v.data() + xo, wide, nb * H, T, D, T, false, false);
  };
  auto backward = [&](int b0, int nb) {
    const int64_t xo = int64_t(b0) * T * C, so = int64_t(b0) * H * T * T, n = int64_t(nb) * H * T * T;
    matmul_heads(dp.data() + so, square, dout.data() + xo, wide, v.data() + xo, wide, nb * H, T, T, D, false, true);
    matmul_heads(dv.data() + xo, wide, dropped.data() + so, square, dout.data() + xo, wide, nb * H, T, D, T, true, false);
    dropout_backward(dp.data() + so, dp.data() + so, n, p, seed, false);
    softmax_backward(ds.data() + so, dp.data() + so, prob.data() + so, int64_t(nb) * H * T, T, 1.f, false);
    matmul_heads(dq.data() + xo, wide, ds.data() + so, square, k.data() + xo, wide, nb * H, T, D, T, false, false, alpha);
    matmul_heads(dk.data() + xo, wide, ds.data() + so, square, q.data() + xo, wide, nb * H, T, D, T, true, false, alpha);
  };
  auto time_it = [&](const std::function<void()>& f) {
    double best = 1e9;
    for (int rep = 0; rep < 20; rep++) {
      for (float& x : evict) x += 1.f;  // the caches hold this, not the site's buffers
      const double t0 = bench::seconds();
      f();
      best = std::min(best, bench::seconds() - t0);
    }
    return 1e3 * best;
  };
  std::printf("one self-attention site, %d x %d tokens, d %d, %d heads, %d thread(s); ms, best of 20:\n", B, T, C, H,
              num_threads());
  std::printf("  %-34s %8.3f\n", "forward, op by op over the batch", time_it([&] { forward(0, B); }));
  std::printf("  %-34s %8.3f\n", "forward, one sequence at a time", time_it([&] {
                for (int b = 0; b < B; b++) forward(b, 1);
              }));
  std::printf("  %-34s %8.3f\n", "backward, op by op over the batch", time_it([&] { backward(0, B); }));
  std::printf("  %-34s %8.3f\n", "backward, one sequence at a time", time_it([&] {
                for (int b = 0; b < B; b++) backward(b, 1);
              }));
  return evict[0] > 0.f ? 0 : 1;  // keeps the eviction pass
}
