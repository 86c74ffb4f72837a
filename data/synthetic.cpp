// data/synthetic.cpp — the generator.
#include <attnlab/data/synthetic.h>

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include <attnlab/core/fileio.h>
#include <attnlab/core/rng.h>
#include <attnlab/core/usage_error.h>

namespace attn {

ParallelCorpus synthetic_task(const std::string& task, int n, uint64_t seed, const SyntheticSpec& spec) {
  if (task != "copy" && task != "reverse" && task != "sort")
    throw UsageError("--task: unknown synthetic task '" + task + "' (expected copy, reverse or sort)");
  if (spec.symbols <= 0 || spec.min_len <= 0 || spec.max_len < spec.min_len)
    throw std::invalid_argument("synthetic task: need symbols > 0 and 0 < min_len <= max_len");
  Rng rng(seed);
  ParallelCorpus c;
  for (int i = 0; i < n; i++) {
    const int len = spec.min_len + int(rng.below(uint32_t(spec.max_len - spec.min_len + 1)));
    std::vector<int> s(static_cast<size_t>(len), 0);
    for (int& x : s) x = int(rng.below(uint32_t(spec.symbols)));
    std::vector<int> t = s;
    if (task == "reverse") std::reverse(t.begin(), t.end());
    if (task == "sort") std::sort(t.begin(), t.end());
    auto text = [](const std::vector<int>& v) {
      std::string out;
      for (size_t k = 0; k < v.size(); k++) out += (k ? " s" : "s") + std::to_string(v[k]);
      return out;
    };
    c.src.push_back(text(s));
    c.tgt.push_back(text(t));
  }
  return c;
}

void write_synthetic_corpus(const std::string& task, const std::string& dir, int n_train, int n_eval, uint64_t seed,
                            const SyntheticSpec& spec) {
  const char* names[3] = {"train", "valid", "test"};
  const int sizes[3] = {n_train, n_eval, n_eval};
  for (int s = 0; s < 3; s++) {
    ParallelCorpus c = synthetic_task(task, sizes[s], seed * 7919 + uint64_t(s), spec);
    std::string a, b;
    for (size_t i = 0; i < c.size(); i++) a += c.src[i] + "\n", b += c.tgt[i] + "\n";
    write_file_atomic(fmt::format("{}/{}.src", dir, names[s]), a);
    write_file_atomic(fmt::format("{}/{}.tgt", dir, names[s]), b);
  }
}

}  // namespace attn
