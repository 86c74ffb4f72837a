// models/decode.h — greedy and beam-search translation, with or without the key/value cache.
//
//   DecodeOptions opt;  opt.beam = 5;
//   auto out = translate_ids(model, {{12, 7, 99, 2}}, opt);   // token ids in, token ids out
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include <attnlab/models/transformer.h>

namespace attn {

struct DecodeOptions {
  int beam = 1;                 // 1: greedy
  int max_len = 0;              // 0: 2 * source length + 10 (capped by the model's max_len)
  float length_penalty = 0.6f;  // GNMT: score / ((5 + len) / 6)^alpha
  bool use_cache = true;        // false: recompute the whole prefix each step (the reference)
  int batch = 32;               // sentences decoded together (their beam rows in one batch);
                                // without the cache, always 1
  // If set: for each sentence, how close its search came to another result: at each step, the
  // smallest gap between two scores whose order decided something (the kept and the first
  // dropped candidate, the ranks among the kept, the best finished against the rest). Two
  // numerical paths (another CPU's kernels, the cache, another batch) whose scores differ by
  // less than half a gap make the same choice there (tests/decisions.h).
  std::vector<std::vector<float>>* margins = nullptr;
  // If set: called after each group of sentences with how many are translated of how many (a
  // long test decoding says how far it has got). It does not change what is decoded.
  std::function<void(size_t done, size_t total)> on_progress;
};

// Sources are token id sequences ending in eos; results exclude bos and eos, in the order of
// srcs. Each sentence's translation is the same whatever the batch (tests/test_models.cpp).
std::vector<std::vector<int32_t>> translate_ids(const Transformer& model, const std::vector<std::vector<int32_t>>& srcs,
                                                const DecodeOptions& opt);

// A beam search's step: the best `keep` extensions (score + lp, and row · V + token) of the
// live rows (scores[b] > −inf), best first; an equal score ranks after those before it (the
// lower row, then the lower token); pad and bos are never extensions; keep 0 gives none. The
// log-probabilities are lp[b, v] = logits[b, v] − lse[b] (rows × V; lse null: the logits are
// log-probabilities already), so the decoder's logits are never rewritten. Fast (it skips,
// branch-free, blocks of tokens that cannot enter), and tested against sorting all of them
// (tests/test_models.cpp).
std::vector<std::pair<float, int64_t>> best_extensions(const float* scores, const float* logits, const float* lse, int rows,
                                                       int V, size_t keep, int pad_id, int bos_id);

// Log-probabilities (rows, V) of the next token after each prefix, recomputing the whole
// decoder: the reference the cached path is tested against.
Tensor next_logprobs_full(const Transformer& model, const Var& memory, const std::vector<int32_t>& src, int S,
                          const std::vector<std::vector<int32_t>>& prefixes);

}  // namespace attn
