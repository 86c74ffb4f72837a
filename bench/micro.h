// bench/micro.h — what the micro-benchmarks in bench/*.cpp share: a clock, and the startup
// that gives them attnlab's runtime (BLAS kernel, OpenMP wait policy) and `--threads N`.
#pragma once
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "core/threads.h"

namespace attn::bench {

inline double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Call first in main: may re-execute the program once (core/threads.h), then sets the threads.
inline void start(int argc, char** argv) {
  ensure_fast_runtime(argv);  // the same BLAS kernel and OpenMP setting as attnlab
  int threads = 0;
  for (int i = 1; i + 1 < argc; i++)
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  set_threads(threads);
}

}  // namespace attn::bench
