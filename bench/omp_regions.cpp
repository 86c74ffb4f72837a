// bench/omp_regions.cpp — where a program's threads wait: preloaded, it counts the time inside
// OpenMP parallel regions and the time between them, when one thread works and the others sleep
// or spin. A region whose `if` clause was false (GCC then asks for one thread) runs on one
// thread too, and counts as serial, apart. At exit it prints the totals and the callers with the
// most serial time before their region. For libgomp (GCC's OpenMP runtime): it wraps
// GOMP_parallel, which every `omp parallel` calls; a region inside another runs inline and is
// not counted, nor is one opened from any thread but the first.
//
//   cmake --build build --target omp_regions
//   LD_PRELOAD=build/libomp_regions.so build/attnlab bench --d 64 --ff 256 --steps 10 --threads 2
//   LD_PRELOAD=build/libomp_regions.so build/attnlab bench --d 64 --ff 256 --steps 30 --threads 2
//
// The two runs differ by 20 steps and nothing else: their totals' difference / 20 is a step's.
// Serial time is "between them" (it includes the one-thread regions' time, also shown apart).
// A caller is an address in the program; `addr2line -f -C -i -e build/attnlab 0x...` names it.
//
// Result: docs/benchmarks.md ("Two threads: the time between parallel regions").
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Caller {
  double before_ms = 0, inside_ms = 0;  // serial time before its regions, time inside them
  long regions = 0;
};

// Only the first thread to open a region is counted, and only its outermost regions, so the
// totals are updated by one thread.
struct Totals {
  std::map<const void*, Caller> callers;
  double last_end = -1, inside_ms = 0, between_ms = 0, one_thread_ms = 0;
  long regions = 0, one_thread_regions = 0;
  ~Totals() {
    std::fprintf(stderr,
                 "omp_regions: %ld regions, %.1f ms inside them; %.1f ms between them (of which %.1f ms in %ld "
                 "regions run on one thread)\n",
                 regions, inside_ms, between_ms, one_thread_ms, one_thread_regions);
    std::vector<std::pair<const void*, Caller>> by_wait(callers.begin(), callers.end());
    std::sort(by_wait.begin(), by_wait.end(),
              [](const auto& a, const auto& b) { return a.second.before_ms > b.second.before_ms; });
    by_wait.resize(std::min<size_t>(by_wait.size(), 12));
    for (const auto& [address, c] : by_wait) {
      Dl_info info{};
      const bool named = dladdr(address, &info) && info.dli_fname;
      const auto offset = named ? static_cast<const char*>(address) - static_cast<const char*>(info.dli_fbase) : 0;
      std::fprintf(stderr, "  %9.1f ms before, %9.1f ms inside %7ld regions from %s+0x%tx\n", c.before_ms, c.inside_ms,
                   c.regions, named ? info.dli_fname : "?", offset);
    }
  }
};
Totals totals;
const std::thread::id first_thread = std::this_thread::get_id();  // the program's, at load
thread_local int depth = 0;                                        // regions open on this thread

}  // namespace

extern "C" void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags) {
  using Real = void (*)(void (*)(void*), void*, unsigned, unsigned);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "GOMP_parallel"));
  if (depth > 0 || std::this_thread::get_id() != first_thread) {  // nested, or another thread's
    real(fn, data, num_threads, flags);
    return;
  }
  const double start = now_ms();
  depth++;
  real(fn, data, num_threads, flags);
  depth--;
  const double end = now_ms();
  if (num_threads == 1) {  // `if` false: serial work in a region's clothes
    totals.one_thread_ms += end - start;
    totals.one_thread_regions++;
    return;  // the time between regions runs on until the next real one
  }
  Caller& c = totals.callers[__builtin_return_address(0)];
  if (totals.last_end >= 0) {
    const double serial = start - totals.last_end;
    c.before_ms += serial;
    totals.between_ms += serial;
  }
  c.inside_ms += end - start;
  c.regions++;
  totals.inside_ms += end - start;
  totals.regions++;
  totals.last_end = end;
}
