// bench/micro.h — what the micro-benchmarks in bench/*.cpp share: a clock, the startup
// that gives them attnlab's runtime (BLAS kernel, OpenMP wait policy) and `--threads N`, and
// the shapes of the bench model's products.
#pragma once
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <attnlab/core/runtime.h>
#include <attnlab/core/threads.h>

namespace attn::bench {

// The nine matrix products of the bench model's training step (1,536 tokens, d 256, d_ff 1024,
// 8,000 words; `attnlab bench` at its default size): out (M x N) = op(A) (M x K) op(B) (K x N).
struct Product {
  const char* what;
  int M, N, K;
  bool trans_a, trans_b;
};
inline constexpr Product kStepProducts[] = {
    {"linear forward   X W", 1536, 256, 256, false, false},
    {"linear dX        G Wᵀ", 1536, 256, 256, false, true},
    {"linear dW        Xᵀ G", 256, 256, 1536, true, false},
    {"ff1 forward      X W", 1536, 1024, 256, false, false},
    {"ff1 dX           G Wᵀ", 1536, 256, 1024, false, true},
    {"ff1 dW           Xᵀ G", 256, 1024, 1536, true, false},
    {"logits           H Eᵀ", 1536, 8000, 256, false, true},
    {"logits dH        G E", 1536, 256, 8000, false, false},
    {"logits dE        Gᵀ H", 8000, 256, 1536, true, false},
};

// One of two threads' share of p, cut as matmul_forward cuts it: a block of rows when the
// result is at least as tall as wide, else a block of columns.
inline Product one_of_two_threads(Product p) {
  if (p.M >= p.N)
    p.M /= 2;
  else
    p.N /= 2;
  return p;
}

inline double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Call first in main: may re-execute the program once (core/runtime.h), then sets the threads.
inline void start(int argc, char** argv) {
  init_runtime(argv);  // the same BLAS kernel and OpenMP setting as attnlab
  int threads = 0;
  for (int i = 1; i + 1 < argc; i++)
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  set_threads(threads);
}

}  // namespace attn::bench
