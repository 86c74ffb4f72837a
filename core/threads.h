// core/threads.h — one thread count for BLAS and for attnlab's own parallel loops, and the
// choice of BLAS kernel: attn::init_runtime(argv), first in every main that uses attnlab.
//
// `--threads N` or ATTNLAB_THREADS=N sets both, so OpenBLAS and the OpenMP loops never
// oversubscribe the cores. Default: the number of online cores.
//   attn::set_threads(2);  int n = attn::num_threads();
//
// One pool of threads for everything: with OpenBLAS, attnlab cuts each large product into one
// block of rows (or columns) per OpenMP thread and OpenBLAS computes each block on the thread
// that asks (core/kernels.cpp, matmul_forward). Left to thread the products itself, OpenBLAS
// keeps a worker of its own awake after each one, yielding the core, and the elementwise loops
// that run between products then get half of that core: they ran ~2x slower, and the step
// ~15% slower on an AMD EPYC (docs/benchmarks.md). ATTNLAB_OPENBLAS_THREADS=1 goes back to
// OpenBLAS's own threading, for comparison. With another BLAS, that BLAS threads its products.
#pragma once

// The library sets no thread count on its own: until set_threads is called (by the program, by a
// Trainer for TrainConfig::threads, by each attnlab command), OpenMP and OpenBLAS keep what the
// host program gave them, and num_threads() is OpenMP's count.
namespace attn {
void set_threads(int n);  // n <= 0: ATTNLAB_THREADS or the core count; sets OpenMP's and OpenBLAS's
int num_threads();
bool splits_products();   // true: large products are split over attnlab's threads (see above)

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
//    CPUs and falls back to its SSE3 "Prescott" kernels, a quarter of the speed of its AVX-512
//    ones. When that happened (or it chose the AVX2 "Haswell" kernels on a CPU with AVX-512) it
//    is set to the best family the CPU supports. ATTNLAB_KEEP_BLAS_CORE=1 keeps OpenBLAS's choice.
//  - OMP_WAIT_POLICY=passive: after each parallel loop OpenMP's idle threads otherwise spin for a
//    while on the cores that a BLAS's own threads need for the next matrix product; the two
//    pools then take turns on the cores. Measured at the default model size on 2 threads, when
//    OpenBLAS threaded the products itself: about a third more tokens/s with passive
//    (docs/benchmarks.md). With attnlab splitting the products (above) there is one pool and
//    passive measured the same as active; it stays, for the other BLAS libraries and for
//    ATTNLAB_OPENBLAS_THREADS=1, and because a spinning thread burns a laptop's battery.
// It also keeps freed memory in the heap (keep_freed_memory, core/tensor.h), a process-wide
// allocator setting the library otherwise leaves alone.
// Not under a debugger or tracer (TracerPid in /proc/self/status): there the program runs as
// loaded, so that gdb's `start`, `next` and breakpoints stay in one program image. Nor without
// /proc (the exec fails): then too it carries on as loaded.
// Returns the BLAS kernel name in use.
const char* fast_blas_core_for_this_cpu(const char* current);  // nullptr: keep current
const char* init_runtime(char** argv);

// For benchmark reports: the BLAS kernel family in use ("Zen", "SkylakeX", ... or "unknown BLAS"
// when the BLAS is not OpenBLAS). Its companion for attnlab's own loops is vector_isa()
// (core/kernels.h), next to the loops' multiversioning.
const char* blas_kernels();
}  // namespace attn
