// bench/omp_regions.cpp — where a program's threads wait: preloaded, it counts the time inside
// OpenMP parallel regions and the time between them, when one thread works and the others sleep
// or spin. At exit it prints the totals and the callers with the most time before their region.
// For libgomp (GCC's OpenMP runtime): it wraps GOMP_parallel, which every `omp parallel` calls.
//
//   cmake --build build --target omp_regions
//   LD_PRELOAD=build/libomp_regions.so build/attnlab bench --d 64 --ff 256 --steps 10 --threads 2
//   LD_PRELOAD=build/libomp_regions.so build/attnlab bench --d 64 --ff 256 --steps 30 --threads 2
//
// The two runs differ by 20 steps and nothing else: their totals' difference / 20 is a step's.
// A caller is an address in the program; `addr2line -f -C -i -e build/attnlab 0x...` names it.
//
// Result: docs/benchmarks.md ("Two threads: the time between parallel regions").
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <vector>

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Caller {
  double before_ms = 0, inside_ms = 0;  // serial time before its regions, time inside them
  long regions = 0;
};

// Regions are entered from the program's first thread only (nested ones run inline), so no lock.
struct Totals {
  std::map<const void*, Caller> callers;
  double last_end = -1, inside_ms = 0, between_ms = 0;
  long regions = 0;
  ~Totals() {
    std::fprintf(stderr, "omp_regions: %ld regions, %.1f ms inside them, %.1f ms between them\n", regions, inside_ms,
                 between_ms);
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

}  // namespace

extern "C" void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags) {
  using Real = void (*)(void (*)(void*), void*, unsigned, unsigned);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "GOMP_parallel"));
  Caller& c = totals.callers[__builtin_return_address(0)];
  const double start = now_ms();
  if (totals.last_end >= 0) {
    c.before_ms += start - totals.last_end;
    totals.between_ms += start - totals.last_end;
  }
  real(fn, data, num_threads, flags);
  const double end = now_ms();
  c.inside_ms += end - start;
  c.regions++;
  totals.inside_ms += end - start;
  totals.regions++;
  totals.last_end = end;
}
