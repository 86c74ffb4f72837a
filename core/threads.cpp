// core/threads.cpp — applies the thread count to OpenBLAS (when linked) and OpenMP.
#include "core/threads.h"

#include <omp.h>

#include <cstdlib>
#include <thread>

// Declared weak so that a BLAS other than OpenBLAS still links; then only OpenMP is set.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace attn {

static int g_threads = 0;

void set_threads(int n) {
  if (n <= 0) {
    const char* env = std::getenv("ATTNLAB_THREADS");
    n = env ? std::atoi(env) : 0;
  }
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  g_threads = n;
  omp_set_num_threads(n);
  if (openblas_set_num_threads) openblas_set_num_threads(n);
}

int num_threads() {
  if (g_threads == 0) set_threads(0);
  return g_threads;
}

}  // namespace attn

extern "C" char* openblas_get_corename(void) __attribute__((weak));

#include <unistd.h>

#include <cstring>

namespace attn {

const char* ensure_fast_blas_kernel(char** argv) {
  if (!openblas_get_corename) return "unknown BLAS";
  const char* core = openblas_get_corename();
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("ATTNLAB_KEEP_BLAS_CORE")) return core;
  const bool generic = std::strcmp(core, "Prescott") == 0 || std::strcmp(core, "Core2") == 0 ||
                       std::strcmp(core, "Nehalem") == 0 || std::strcmp(core, "Sandybridge") == 0;
  __builtin_cpu_init();
  if (!generic || !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return core;
  ::setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  ::setenv("ATTNLAB_KEEP_BLAS_CORE", "1", 1);  // never loop
  ::execv("/proc/self/exe", argv);
  return core;  // exec failed (no /proc): carry on with the slow kernel
}

}  // namespace attn
