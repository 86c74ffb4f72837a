// core/threads.cpp — applies the thread count to OpenMP and OpenBLAS (when linked).
#include <attnlab/core/threads.h>
#include <attnlab/core/tensor.h>
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

extern "C" char* openblas_get_corename(void) __attribute__((weak));

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace attn {

// OpenBLAS picks its kernels by CPU model; on CPUs it does not know (new ones, many VMs) it falls
// back to old SSE3 kernels. Pick the widest kernel family the CPU and OS support instead:
// AVX-512 (SkylakeX) or AVX2+FMA (Haswell). Measured on this repository's VM: Prescott 16,
// Haswell 33, SkylakeX 56-60 GFLOP/s single-threaded (docs/benchmarks.md).
const char* fast_blas_core_for_this_cpu(const char* current) {
  const bool generic = std::strcmp(current, "Prescott") == 0 || std::strcmp(current, "Core2") == 0 ||
                       std::strcmp(current, "Nehalem") == 0 || std::strcmp(current, "Sandybridge") == 0;
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if ((generic || std::strcmp(current, "Haswell") == 0) && avx512) return "SkylakeX";
  if (generic && avx2) return "Haswell";
  return nullptr;  // the current choice is as good as we know
}

// True when a debugger (or strace) is attached: /proc/self/status says "TracerPid: <pid>".
static bool traced() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return false;
  char line[256];
  long pid = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, "TracerPid:", 10) == 0) pid = std::strtol(line + 10, nullptr, 10);
  std::fclose(f);
  return pid != 0;
}

const char* init_runtime(char** argv) {
  keep_freed_memory();  // the allocator setting (core/tensor.h): for this image, and again after an exec
  const char* core = openblas_get_corename ? openblas_get_corename() : "unknown BLAS";
  if (std::getenv("ATTNLAB_RUNTIME_SET")) return core;  // this is the re-executed process
  // Under a debugger a new program image would end the session's breakpoints and `next`
  // ("process N is executing new program"): run as loaded instead, with the BLAS's own kernel
  // choice and OpenMP's default waiting — slower on some CPUs, the same code paths.
  if (traced()) return core;
  std::string set;  // the variables set here, recorded in ATTNLAB_RUNTIME_SET
  if (openblas_get_corename && !std::getenv("OPENBLAS_CORETYPE") && !std::getenv("ATTNLAB_KEEP_BLAS_CORE"))
    if (const char* better = fast_blas_core_for_this_cpu(core)) {
      ::setenv("OPENBLAS_CORETYPE", better, 1);
      set += "OPENBLAS_CORETYPE ";
    }
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    ::setenv("OMP_WAIT_POLICY", "passive", 1);
    set += "OMP_WAIT_POLICY ";
  }
  if (set.empty()) return core;
  ::setenv("ATTNLAB_RUNTIME_SET", set.c_str(), 1);  // also: never loop
  ::execv("/proc/self/exe", argv);
  return core;  // exec failed (no /proc): carry on with the library defaults
}

const char* blas_kernels() { return openblas_get_corename ? openblas_get_corename() : "unknown BLAS"; }

}  // namespace attn
