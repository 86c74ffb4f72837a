// models/decode.cpp — greedy and beam search over the incremental decoder.
#include "models/decode.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/kernels.h"

namespace attn {

static void log_softmax_rows(Tensor& logits) {
  const int64_t V = logits.dim(-1), R = logits.numel() / V;
  Tensor out(logits.shape());
  log_softmax_forward(out.data(), logits.data(), R, int(V));
  logits = out;
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
  Tensor last({B, V});
  for (int b = 0; b < B; b++) std::copy(all.data() + (int64_t(b) * T + T - 1) * V, all.data() + (int64_t(b) * T + T) * V, last.data() + int64_t(b) * V);
  log_softmax_rows(last);
  return last;
}

// Decodes one source sentence with `beam` hypotheses (beam 1 = greedy).
static std::vector<int32_t> decode_one(const Transformer& model, const std::vector<int32_t>& src_ids,
                                       const DecodeOptions& opt) {
  NoGradScope no_grad;
  const ModelConfig& cfg = model.cfg;
  const int S = int(src_ids.size());
  const int beam = std::max(1, opt.beam);
  int max_len = opt.max_len > 0 ? opt.max_len : 2 * S + 10;
  max_len = std::min(max_len, cfg.max_len - 1);

  // Beam rows share one encoded source.
  std::vector<int32_t> src;
  for (int b = 0; b < beam; b++) src.insert(src.end(), src_ids.begin(), src_ids.end());
  DecodeState st;
  Var memory;
  if (opt.use_cache) st = model.start(src, beam, S);
  else memory = model.encode(src, beam, S, Context{});

  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<std::vector<int32_t>> hyps(beam, std::vector<int32_t>{cfg.bos_id});
  std::vector<float> scores(beam, ninf);
  scores[0] = 0.f;  // only one live hypothesis at the start
  std::vector<std::pair<float, std::vector<int32_t>>> finished;
  auto penalty = [&](size_t len) { return std::pow((5.f + float(len)) / 6.f, opt.length_penalty); };

  for (int t = 0; t < max_len; t++) {
    Tensor lp;
    if (opt.use_cache) {
      std::vector<int32_t> last;
      for (auto& h : hyps) last.push_back(h.back());
      lp = model.step(st, last);
      log_softmax_rows(lp);
    } else {
      lp = next_logprobs_full(model, memory, src, S, hyps);
    }
    const int V = int(lp.dim(-1));
    // Candidates: every (row, token) extension of a live hypothesis.
    std::vector<std::pair<float, int64_t>> cand;
    for (int b = 0; b < beam; b++) {
      if (scores[b] == ninf) continue;
      for (int v = 0; v < V; v++) {
        if (v == cfg.pad_id || v == cfg.bos_id) continue;
        cand.push_back({scores[b] + lp[int64_t(b) * V + v], int64_t(b) * V + v});
      }
    }
    const size_t k = std::min(cand.size(), size_t(2 * beam));
    std::partial_sort(cand.begin(), cand.begin() + k, cand.end(), [](auto& a, auto& b) { return a.first > b.first; });
    std::vector<int> rows;
    std::vector<std::vector<int32_t>> next_hyps;
    std::vector<float> next_scores;
    for (size_t i = 0; i < k && int(rows.size()) < beam; i++) {
      const int b = int(cand[i].second / V), v = int(cand[i].second % V);
      if (v == cfg.eos_id) {
        std::vector<int32_t> out(hyps[b].begin() + 1, hyps[b].end());
        finished.push_back({cand[i].first / penalty(out.size() + 1), out});
        if (beam == 1) break;
        continue;
      }
      rows.push_back(b);
      next_hyps.push_back(hyps[b]);
      next_hyps.back().push_back(v);
      next_scores.push_back(cand[i].first);
    }
    if (int(finished.size()) >= beam || rows.empty()) break;
    // Stop when no live hypothesis can beat the best finished one (scores only fall).
    if (!finished.empty()) {
      float best_done = finished[0].first;
      for (auto& f : finished) best_done = std::max(best_done, f.first);
      const float best_live = next_scores[0] / penalty(size_t(max_len) + 1);
      if (best_done > best_live && beam > 1) break;
    }
    while (int(rows.size()) < beam) {  // pad the beam with dead rows
      rows.push_back(rows[0]);
      next_hyps.push_back(next_hyps[0]);
      next_scores.push_back(ninf);
    }
    if (opt.use_cache) model.reorder(st, rows);
    hyps = next_hyps;
    scores = next_scores;
  }
  if (finished.empty()) {  // ran out of length: take the best live hypothesis
    int best = int(std::max_element(scores.begin(), scores.end()) - scores.begin());
    return std::vector<int32_t>(hyps[best].begin() + 1, hyps[best].end());
  }
  auto best = std::max_element(finished.begin(), finished.end(), [](auto& a, auto& b) { return a.first < b.first; });
  return best->second;
}

std::vector<std::vector<int32_t>> translate_ids(const Transformer& model, const std::vector<std::vector<int32_t>>& srcs,
                                                const DecodeOptions& opt) {
  std::vector<std::vector<int32_t>> out(srcs.size());
  for (size_t i = 0; i < srcs.size(); i++) out[i] = decode_one(model, srcs[i], opt);
  return out;
}

}  // namespace attn
