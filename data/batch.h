// data/batch.h — one padded batch of translation pairs, as the model reads it.
//
// Shapes: B sentences, S source tokens, T target tokens (each padded with pad_id).
//   Batch x = make_batch(examples, pad, bos, eos);   // data/batching.h
//   Var loss = model.loss(x, ctx);                    // models/transformer.h
#pragma once
#include <cstdint>
#include <vector>

namespace attn {

struct Batch {
  int B = 0, S = 0, T = 0;
  std::vector<int32_t> src;      // (B,S) padded with pad_id
  std::vector<int32_t> tgt_in;   // (B,T) bos y1 .. yn, padded
  std::vector<int32_t> tgt_out;  // (B,T) y1 .. yn eos, padded
  int64_t src_tokens = 0, tgt_tokens = 0;  // non-pad counts
};

}  // namespace attn
