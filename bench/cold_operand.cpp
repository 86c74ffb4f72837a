// bench/cold_operand.cpp — a weight gradient's product, dW = Xᵀ G, when X was written long
// before and is no longer in cache (as the step has it: the activation a linear layer's weight
// gradient reads was written a whole forward earlier): as is, and after one sequential pass that
// reads X's lines in order. Each trial first reads a 64 MiB buffer, so that X and G come from
// memory; the two ways alternate, and each shape's medians are printed. The pass is core's
// read_in_order, which linear_weight_grad makes before the product when it runs on one thread
// (on two, where this bench found no gain, it does not).
//
// Then the same question for the heads' backward products, whose forward operands (Q and K, P
// and V) also come from memory in the step; attnlab does not read those first (the gain, about
// 1 ms of a d 128 step on one thread, was too small to show in a step on the machine measured).
//
//   cmake --build build --target bench_cold_operand
//   build/bench_cold_operand --threads 1
//
// Result: docs/benchmarks.md ("A cold operand read in order first").
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/threads.h>

#include <algorithm>
#include <cstdio>
#include <vector>

using namespace attn;

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  bench::start(argc, argv);
  std::vector<float> evict(size_t(16) << 20, 1.f);  // 64 MiB
  std::printf("threads %d; dW (I x O) = Xᵀ (I x R) G (R x O), R = 1536; X and G from memory; median us of 101 trials each\n",
              num_threads());
  std::printf("%6s %6s %12s %22s %10s\n", "I", "O", "as is", "X read in order first", "ratio");
  for (int d : {64, 128, 256}) {
    for (auto [I, O] : {std::pair{d, d}, std::pair{d, 4 * d}, std::pair{4 * d, d}}) {
      const int R = 1536;
      std::vector<float> x(size_t(R) * I, 0.5f), g(size_t(R) * O, 0.25f), dw(size_t(I) * O);
      std::vector<double> plain, warmed;
      for (int trial = 0; trial < 202; trial++) {
        read_in_order(evict.data(), int64_t(evict.size()));
        const bool warm = trial % 2 == 1;
        const double t = bench::seconds();
        if (warm) read_in_order(x.data(), int64_t(x.size()));
        matmul_forward(dw.data(), x.data(), g.data(), I, O, R, true, false);
        (warm ? warmed : plain).push_back(bench::seconds() - t);
      }
      const double a = median(plain), b = median(warmed);
      std::printf("%6d %6d %12.1f %22.1f %10.3f\n", I, O, 1e6 * a, 1e6 * b, b / a);
    }
  }
  // The heads' backward products of one attention site (batch 64 × 24, 4 heads), their operands
  // from the forward (Q, K; P, V) from memory and the incoming gradient (G; dO) just written, in
  // cache: as is, and after the forward's operands are read in order first.
  std::printf("\nheads' backward, one site, batch 64 x 24, 4 heads; forward operands from memory, gradient in cache\n");
  std::printf("%6s %-34s %12s %22s %10s\n", "d", "products", "as is", "operands read first", "ratio");
  for (int d : {64, 128, 256}) {
    const int B = 64, T = 24, H = 4, D = d / H;
    const HeadLayout lt = HeadLayout::side_by_side(H, T, D), ls = HeadLayout::contiguous(T, T);
    const size_t wide = size_t(B) * T * d, scores = size_t(B) * H * T * T;
    std::vector<float> q(wide, 0.5f), k(wide, 0.25f), v(wide, 0.125f), do_(wide, 0.5f), dq(wide), dk(wide), dv(wide);
    std::vector<float> g(scores, 0.25f), p(scores, 0.5f), dp(scores);
    for (bool context : {false, true}) {
      std::vector<double> plain, warmed;
      for (int trial = 0; trial < 202; trial++) {
        read_in_order(evict.data(), int64_t(evict.size()));
        read_in_order(context ? do_.data() : g.data(), int64_t(context ? wide : scores));  // in cache
        const bool warm = trial % 2 == 1;
        const double t = bench::seconds();
        if (!context) {  // dQ_h = G_h K_h, dK_h = G_hᵀ Q_h
          if (warm) read_in_order(q.data(), int64_t(wide)), read_in_order(k.data(), int64_t(wide));
          matmul_heads(dq.data(), lt, g.data(), ls, k.data(), lt, B * H, T, D, T, false, false);
          matmul_heads(dk.data(), lt, g.data(), ls, q.data(), lt, B * H, T, D, T, true, false);
        } else {  // dP_h = dO_h V_hᵀ, dV_h = P_hᵀ dO_h
          if (warm) read_in_order(v.data(), int64_t(wide)), read_in_order(p.data(), int64_t(scores));
          matmul_heads(dp.data(), ls, do_.data(), lt, v.data(), lt, B * H, T, T, D, false, true);
          matmul_heads(dv.data(), lt, p.data(), ls, do_.data(), lt, B * H, T, D, T, true, false);
        }
        (warm ? warmed : plain).push_back(bench::seconds() - t);
      }
      const double a = median(plain), b = median(warmed);
      std::printf("%6d %-34s %12.1f %22.1f %10.3f\n", d, context ? "dP = dO Vᵀ, dV = Pᵀ dO (V, P read)" : "dQ = G K, dK = Gᵀ Q (Q, K read)",
                  1e6 * a, 1e6 * b, b / a);
    }
  }
  return 0;
}
