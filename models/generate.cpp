// models/generate.cpp — greedy and sampled continuation of a prompt, with or without the cache.
#include <attnlab/models/generate.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace attn {

Tensor next_logits_full(const LanguageModel& lm, const std::vector<int32_t>& ids) {
  NoGradScope ng;
  const int T = int(ids.size());
  Var logits = tied_logits(lm, lm.hidden(ids, 1, T, Context{}), "dec.flat");  // (T,V)
  const int64_t V = logits->value.dim(1);
  Tensor last({V});
  std::copy(logits->value.data() + int64_t(T - 1) * V, logits->value.data() + int64_t(T) * V, last.data());
  return last;
}

// The next token from one row of logits: the most likely, or a draw from softmax(z / T) over
// the top k.
static int32_t pick(const float* z, int64_t V, const GenerateOptions& opt, Rng& rng) {
  if (opt.temperature <= 0.f) {
    const int32_t best = int32_t(std::max_element(z, z + V) - z);
    if (opt.margins) {  // the gap to the runner-up
      float second = -std::numeric_limits<float>::infinity();
      for (int64_t v = 0; v < V; v++)
        if (v != best) second = std::max(second, z[v]);
      opt.margins->push_back(double(z[best]) - double(second));
    }
    return best;
  }
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  size_t k = opt.top_k > 0 ? std::min<size_t>(size_t(opt.top_k), ids.size()) : ids.size();
  std::partial_sort(ids.begin(), ids.begin() + int64_t(k), ids.end(), [&](int32_t a, int32_t b) { return z[a] > z[b]; });
  std::vector<double> p(k);
  for (size_t i = 0; i < k; i++) p[i] = std::exp(double(z[ids[i]] - z[ids[0]]) / opt.temperature);
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  double u = double(rng.uniform()) * total;
  const double drawn = u;
  size_t chosen = k - 1;
  for (size_t i = 0; i < k; i++)
    if ((u -= p[i]) < 0) {
      chosen = i;
      break;
    }
  if (opt.margins) {  // the draw's distance to the edges of the chosen token's share
    double below = 0;
    for (size_t i = 0; i < chosen; i++) below += p[i];
    opt.margins->push_back(std::min(drawn - below, below + p[chosen] - drawn) / total);
  }
  return ids[chosen];
}

std::vector<int32_t> generate_ids(const LanguageModel& lm, const std::vector<int32_t>& prompt, const GenerateOptions& opt) {
  std::vector<int32_t> seq = {lm.cfg.bos_id};
  seq.insert(seq.end(), prompt.begin(), prompt.end());
  if (int(seq.size()) > lm.cfg.max_len)
    throw std::invalid_argument(fmt::format("prompt of {} tokens: more than this model reads ({})", prompt.size(), lm.cfg.max_len - 1));
  Rng rng(opt.seed);
  if (opt.margins) opt.margins->clear();
  std::vector<int32_t> out;
  LmState st = lm.start(1);
  Tensor z;
  if (opt.use_cache)
    for (int32_t id : seq) z = lm.step(st, {id});  // the prompt through the cache, one token at a time
  while (int(out.size()) < opt.max_tokens && int(seq.size()) < lm.cfg.max_len) {
    if (!opt.use_cache) z = next_logits_full(lm, seq);
    const int32_t next = pick(z.data(), z.dim(-1), opt, rng);
    if (next == lm.cfg.eos_id) break;
    out.push_back(next);
    seq.push_back(next);
    if (opt.use_cache && int(seq.size()) < lm.cfg.max_len) z = lm.step(st, {next});
  }
  return out;
}

}  // namespace attn
