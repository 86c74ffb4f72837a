// models/generate.h — continuing a prompt with a decoder-only language model.
//
//   GenerateOptions opt;  opt.max_tokens = 40;                 // greedy
//   opt.temperature = 0.8f;  opt.top_k = 20;  opt.seed = 7;    // or sampled
//   std::vector<int32_t> out = generate_ids(lm, prompt_ids, opt);   // the new tokens only
#pragma once
#include <cstdint>
#include <vector>

#include <attnlab/models/lm.h>

namespace attn {

struct GenerateOptions {
  int max_tokens = 50;       // new tokens at most (fewer at eos or the model's max_len)
  float temperature = 0.f;   // 0: greedy (the most likely token); > 0: sample from softmax(logits / T)
  int top_k = 0;             // sampling only: draw among the k most likely tokens (0: all)
  uint64_t seed = 1;
  bool use_cache = true;     // false: recompute the whole sequence each step (the reference)
  // If set: one entry per token chosen (eos included), how near that choice came to another.
  // Greedy: the gap between the two largest logits. Sampling: the distance from the draw to the
  // nearest edge of its token's share of the (top-k) probability mass, as a fraction of the
  // mass. Logits that differ by at most δ (another CPU's kernels, the cache) move every edge by
  // less than 2δ/T of the mass, so a choice whose margin exceeds twice that is the same on both
  // paths (tests/decisions.h).
  std::vector<double>* margins = nullptr;
};

// The tokens after bos + prompt, up to (not including) eos. The key/value cache holds each
// block's keys and values of the tokens so far; for qq the keys are the queries (W_k = W_q).
std::vector<int32_t> generate_ids(const LanguageModel& lm, const std::vector<int32_t>& prompt, const GenerateOptions& opt);

// The logits (V) of the token after `ids` (bos first), recomputing the whole sequence: what the
// cached step is tested against.
Tensor next_logits_full(const LanguageModel& lm, const std::vector<int32_t>& ids);

}  // namespace attn
