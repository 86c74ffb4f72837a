// core/threads.h — one thread count for BLAS and for attnlab's own parallel loops, and the
// choice of BLAS kernel.
//
// `--threads N` or ATTNLAB_THREADS=N sets both, so OpenBLAS and the OpenMP loops never
// oversubscribe the cores. Default: the number of online cores.
//   attn::set_threads(2);  int n = attn::num_threads();
#pragma once

namespace attn {
void set_threads(int n);  // n <= 0: ATTNLAB_THREADS or the core count
int num_threads();

// OpenBLAS 0.3.21 (Debian 12) does not recognise some newer or virtualised CPUs and falls back
// to its SSE3 "Prescott" kernels, a quarter of the speed of its AVX-512 ones. When that happened
// (or it chose the AVX2 "Haswell" kernels on a CPU with AVX-512) and the user set no
// OPENBLAS_CORETYPE, this re-executes the program with OPENBLAS_CORETYPE set to the best family
// the CPU supports (the variable is read only when the library loads). Set
// ATTNLAB_KEEP_BLAS_CORE=1 to keep whatever OpenBLAS chose. Returns the kernel name in use.
const char* fast_blas_core_for_this_cpu(const char* current);  // nullptr: keep current
const char* ensure_fast_blas_kernel(char** argv);
}  // namespace attn
