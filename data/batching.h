// data/batching.h — token-budget batches bucketed by length, with a restorable position.
//
//   Batcher b(examples, /*max_tokens=*/2048, /*seed=*/1);
//   Batch x = b.next();              // cycles through epochs, reshuffling each
//   auto pos = b.position();  ...  b.restore(pos);   // resume exactly where a run stopped
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include <attnlab/data/batch.h>

namespace attn {

struct Example {
  std::vector<int32_t> src;  // ends with eos
  std::vector<int32_t> tgt;  // without bos/eos
};

// Pads `ex` into one batch: src (B,S), tgt_in = bos y (B,T), tgt_out = y eos (B,T).
Batch make_batch(const std::vector<const Example*>& ex, int pad, int bos, int eos);

class Batcher {
 public:
  struct Position {
    int64_t epoch = 0, index = 0;
  };
  // Each batch holds at most max_tokens tokens counting padding (B * max(S, T+1)).
  Batcher(const std::vector<Example>& data, int max_tokens, uint64_t seed, bool shuffle = true);
  Batch next();
  Position position() const { return pos_; }
  void restore(Position p);
  size_t batches_per_epoch() const { return batches_.size(); }
  // All batches of one pass in order (evaluation).
  const std::vector<std::vector<int>>& plan() const { return batches_; }

 private:
  void plan_epoch(int64_t epoch);
  const std::vector<Example>& data_;
  int max_tokens_;
  uint64_t seed_;
  bool shuffle_;
  std::vector<std::vector<int>> batches_;
  Position pos_;
};

}  // namespace attn
