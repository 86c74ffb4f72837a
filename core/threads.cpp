// core/threads.cpp — applies the thread count to OpenMP and OpenBLAS (when linked).
#include <attnlab/core/threads.h>
#include <attnlab/core/usage_error.h>

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

// Declared weak so that a BLAS other than OpenBLAS still links; then only OpenMP is set.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace attn {

static int g_threads = 0;
static bool g_split = false;

// ATTNLAB_THREADS: unset, empty or 0 (all cores, as --threads 0), or a whole number up to 1024.
static int threads_from_env() {
  const char* env = std::getenv("ATTNLAB_THREADS");
  if (!env || !*env) return 0;
  char* end = nullptr;
  const long v = std::strtol(env, &end, 10);
  if (*end != '\0' || v < 0 || v > 1024)
    throw UsageError(std::string("ATTNLAB_THREADS='") + env +
                     "': expected a whole number from 1 to 1024 (or 0: all cores)");
  return int(v);
}

// ATTNLAB_OPENBLAS_THREADS: unset, empty or 0 (attnlab splits the products), or 1 (OpenBLAS threads them).
static bool openblas_threads_from_env() {
  const char* env = std::getenv("ATTNLAB_OPENBLAS_THREADS");
  if (!env || !*env || std::strcmp(env, "0") == 0) return false;
  if (std::strcmp(env, "1") == 0) return true;
  throw UsageError(std::string("ATTNLAB_OPENBLAS_THREADS='") + env +
                   "': expected 1 (OpenBLAS threads the products) or 0 (attnlab splits them)");
}

void set_threads(int n) {
  if (n <= 0) n = threads_from_env();
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  const bool openblas_threads = openblas_threads_from_env();
  g_threads = n;
  omp_set_num_threads(n);
  // With OpenBLAS, attnlab splits the large products over its own threads and OpenBLAS runs
  // each part on one; another BLAS keeps its own threading (it cannot be told to stop).
  g_split = openblas_set_num_threads != nullptr && n > 1 && !openblas_threads;
  if (openblas_set_num_threads) openblas_set_num_threads(g_split ? 1 : n);
}

// Until a caller sets a thread count, attnlab changes nothing in OpenMP or OpenBLAS: its loops
// take OpenMP's count as the host program has it, and the BLAS threads its own products.
bool splits_products() { return g_threads != 0 && g_split; }

int num_threads() { return g_threads != 0 ? g_threads : std::max(1, omp_get_max_threads()); }

}  // namespace attn
