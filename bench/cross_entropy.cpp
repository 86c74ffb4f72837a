// bench/cross_entropy.cpp — the fused cross-entropy's forward and backward over one batch of
// logits, alone: the demo's shape by default (2,080 target tokens x 4,000 words, the quick
// preset's batches of ~2,048 tokens), or `--rows R --vocab V`.
//
//   cmake --build build --target bench_cross_entropy
//   build/bench_cross_entropy --threads 1
//   build/bench_cross_entropy --threads 2 --rows 1536 --vocab 8000   # the bench model's logits
//
// Result: docs/benchmarks.md ("the row maximum on AVX2"; the one-pass kernel: "The output layer
// and the loss as one op").
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/rng.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace attn;

int main(int argc, char** argv) {
  bench::start(argc, argv);
  int64_t R = 2080;
  int V = 4000;
  for (int i = 1; i + 1 < argc; i++) {
    if (!std::strcmp(argv[i], "--rows")) R = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--vocab")) V = std::atoi(argv[i + 1]);
  }
  if (R < 1 || V < 2) {
    std::fprintf(stderr, "bench_cross_entropy: --rows must be >= 1 and --vocab >= 2\n");
    return 2;
  }
  std::vector<float> logits(size_t(R) * V), probs(logits.size()), dlogits(logits.size());
  std::vector<int32_t> targets(static_cast<size_t>(R));
  Rng rng(1);
  for (float& x : logits) x = rng.normal();
  for (int32_t& t : targets) t = int32_t(rng.below(uint32_t(V)));
  std::printf("cross-entropy over %lld x %d logits, %d thread(s), best of 10:\n", (long long)R, V, num_threads());
  for (int round = 0; round < 3; round++) {
    double fwd = 1e9, bwd = 1e9;
    for (int i = 0; i < 10; i++) {
      int64_t count = 0;
      const double t0 = bench::seconds();
      cross_entropy_forward(probs.data(), &count, logits.data(), targets.data(), R, V, 0.1f, -1);
      const double t1 = bench::seconds();
      cross_entropy_backward(dlogits.data(), probs.data(), targets.data(), R, V, 0.1f, -1, 1.f / float(R), false);
      const double t2 = bench::seconds();
      fwd = std::min(fwd, t1 - t0);
      bwd = std::min(bwd, t2 - t1);
    }
    std::printf("  forward %.2f ms (%.2f ns per logit), backward %.2f ms\n", 1e3 * fwd, 1e9 * fwd / double(R * V), 1e3 * bwd);
  }
  // In place, as logits_cross_entropy runs it: the two passes, then both in one pass per row.
  for (int round = 0; round < 3; round++) {
    double two = 1e9, one = 1e9;
    for (int i = 0; i < 10; i++) {
      int64_t count = 0;
      std::copy(logits.begin(), logits.end(), probs.begin());
      const double t0 = bench::seconds();
      cross_entropy_forward(probs.data(), &count, probs.data(), targets.data(), R, V, 0.1f, -1);
      cross_entropy_backward(probs.data(), probs.data(), targets.data(), R, V, 0.1f, -1, 1.f / float(R), false);
      two = std::min(two, bench::seconds() - t0);
      std::copy(logits.begin(), logits.end(), probs.begin());
      const double t1 = bench::seconds();
      cross_entropy_forward_backward(probs.data(), &count, targets.data(), R, V, 0.1f, -1, 1.f / float(R));
      one = std::min(one, bench::seconds() - t1);
    }
    std::printf("  in place: forward then backward %.2f ms, both in one pass %.2f ms\n", 1e3 * two, 1e3 * one);
  }
}
