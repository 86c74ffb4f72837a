// bench/gram_products.cpp — does the symmetric score product save time for QQᵀ?
//
// For qq self-attention attnlab computes S = α Q Qᵀ with `gram_batched` (ssyrk, half the
// multiply-adds, plus a copy of the upper triangle into the lower) and its gradient as
// dQ = α (G + Gᵀ) Q with `gram_backward_batched` (one product). The alternative is what qk does
// with K = Q: a general product forward and two backward. Times both at the bench model's
// per-head shapes (64 channels per head) for 24, 64 and 256 tokens.
//
//   cmake --build build --target bench_gram_products
//   build/bench_gram_products --threads 2       # best-of-30 ms, forward and backward, both ways
//
// Result: docs/benchmarks.md ("QQᵀ against QKᵀ" for each machine).
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/threads.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

using namespace attn;

using attn::bench::seconds;

int main(int argc, char** argv) {
  attn::bench::start(argc, argv);
  const int D = 64, reps = 30;
  const float alpha = 0.125f;
  for (int T : {24, 64, 256}) {
    const int B = std::max(8, 256 * 24 * 24 / (T * T));  // about one attention site's work at 24 tokens
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> q(size_t(B) * T * D), s(size_t(B) * T * T), g(s.size()), dq(q.size());
    for (float& x : q) x = u(gen);
    for (float& x : g) x = u(gen);
    double gram_f = 1e9, gemm_f = 1e9, gram_b = 1e9, gemm_b = 1e9;
    for (int r = 0; r < reps; r++) {  // alternating, so a slow spell of the machine hits both
      double t = seconds();
      gram_batched(s.data(), q.data(), B, T, D, alpha);
      gram_f = std::min(gram_f, seconds() - t);
      t = seconds();
      matmul_batched(s.data(), q.data(), q.data(), B, T, T, D, false, true, alpha);
      gemm_f = std::min(gemm_f, seconds() - t);
      t = seconds();
      gram_backward_batched(dq.data(), g.data(), q.data(), B, T, D, alpha, false);
      gram_b = std::min(gram_b, seconds() - t);
      t = seconds();
      matmul_batched(dq.data(), g.data(), q.data(), B, T, D, T, false, false, alpha, 0.f);  // G K
      matmul_batched(dq.data(), g.data(), q.data(), B, T, D, T, true, false, alpha, 1.f);   // Gᵀ Q
      gemm_b = std::min(gemm_b, seconds() - t);
    }
    std::printf("%d threads, %d heads of %d x %d x %d: forward gram %.3f ms, general %.3f ms; "
                "backward gram %.3f ms, general (two products) %.3f ms\n",
                num_threads(), B, T, T, D, gram_f * 1e3, gemm_f * 1e3, gram_b * 1e3, gemm_b * 1e3);
  }
}
