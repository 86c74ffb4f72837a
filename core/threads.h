// core/threads.h — one thread count for BLAS and for attnlab's own parallel loops. The BLAS
// kernel and OpenMP policy a program runs with are core/runtime.h's (attn::init_runtime).
//
// `--threads N` or ATTNLAB_THREADS=N sets both, so OpenBLAS and the OpenMP loops never
// oversubscribe the cores. Default: the number of online cores.
//   attn::set_threads(2);  int n = attn::num_threads();
//
// One pool of threads for everything: with OpenBLAS, attnlab cuts each large product into one
// block of rows (or columns) per OpenMP thread and OpenBLAS computes each block on the thread
// that asks (core/kernels.cpp, matmul_forward): OpenBLAS's own workers would otherwise take
// turns on the cores with OpenMP's (the figures: docs/benchmarks.md, "What was tried").
// ATTNLAB_OPENBLAS_THREADS=1 goes back to OpenBLAS's own threading, for comparison. With
// another BLAS, that BLAS threads its products.
#pragma once

// The library sets no thread count on its own: until set_threads is called (by the program, by a
// Trainer for TrainConfig::threads, by each attnlab command), OpenMP and OpenBLAS keep what the
// host program gave them, and num_threads() is OpenMP's count.
namespace attn {
void set_threads(int n);  // n <= 0: ATTNLAB_THREADS or the core count; sets OpenMP's and OpenBLAS's
int num_threads();
bool splits_products();   // true: large products are split over attnlab's threads (see above)
}  // namespace attn
