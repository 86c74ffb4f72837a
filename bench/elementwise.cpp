// bench/elementwise.cpp — the step's cheapest passes alone, over one 1536 x 1024 tensor (the
// bench model's feed-forward activations): dropout forward and backward, relu forward and
// backward, the two as one op (relu_dropout) each way, add, and the bias gradient's column
// sums. Then the passes whose data stay in cache in a narrow model's step (`--d`, default 64;
// 64 x 24 tokens, 4 heads): layer norm over 1536 x d, the attention softmax over
// 64 x 4 x 24 x 24 scores with a causal mask, dropout and the residual add over 1536 x d, the
// residual's dropout and add as two ops and as one (dropout_add), and a d-wide linear's bias
// gradient.
// Best of 30 calls each.
//
//   cmake --build build --target bench_elementwise
//   build/bench_elementwise --threads 1 [--d 64]
//
// Results: docs/benchmarks.md ("masked loads in the AVX2 clone"; "Narrow steps: the softmax's
// rows, ReLU and dropout as one op, the bias work between regions").
#include "bench/micro.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/rng.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

using namespace attn;

static void time_it(const char* name, int64_t n, const std::function<void()>& f) {
  double best = 1e9;
  for (int i = 0; i < 30; i++) {
    const double t0 = bench::seconds();
    f();
    best = std::min(best, bench::seconds() - t0);
  }
  std::printf("  %-22s %7.3f ms  %.3f ns per element\n", name, 1e3 * best, 1e9 * best / double(n));
}

int main(int argc, char** argv) {
  bench::start(argc, argv);
  const int64_t R = 1536, C = 1024, n = R * C;
  int width = 64;
  for (int i = 1; i + 1 < argc; i++)
    if (!std::strcmp(argv[i], "--d")) width = std::atoi(argv[i + 1]);
  if (width < 1 || width > C) {  // the buffers below hold 1536 x 1024 floats
    std::fprintf(stderr, "bench_elementwise: --d must be 1 to %lld, got %d\n", (long long)C, width);
    return 2;
  }
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
  time_it("relu, dropout", n, [&] {  // the feed-forward's hidden layer as two ops ...
    relu_forward(y.data(), x.data(), n);
    dropout_forward(y.data(), y.data(), n, 0.1f, 12345);
  });
  time_it("relu_dropout_forward", n, [&] { relu_dropout_forward(y.data(), x.data(), n, 0.1f, 12345); });  // ... as one
  time_it("dropout, relu bwd", n, [&] {
    dropout_backward(d.data(), g.data(), n, 0.1f, 12345, false);
    relu_backward(d.data(), d.data(), x.data(), n, false);
  });
  time_it("relu_dropout_backward", n, [&] { relu_dropout_backward(d.data(), g.data(), y.data(), n, 0.1f, false); });
  time_it("bias_backward", n, [&] { bias_backward(db.data(), g.data(), R, int(C)); });

  const int B = 64, T = 24, H = 4;
  const int64_t rows = int64_t(B) * T, nd = rows * width, ns = int64_t(B) * H * T * T;
  std::vector<float> w(static_cast<size_t>(width), 1.1f), bias(static_cast<size_t>(width), 0.1f), mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows)),
      dw(static_cast<size_t>(width)), dbias(static_cast<size_t>(width)), mask(static_cast<size_t>(B * T * T), 0.f);
  for (int b = 0; b < B; b++)
    for (int i = 0; i < T; i++)
      for (int j = i + 1; j < T; j++) mask[(size_t(b) * T + i) * T + j] = -std::numeric_limits<float>::infinity();
  std::printf("the step's passes at d %d (%lld x %d floats; scores %d x %d x %d x %d), %d thread(s):\n", width,
              (long long)rows, width, B, H, T, T, num_threads());
  time_it("layernorm_forward", nd, [&] {
    layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), bias.data(), rows, width);
  });
  time_it("layernorm_backward", nd, [&] {
    layernorm_backward(d.data(), dw.data(), dbias.data(), g.data(), x.data(), w.data(), mean.data(), rstd.data(), rows,
                       width, false);
  });
  time_it("softmax_forward", ns, [&] { softmax_forward(y.data(), x.data(), mask.data(), B, H, T, T, 0.25f); });
  time_it("softmax_backward", ns, [&] { softmax_backward(d.data(), g.data(), y.data(), B * H * T, T, 0.25f, false); });
  time_it("dropout_forward", nd, [&] { dropout_forward(y.data(), x.data(), nd, 0.1f, 12345); });
  time_it("dropout_backward", nd, [&] { dropout_backward(d.data(), g.data(), nd, 0.1f, 12345, false); });
  time_it("add_forward", nd, [&] { add_forward(y.data(), x.data(), g.data(), nd); });
  time_it("dropout, add", nd, [&] {  // a residual sub-layer's join as two ops ...
    dropout_forward(d.data(), g.data(), nd, 0.1f, 12345);
    add_forward(y.data(), x.data(), d.data(), nd);
  });
  time_it("dropout_add_forward", nd, [&] { dropout_add_forward(y.data(), x.data(), g.data(), nd, 0.1f, 12345); });  // ... as one
  time_it("copy, dropout bwd", nd, [&] {  // the backward: add copies G for the branch, dropout reads it ...
    std::copy(g.data(), g.data() + nd, d.data());
    dropout_backward(y.data(), d.data(), nd, 0.1f, 12345, false);
  });
  time_it("dropout_add backward", nd, [&] { dropout_backward(y.data(), g.data(), nd, 0.1f, 12345, false); });  // ... reads G
  time_it("bias_backward", nd, [&] { bias_backward(dbias.data(), g.data(), rows, width); });  // a d-wide linear's bias
}
