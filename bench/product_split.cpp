// bench/product_split.cpp — who should thread the products: OpenBLAS, or attnlab?
//
// attnlab sets OpenBLAS to one thread and cuts each large product into one block of rows (of
// columns when the result is wider than tall) per OpenMP thread (core/threads.h,
// matmul_forward). ATTNLAB_OPENBLAS_THREADS=1 leaves the threading to OpenBLAS instead. This
// times matmul_forward at the nine product shapes of the bench model's step (1,536 tokens,
// d 256, d_ff 1024, 8,000 words): run it both ways, one process each.
//
//   cmake --build build --target bench_product_split
//   build/bench_product_split --threads 2                              # attnlab splits
//   ATTNLAB_OPENBLAS_THREADS=1 build/bench_product_split --threads 2   # OpenBLAS threads
//
// Result: docs/benchmarks.md ("one thread pool").
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/threads.h>

#include <algorithm>
#include <cstdio>
#include <vector>

using namespace attn;

int main(int argc, char** argv) {
  bench::start(argc, argv);
  std::printf("products threaded by %s, %d threads; best of 15 (ms, GFLOP/s)\n",
              splits_products() ? "attnlab" : "the BLAS", num_threads());
  for (const bench::Product& p : bench::kStepProducts) {
    std::vector<float> a(size_t(p.M) * p.K), b(size_t(p.K) * p.N), c(size_t(p.M) * p.N);
    for (size_t i = 0; i < a.size(); i++) a[i] = float(i % 17) * 0.01f;
    for (size_t i = 0; i < b.size(); i++) b[i] = float(i % 13) * 0.01f;
    double best = 1e9;
    for (int rep = 0; rep < 15; rep++) {
      const double t = bench::seconds();
      matmul_forward(c.data(), a.data(), b.data(), p.M, p.N, p.K, p.trans_a, p.trans_b);
      best = std::min(best, bench::seconds() - t);
    }
    std::printf("  %-24s %5d x %4d x %4d  %8.3f ms  %6.1f GFLOP/s\n", p.what, p.M, p.N, p.K, 1e3 * best,
                2.0 * p.M * p.N * p.K / best / 1e9);
  }
}
