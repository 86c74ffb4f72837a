// bench/bandwidth.cpp — how many bytes a second one pass over memory moves here: the bound on
// the passes of a training step that are not matrix products (cross-entropy over the logits,
// Adam over the parameters and its moments). A pass over n floats that reads and writes them in
// place moves 8n bytes; the best of 20 passes over a 49 MB buffer (the bench model's 1,536 x
// 8,000 logits), far larger than the caches, on the threads asked for.
//
//   cmake --build build --target bench_bandwidth
//   build/bench_bandwidth --threads 1
//
// Result and the bound it sets on the step: docs/benchmarks.md ("What bounds the step").
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/threads.h>

#include <algorithm>
#include <cstdio>
#include <vector>

using namespace attn;

int main(int argc, char** argv) {
  attn::bench::start(argc, argv);
  const int64_t n = 1536LL * 8000;
  std::vector<float> a(size_t(n), 1.f), b(size_t(n), 2.f);
  double best_scale = 1e9, best_read = 1e9;
  volatile float sink = 0;
  for (int rep = 0; rep < 20; rep++) {
    double t = attn::bench::seconds();
    scale_forward(a.data(), a.data(), 1.0000001f, n);  // read and write in place: 8 bytes per float
    best_scale = std::min(best_scale, attn::bench::seconds() - t);
    t = attn::bench::seconds();
    axpy(a.data(), 1e-7f, b.data(), n);  // read two, write one: 12 bytes per float
    best_read = std::min(best_read, attn::bench::seconds() - t);
  }
  sink = a[size_t(n / 2)];
  (void)sink;
  std::printf("%d threads, %.0f MB buffers: in place (read + write) %.1f GB/s (%.2f ms per pass); "
              "y += a x (two reads, one write) %.1f GB/s (%.2f ms)\n",
              num_threads(), 4.0 * double(n) / 1e6, 8.0 * double(n) / best_scale / 1e9, 1e3 * best_scale,
              12.0 * double(n) / best_read / 1e9, 1e3 * best_read);
}
