// bench/optimizer.cpp — what a training step spends after its backward, over the bench model's
// 7,578,624 parameters at d 256 (`attnlab bench` at its default size), in one array: zeroing
// the gradients, their global norm (for clipping), and Adam's update; beside a pass that moves
// the update's bytes (reads w, m, v, g; writes w, m, v) with no arithmetic to speak of, the
// floor memory sets for Adam on this machine; then Adam over the same parameters as tensors of
// 65,536 (a d 256 model's square weights), one call each and all in one region (Adam::step's
// adam_update_tensors). Best of 20 calls each.
//
//   cmake --build build --target bench_optimizer
//   build/bench_optimizer --threads 1
//
// Result: docs/benchmarks.md ("The optimizer's passes").
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/rng.h>
#include <attnlab/core/tensor.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

using namespace attn;

static double time_it(const char* name, int64_t n, double bytes, const std::function<void()>& f) {
  double best = 1e9;
  for (int i = 0; i < 20; i++) {
    const double t0 = bench::seconds();
    f();
    best = std::min(best, bench::seconds() - t0);
  }
  std::printf("  %-34s %7.3f ms  %.3f ns per parameter  %5.1f GB/s\n", name, 1e3 * best, 1e9 * best / double(n),
              bytes / best / 1e9);
  return best;
}

int main(int argc, char** argv) {
  bench::start(argc, argv);
  const int64_t n = 7578624;
  Tensor w({n}), m({n}), v({n}), g({n});
  Rng rng(1);
  for (int64_t i = 0; i < n; i++) w[i] = 0.02f * rng.normal(), g[i] = 1e-3f * rng.normal();
  std::printf("%lld parameters, %d thread(s):\n", (long long)n, num_threads());
  const double f = 4.0 * double(n);  // bytes per float array
  time_it("zero the gradients", n, f, [&] { g.zero(); });
  for (int64_t i = 0; i < n; i++) g[i] = 1e-3f * rng.normal();
  double norm = 0;
  time_it("gradient norm (l2_norm)", n, f, [&] { norm = l2_norm(g); });
  time_it("gradient norm (sum_squares)", n, f, [&] { norm = std::sqrt(sum_squares(g.data(), n)); });
  time_it("adam_update", n, 7 * f, [&] {
    adam_update(w.data(), m.data(), v.data(), g.data(), n, 1e-9f, 0.9f, 0.98f, 1e-9f, 0.f, 0.5f, 0.5f);
  });
  time_it("the same bytes, no arithmetic", n, 7 * f, [&] {
    float *pw = w.data(), *pm = m.data(), *pv = v.data();
    const float* pg = g.data();
#pragma omp parallel for simd schedule(static) if (parallel : n > 65536)
    for (int64_t k = 0; k < n; k++) {
      pm[k] += pg[k];
      pv[k] += pg[k];
      pw[k] -= 1e-9f * pg[k];
    }
  });
  {
    const int64_t k = 65536, T = n / k;
    std::vector<Tensor> ws, ms, vs, gs;
    for (int64_t t = 0; t < T; t++) ws.push_back(Tensor({k})), ms.push_back(Tensor({k})), vs.push_back(Tensor({k})), gs.push_back(Tensor({k}));
    for (auto& x : gs) for (int64_t i = 0; i < k; i++) x[i] = 1e-3f * rng.normal();
    time_it("adam_update, tensors of 65,536", T * k, 7 * f * double(T * k) / double(n), [&] {
      for (int64_t t = 0; t < T; t++)
        adam_update(ws[t].data(), ms[t].data(), vs[t].data(), gs[t].data(), k, 1e-9f, 0.9f, 0.98f, 1e-9f, 0.f, 0.5f, 0.5f);
    });
    time_it("adam_update, tensors of 65,535", T * k, 7 * f * double(T * k) / double(n), [&] {
      for (int64_t t = 0; t < T; t++)
        adam_update(ws[t].data(), ms[t].data(), vs[t].data(), gs[t].data(), k - 1, 1e-9f, 0.9f, 0.98f, 1e-9f, 0.f, 0.5f, 0.5f);
    });
    std::vector<AdamTensor> all;  // what Adam::step does: the tensors' pieces shared among the threads
    for (int64_t t = 0; t < T; t++) all.push_back({ws[t].data(), ms[t].data(), vs[t].data(), gs[t].data(), k});
    time_it("adam_update_tensors, the same", T * k, 7 * f * double(T * k) / double(n), [&] {
      adam_update_tensors(all, 1e-9f, 0.9f, 0.98f, 1e-9f, 0.f, 0.5f, 0.5f);
    });
  }
  std::printf("(norm %.6f)\n", norm);
}
