// bench/output_chunks.cpp — would the tied output projection and the cross-entropy run faster
// fused, a chunk of rows at a time, so that the logits stay in cache?
//
// The step computes logits = H Eᵀ (1536 × 8000 from H 1536 × d and the 8000 × d embedding),
// the label-smoothed cross-entropy forward and backward over them, then dH = dlogits E and
// dE = dlogitsᵀ H: 49 MB of logits, probabilities and their gradient go through memory. Fused
// by rows, each chunk's logits are produced, turned into their gradient and consumed while
// still in cache, at the cost of smaller products (and dE accumulated chunk by chunk). Times,
// through attnlab's own kernels at the bench model's shapes:
//   whole    the products and passes over all rows, as two ops would run them;
//   chunks   all of it chunk by chunk (what logits_cross_entropy does, autograd/ops_loss.cpp);
//   fused    chunk by chunk but the probabilities kept for a later backward, dE one product.
//
//   cmake --build build --target bench_output_chunks
//   build/bench_output_chunks --threads 1 --d 64   # ms per step's worth, chunks of 32..256 rows
//
// Result and what was decided: docs/benchmarks.md (measured on an AVX-512 Intel VM and on AMD EPYC VMs).
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/threads.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

using namespace attn;

using attn::bench::seconds;

int main(int argc, char** argv) {
  attn::bench::start(argc, argv);
  const int R = 1536, V = 8000, reps = 6;
  int C = 256;
  for (int i = 1; i + 1 < argc; i++)
    if (!std::strcmp(argv[i], "--d")) C = std::atoi(argv[i + 1]);
  const float smoothing = 0.1f;
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> H(size_t(R) * C), E(size_t(V) * C), dH(H.size()), dE(E.size());
  for (float& x : H) x = u(gen);
  for (float& x : E) x = 0.1f * u(gen);
  std::vector<int32_t> targets(R);
  for (int32_t& t : targets) t = int32_t(gen() % V);
  std::vector<float> logits(size_t(R) * V), probs(logits.size()), dlogits(logits.size());
  int64_t count = 0;

  auto whole = [&] {
    matmul_forward(logits.data(), H.data(), E.data(), R, V, C, false, true);
    cross_entropy_forward(probs.data(), &count, logits.data(), targets.data(), R, V, smoothing, -1);
    cross_entropy_backward(dlogits.data(), probs.data(), targets.data(), R, V, smoothing, -1, 1.f / R, false);
    matmul_forward(dH.data(), dlogits.data(), E.data(), R, C, V, false, false);
    matmul_forward(dE.data(), dlogits.data(), H.data(), V, C, R, true, false);
  };
  bool whole_de = false;
  auto chunked = [&](int rows) {
    for (int r0 = 0; r0 < R; r0 += rows) {
      const int n = std::min(rows, R - r0);
      float* lc = logits.data();  // the first n rows of each buffer serve as the chunk's
      float* pc = probs.data();
      matmul_forward(lc, H.data() + size_t(r0) * C, E.data(), n, V, C, false, true);
      cross_entropy_forward(pc, &count, lc, targets.data() + r0, n, V, smoothing, -1);
      cross_entropy_backward(lc, pc, targets.data() + r0, n, V, smoothing, -1, 1.f / R, false);
      matmul_forward(dH.data() + size_t(r0) * C, lc, E.data(), n, C, V, false, false);
      if (!whole_de) matmul_forward(dE.data(), lc, H.data() + size_t(r0) * C, V, C, n, true, false, 1.f, r0 ? 1.f : 0.f);
    }
  };
  auto fused = [&](int rows) {  // dE as one product after: the chunks keep their probabilities
    for (int r0 = 0; r0 < R; r0 += rows) {
      const int n = std::min(rows, R - r0);
      float* pc = probs.data() + size_t(r0) * V;
      matmul_forward(pc, H.data() + size_t(r0) * C, E.data(), n, V, C, false, true);
      cross_entropy_forward(pc, &count, pc, targets.data() + r0, n, V, smoothing, -1);
    }
    for (int r0 = 0; r0 < R; r0 += rows) {
      const int n = std::min(rows, R - r0);
      float* pc = probs.data() + size_t(r0) * V;
      cross_entropy_backward(pc, pc, targets.data() + r0, n, V, smoothing, -1, 1.f / R, false);
      matmul_forward(dH.data() + size_t(r0) * C, pc, E.data(), n, C, V, false, false);
    }
    matmul_forward(dE.data(), probs.data(), H.data(), V, C, R, true, false);
  };
  const int chunks[] = {32, 64, 128, 256};
  double best_whole = 1e9, best_chunk[4] = {1e9, 1e9, 1e9, 1e9}, best_fused[4] = {1e9, 1e9, 1e9, 1e9};
  for (int r = 0; r < reps; r++) {  // alternating, so a slow spell of the machine hits all
    double t = seconds();
    whole();
    best_whole = std::min(best_whole, seconds() - t);
    for (int c = 0; c < 4; c++) {
      t = seconds();
      chunked(chunks[c]);
      best_chunk[c] = std::min(best_chunk[c], seconds() - t);
      t = seconds();
      fused(chunks[c]);
      best_fused[c] = std::min(best_fused[c], seconds() - t);
    }
  }
  std::printf("%d threads, best of %d: whole %.1f ms", num_threads(), reps, best_whole * 1e3);
  for (int c = 0; c < 4; c++) std::printf(", chunks of %d rows %.1f ms", chunks[c], best_chunk[c] * 1e3);
  for (int c = 0; c < 4; c++) std::printf(", fused %d rows %.1f ms", chunks[c], best_fused[c] * 1e3);
  std::printf("\n");
}
