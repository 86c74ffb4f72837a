// core/runtime.cpp — picks the BLAS kernel family and OpenMP's waiting policy, then starts the
// program again once so that the libraries read them when they load.
#include <attnlab/core/runtime.h>
#include <attnlab/core/tensor.h>

#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

// Declared weak so that a BLAS other than OpenBLAS still links: then the kernel is not chosen here.
extern "C" char* openblas_get_corename(void) __attribute__((weak));

// The CPUs this process may run on, as started. With OMP_PROC_BIND set, libgomp binds the initial
// thread to its first place while it initialises, before main; the exec below would hand that one
// CPU on to the new image, whose threads would then all share it (the two-thread step ran at half
// speed, docs/benchmarks.md). An executable's .preinit_array runs before any library's
// initialiser, so the mask is read there, and put back before the exec. (Not in a shared build of
// the library: the linker allows .preinit_array in executables only; CMake defines
// attnlab_core_EXPORTS when it builds attnlab_core shared.)
#if defined(__linux__) && defined(__ELF__) && !defined(attnlab_core_EXPORTS)
static cpu_set_t g_start_cpus;
static bool g_have_start_cpus = false;
static void read_start_cpus(int, char**, char**) {
  g_have_start_cpus = sched_getaffinity(0, sizeof g_start_cpus, &g_start_cpus) == 0;
}
__attribute__((section(".preinit_array"), used)) static void (*const g_read_start_cpus)(int, char**, char**) =
    read_start_cpus;
static void restore_start_cpus() {
  if (g_have_start_cpus) sched_setaffinity(0, sizeof g_start_cpus, &g_start_cpus);
}
#else
static void restore_start_cpus() {}
#endif

namespace attn {

// OpenBLAS picks its kernels by CPU model; on CPUs it does not know (new ones, many VMs) it falls
// back to old SSE3 kernels. Pick the widest kernel family the CPU and OS support instead:
// AVX-512 (SkylakeX) or AVX2+FMA (Haswell), several times faster (docs/benchmarks.md).
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
    ::setenv("OMP_WAIT_POLICY", "passive", 1);  // any OpenMP runtime: idle threads sleep
    ::setenv("GOMP_SPINCOUNT", kSpinCount, 1);   // libgomp: after a short spin (it overrides passive's 0)
    set += "OMP_WAIT_POLICY GOMP_SPINCOUNT ";
  }
  if (set.empty()) return core;
  ::setenv("ATTNLAB_RUNTIME_SET", set.c_str(), 1);  // also: never loop
  restore_start_cpus();
  ::execv("/proc/self/exe", argv);
  return core;  // exec failed (no /proc): carry on with the library defaults
}

const char* blas_kernels() { return openblas_get_corename ? openblas_get_corename() : "unknown BLAS"; }

}  // namespace attn
