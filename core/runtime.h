// core/runtime.h — the BLAS kernels and OpenMP policy a program runs with: attn::init_runtime(argv),
// first in every main that wants the ones the `attnlab` command runs with.
#pragma once

namespace attn {
// The runtime `attnlab` runs on, for every program that uses the library: call init_runtime first
// in main, with main's own argv, and the program runs the BLAS kernels and OpenMP setting that
// `attnlab` runs, so the same settings give the same numbers (examples/train_reverse.cpp):
//   int main(int argc, char** argv) {
//     attn::init_runtime(argv);  // first: it may start the program again from here, once
// Two settings the libraries read only when they load, so init_runtime sets them and executes the
// program again, once (/proc/self/exe, the same argv; ATTNLAB_RUNTIME_SET marks the second
// start). Whatever main did before the call is done twice, which is why it comes first, and why
// it is a call and not something the library does when it loads: only the program can say that
// starting it again is harmless. A variable the user set is left as it is:
//  - OPENBLAS_CORETYPE: OpenBLAS 0.3.21 (Debian 12) does not recognise some newer or virtualised
//    CPUs and falls back to its SSE3 "Prescott" kernels, far slower than its AVX-512 ones. When that happened (or it chose the AVX2 "Haswell" kernels on a CPU with AVX-512) it
//    is set to the best family the CPU supports. ATTNLAB_KEEP_BLAS_CORE=1 keeps OpenBLAS's choice.
//  - OMP_WAIT_POLICY=passive and GOMP_SPINCOUNT=2000 (kSpinCount): an idle OpenMP thread spins
//    about 20 µs (libgomp's estimate) before it sleeps, then waits for a wake-up. OpenMP's own
//    default spins ~3 ms, on the cores a BLAS's own threads need, and burns a laptop's battery;
//    passive alone (no spin) makes every parallel region of a step wait for a sleeping thread to
//    wake: the short spin makes two-thread steps 5-20% faster (docs/benchmarks.md, "What was tried").
//    GOMP_SPINCOUNT is libgomp's; another OpenMP runtime reads the passive policy alone.
// It also keeps freed memory in the heap (keep_freed_memory, core/tensor.h), a process-wide
// allocator setting the library otherwise leaves alone.
// Not under a debugger or tracer (TracerPid in /proc/self/status): there the program runs as
// loaded, so that gdb's `start`, `next` and breakpoints stay in one program image. Nor without
// /proc (the exec fails): then too it carries on as loaded.
// Returns the BLAS kernel name in use.
const char* fast_blas_core_for_this_cpu(const char* current);  // nullptr: keep current
const char* init_runtime(char** argv);
inline constexpr const char* kSpinCount = "2000";  // GOMP_SPINCOUNT's value when the user set neither

// For benchmark reports: the BLAS kernel family in use ("Zen", "SkylakeX", ... or "unknown BLAS"
// when the BLAS is not OpenBLAS). Its companion for attnlab's own loops is vector_isa()
// (core/kernels.h), next to the loops' multiversioning.
const char* blas_kernels();
}  // namespace attn
