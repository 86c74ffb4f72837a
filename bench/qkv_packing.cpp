// bench/qkv_packing.cpp — would one packed product for Q, K and V be faster than three?
//
// PyTorch's nn.MultiheadAttention keeps W_q, W_k, W_v as one (3C, C) matrix and projects with
// one product; attnlab keeps three Linear layers (three products). This times one attention
// site's projection products both ways — forward Y = X Wᵀ, backward dX = G W and dW = Gᵀ X —
// through attnlab's own matmul_forward (so with the BLAS kernel and threads attnlab uses), at the
// bench model's shapes: 1,536 tokens, d 256. `n` 3 is self-attention (Q, K, V), 2 is
// cross-attention's keys and values.
//
//   cmake --build build --target bench_qkv_packing
//   build/bench_qkv_packing --threads 2        # prints best-of-50 ms, separate vs packed
//
// Result and what was decided: docs/benchmarks.md ("One packed product for Q, K and V").
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/threads.h>

#include <cstdio>
#include <random>
#include <vector>

using namespace attn;

using attn::bench::seconds;

int main(int argc, char** argv) {
  attn::bench::start(argc, argv);
  const int M = 1536, C = 256, reps = 50;

  for (int n : {3, 2}) {
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> X(M * C), W(n * C * C), G(M * n * C), Y(M * n * C), dX(M * C), dW(n * C * C);
    for (auto* v : {&X, &W, &G})
      for (float& x : *v) x = u(gen);
    // Separate: projection i has its own W_i (C,C) and its own output and gradient (M,C).
    // Packed: W is (nC, C), the output and its gradient (M, nC).
    auto separate = [&] {
      for (int i = 0; i < n; i++) matmul_forward(&Y[i * M * C], X.data(), &W[i * C * C], M, C, C, false, true);
      for (int i = 0; i < n; i++)
        matmul_forward(dX.data(), &G[i * M * C], &W[i * C * C], M, C, C, false, false, 1.f, i ? 1.f : 0.f);
      for (int i = 0; i < n; i++) matmul_forward(&dW[i * C * C], &G[i * M * C], X.data(), C, C, M, true, false);
    };
    auto packed = [&] {
      matmul_forward(Y.data(), X.data(), W.data(), M, n * C, C, false, true);
      matmul_forward(dX.data(), G.data(), W.data(), M, C, n * C, false, false);
      matmul_forward(dW.data(), G.data(), X.data(), n * C, C, M, true, false);
    };
    for (int round = 0; round < 3; round++) {
      double best_sep = 1e9, best_packed = 1e9;
      for (int r = 0; r < reps; r++) {  // alternating, so a slow spell of the machine hits both
        double t = seconds();
        separate();
        best_sep = std::min(best_sep, seconds() - t);
        t = seconds();
        packed();
        best_packed = std::min(best_packed, seconds() - t);
      }
      std::printf("%s, %d threads: %d separate products %.3f ms, one packed %.3f ms (%.2fx)\n",
                  n == 3 ? "self-attention Q,K,V" : "cross-attention K,V", num_threads(), n, best_sep * 1e3,
                  best_packed * 1e3, best_sep / best_packed);
    }
  }
}
