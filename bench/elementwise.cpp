// bench/elementwise.cpp — the step's cheapest passes alone, over one 1536 x 1024 tensor (the
// bench model's feed-forward activations): dropout forward and backward, relu forward and
// backward, add, and the bias gradient's column sums. Best of 30 calls each.
//
//   cmake --build build --target bench_elementwise
//   build/bench_elementwise --threads 1
//
// Result: docs/benchmarks.md ("masked loads in the AVX2 clone").
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/rng.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

using namespace attn;

static void time_it(const char* name, int64_t n, const std::function<void()>& f) {
  double best = 1e9;
  for (int i = 0; i < 30; i++) {
    const double t0 = bench::seconds();
    f();
    best = std::min(best, bench::seconds() - t0);
  }
  std::printf("  %-18s %7.3f ms  %.3f ns per element\n", name, 1e3 * best, 1e9 * best / double(n));
}

int main(int argc, char** argv) {
  bench::start(argc, argv);
  const int64_t R = 1536, C = 1024, n = R * C;
  std::vector<float> x(static_cast<size_t>(n)), g(x.size()), y(x.size()), d(x.size()), db(static_cast<size_t>(C));
  Rng rng(1);
  for (float& v : x) v = rng.normal();
  for (float& v : g) v = rng.normal();
  std::printf("%lld x %lld floats, %d thread(s):\n", (long long)R, (long long)C, num_threads());
  time_it("dropout_forward", n, [&] { dropout_forward(y.data(), x.data(), n, 0.1f, 12345); });
  time_it("dropout_backward", n, [&] { dropout_backward(d.data(), g.data(), n, 0.1f, 12345, false); });
  time_it("relu_forward", n, [&] { relu_forward(y.data(), x.data(), n); });
  time_it("relu_backward", n, [&] { relu_backward(d.data(), g.data(), x.data(), n, false); });
  time_it("add_forward", n, [&] { add_forward(y.data(), x.data(), g.data(), n); });
  time_it("bias_backward", n, [&] { bias_backward(db.data(), g.data(), R, int(C)); });
}
