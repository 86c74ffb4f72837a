// models/decode.cpp — greedy and beam search over the incremental decoder, several sentences
// at a time.
#include <attnlab/models/decode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <attnlab/core/kernels.h>

namespace attn {

// In place: next_logprobs_full's rows are a fresh tensor it built, held by nobody else.
static void log_softmax_rows(Tensor& logits) {
  const int64_t V = logits.dim(-1), R = logits.numel() / V;
  log_softmax_forward(logits.data(), logits.data(), R, int(V));  // each row is read before it is written
}

Tensor next_logprobs_full(const Transformer& model, const Var& memory, const std::vector<int32_t>& src, int S,
                          const std::vector<std::vector<int32_t>>& prefixes) {
  const int B = int(prefixes.size()), T = int(prefixes[0].size());
  std::vector<int32_t> tgt;
  for (auto& p : prefixes) tgt.insert(tgt.end(), p.begin(), p.end());
  Context ctx;
  Var h = model.decode(tgt, B, T, memory, src, S, ctx);
  Tensor all = model.logits(h)->value;  // (B*T, V)
  const int64_t V = all.dim(-1);
  Tensor last = Tensor::empty({B, V});  // every row written below
  for (int b = 0; b < B; b++) std::copy(all.data() + (int64_t(b) * T + T - 1) * V, all.data() + (int64_t(b) * T + T) * V, last.data() + int64_t(b) * V);
  log_softmax_rows(last);
  return last;
}

// One source sentence's search: `beam` rows of hypotheses (beam 1 = greedy), each starting
// with bos, their scores (−inf marks a dead row that only pads the beam), and the hypotheses
// that have ended in eos, with their length-penalised scores.
struct Search {
  int max_len = 0;
  std::vector<std::vector<int32_t>> hyps;
  std::vector<float> scores;
  std::vector<std::pair<float, std::vector<int32_t>>> finished;
  std::vector<float> margins;  // each step's smallest deciding gap (DecodeOptions::margins)
};

// The smallest gap between neighbours of the scores a decision ranked (sorted, best first), the
// first `used` of them and the one after: where another order would have changed the result.
static float smallest_gap(const std::vector<std::pair<float, int64_t>>& sorted, size_t used) {
  float gap = std::numeric_limits<float>::infinity();
  for (size_t i = 0; i + 1 < sorted.size() && i < used; i++)
    if (sorted[i + 1].first > -std::numeric_limits<float>::infinity()) gap = std::min(gap, sorted[i].first - sorted[i + 1].first);
  return gap;
}

// Whether base + (x[i] − lse) > bar for any of kScanBlock scores (a fixed count, so the loop
// vectorises).
constexpr int kScanBlock = 32;
static bool any_above(float base, const float* x, float lse, float bar) {
  int hit = 0;
  for (int i = 0; i < kScanBlock; i++) hit |= int(base + (x[i] - lse) > bar);
  return hit != 0;
}

std::vector<std::pair<float, int64_t>> best_extensions(const float* scores, const float* logits, const float* lse, int rows,
                                                       int V, size_t keep, int pad_id, int bos_id) {
  // Kept sorted as the candidates stream past, instead of collecting all rows·V of them to sort.
  std::vector<std::pair<float, int64_t>> cand;
  if (keep == 0) return cand;
  cand.reserve(keep + 1);
  for (int b = 0; b < rows; b++) {
    if (scores[b] == -std::numeric_limits<float>::infinity()) continue;
    const float base = scores[b], z = lse ? lse[b] : 0.f;  // x − 0 is x, to the bit
    const float* row = logits + int64_t(b) * V;
    for (int v0 = 0; v0 < V; v0 += kScanBlock) {
      const int end = std::min(V, v0 + kScanBlock);
      // Once the list is full, a block with no score above its last entry changes nothing (the
      // bar never falls within the block): most blocks, skipped after one branch-free pass.
      if (cand.size() == keep && end - v0 == kScanBlock && !any_above(base, row + v0, z, cand.back().first)) continue;
      for (int v = v0; v < end; v++) {
        if (v == pad_id || v == bos_id) continue;
        const float score = base + (row[v] - z);
        if (cand.size() == keep && !(score > cand.back().first)) continue;
        const auto at = std::upper_bound(cand.begin(), cand.end(), score, [](float x, auto& c) { return x > c.first; });
        cand.insert(at, {score, int64_t(b) * V + v});
        if (cand.size() > keep) cand.pop_back();
      }
    }
  }
  return cand;
}

// Extends s by one token, given its rows' next-token log-probabilities logits − lse (beam × V;
// lse null: logits are log-probabilities). Returns the row each new hypothesis continues (beam
// of them), or nothing when s has ended.
static std::vector<int> advance(Search& s, const float* logits, const float* lse, int V, int beam, const ModelConfig& cfg,
                                const DecodeOptions& opt) {
  const float ninf = -std::numeric_limits<float>::infinity();
  auto penalty = [&](size_t len) { return std::pow((5.f + float(len)) / 6.f, opt.length_penalty); };
  // Only the best 2·beam extensions are looked at (with margins, also the best one after them).
  const size_t k = size_t(2 * beam), keep = k + (opt.margins ? 1 : 0);
  const std::vector<std::pair<float, int64_t>> cand = best_extensions(s.scores.data(), logits, lse, beam, V, keep, cfg.pad_id, cfg.bos_id);
  std::vector<int> rows;
  std::vector<std::vector<int32_t>> next_hyps;
  std::vector<float> next_scores;
  size_t used = 0;  // candidates looked at: their order, and the next one's, decided this step
  for (size_t i = 0; i < std::min(k, cand.size()) && int(rows.size()) < beam; i++) {
    used = i + 1;
    const int b = int(cand[i].second / V), v = int(cand[i].second % V);
    if (v == cfg.eos_id) {
      std::vector<int32_t> out(s.hyps[b].begin() + 1, s.hyps[b].end());
      s.finished.push_back({cand[i].first / penalty(out.size() + 1), out});
      if (beam == 1) break;
      continue;
    }
    rows.push_back(b);
    next_hyps.push_back(s.hyps[b]);
    next_hyps.back().push_back(v);
    next_scores.push_back(cand[i].first);
  }
  if (opt.margins) s.margins.push_back(smallest_gap(cand, used));  // cand[k], if any: the best of those left out
  if (int(s.finished.size()) >= beam || rows.empty()) return {};
  // Stop when no live hypothesis can beat the best finished one (scores only fall).
  if (!s.finished.empty() && beam > 1) {
    float best_done = s.finished[0].first;
    for (auto& f : s.finished) best_done = std::max(best_done, f.first);
    const float best_live = next_scores[0] / penalty(size_t(s.max_len) + 1);
    if (opt.margins) s.margins.back() = std::min(s.margins.back(), std::abs(best_done - best_live));
    if (best_done > best_live) return {};
  }
  while (int(rows.size()) < beam) {  // pad the beam with dead rows
    rows.push_back(rows[0]);
    next_hyps.push_back(next_hyps[0]);
    next_scores.push_back(ninf);
  }
  s.hyps = std::move(next_hyps);
  s.scores = std::move(next_scores);
  return rows;
}

// The best finished hypothesis, or the best live one if none finished (ran out of length).
static std::vector<int32_t> best_of(Search& s) {
  std::vector<std::pair<float, int64_t>> ranked;  // the choice among the finished (or live) is a decision too
  for (auto& f : s.finished) ranked.push_back({f.first, 0});
  if (s.finished.empty())
    for (float x : s.scores) ranked.push_back({x, 0});
  std::sort(ranked.begin(), ranked.end(), [](auto& a, auto& b) { return a.first > b.first; });
  if (!s.margins.empty()) s.margins.back() = std::min(s.margins.back(), smallest_gap(ranked, 1));
  if (s.finished.empty()) {
    const int best = int(std::max_element(s.scores.begin(), s.scores.end()) - s.scores.begin());
    return std::vector<int32_t>(s.hyps[best].begin() + 1, s.hyps[best].end());
  }
  auto best = std::max_element(s.finished.begin(), s.finished.end(), [](auto& a, auto& b) { return a.first < b.first; });
  return best->second;
}

// Decodes the sentences srcs[ids[...]] together: their beam rows form one batch (sources
// padded to the longest, each encoded once), each step runs the decoder once for all of them,
// and a sentence leaves the batch when its search ends. Without the cache (the reference) ids
// holds one sentence, encoded once per beam row, and nothing is reordered.
static void decode_group(const Transformer& model, const std::vector<std::vector<int32_t>>& srcs,
                         const std::vector<size_t>& ids, const DecodeOptions& opt,
                         std::vector<std::vector<int32_t>>& out) {
  NoGradScope no_grad;
  const ModelConfig& cfg = model.cfg;
  const int beam = std::max(1, opt.beam);
  int S = 0;
  for (size_t i : ids) S = std::max(S, int(srcs[i].size()));
  std::vector<int32_t> src;  // each sentence padded to S: once with the cache, else once per beam row
  std::vector<int> rows;     // the batch's rows: each sentence's, beam times
  std::vector<Search> search(ids.size());
  for (size_t j = 0; j < ids.size(); j++) {
    const std::vector<int32_t>& s = srcs[ids[j]];
    for (int b = 0; b < (opt.use_cache ? 1 : beam); b++) {
      src.insert(src.end(), s.begin(), s.end());
      src.insert(src.end(), size_t(S) - s.size(), cfg.pad_id);
    }
    rows.insert(rows.end(), size_t(beam), int(j));
    Search& h = search[j];
    h.max_len = opt.max_len > 0 ? opt.max_len : 2 * int(s.size()) + 10;
    h.max_len = std::max(1, std::min(h.max_len, cfg.max_len - 1));
    h.hyps.assign(size_t(beam), {cfg.bos_id});
    h.scores.assign(size_t(beam), -std::numeric_limits<float>::infinity());
    h.scores[0] = 0.f;  // only one live hypothesis at the start
  }
  DecodeState st;
  Var memory;
  if (opt.use_cache) {
    st = model.start(src, int(ids.size()), S);
    if (beam > 1) model.reorder(st, rows);
  } else {
    memory = model.encode(src, beam, S, Context{});
  }

  std::vector<size_t> alive(ids.size());  // searches whose rows are in the batch, in row order
  std::iota(alive.begin(), alive.end(), size_t(0));
  for (int t = 0; !alive.empty(); t++) {
    Tensor lp;               // (rows, V): logits with the cache, else log-probabilities
    std::vector<float> lse;  // with the cache: each row's log Σ exp(logits), so lp − lse are log-probabilities
    if (opt.use_cache) {
      std::vector<int32_t> last;
      for (size_t j : alive)
        for (auto& h : search[j].hyps) last.push_back(h.back());
      lp = model.step(st, last);
      lse.resize(size_t(lp.dim(0)));
      logsumexp_rows(lse.data(), lp.data(), lp.dim(0), int(lp.dim(-1)));
    } else {
      lp = next_logprobs_full(model, memory, src, S, search[alive[0]].hyps);
    }
    const int V = int(lp.dim(-1));
    std::vector<int> keep;  // batch rows that carry on, in their new order
    std::vector<size_t> still;
    for (size_t a = 0; a < alive.size(); a++) {
      Search& s = search[alive[a]];
      const std::vector<int> r =
          advance(s, lp.data() + int64_t(a) * beam * V, lse.empty() ? nullptr : lse.data() + a * size_t(beam), V, beam, cfg, opt);
      if (r.empty() || t + 1 >= s.max_len) {
        out[ids[alive[a]]] = best_of(s);
        if (opt.margins) (*opt.margins)[ids[alive[a]]] = std::move(s.margins);
        continue;
      }
      for (int b : r) keep.push_back(int(a) * beam + b);
      still.push_back(alive[a]);
    }
    alive = std::move(still);
    if (opt.use_cache && !alive.empty()) model.reorder(st, keep);
  }
}

std::vector<std::vector<int32_t>> translate_ids(const Transformer& model, const std::vector<std::vector<int32_t>>& srcs,
                                                const DecodeOptions& opt) {
  std::vector<std::vector<int32_t>> out(srcs.size());
  if (opt.margins) opt.margins->assign(srcs.size(), {});
  // Sentences of similar length together, so that little of a batch is padding.
  std::vector<size_t> order(srcs.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return srcs[a].size() < srcs[b].size(); });
  const size_t group = opt.use_cache ? size_t(std::max(1, opt.batch)) : 1;
  for (size_t i = 0; i < order.size(); i += group) {
    const std::vector<size_t> ids(order.begin() + int64_t(i), order.begin() + int64_t(std::min(order.size(), i + group)));
    decode_group(model, srcs, ids, opt, out);
    if (opt.on_progress) opt.on_progress(i + ids.size(), srcs.size());
  }
  return out;
}

}  // namespace attn
