// nn/kv_cache.h — the keys and values of incremental decoding, appended in place.
//
// A decoder that emits one token per row per step attends over every earlier position. Copying
// the cache into a longer tensor each step moves O(T) floats per token — as much as the
// attention itself reads — and a beam search that reorders its rows by copying moves all of it
// again. Here a position is written once, where it will stay:
//
//   keys[t, s, h, :]    position t of the row that sat in slot s when t was decoded
//   slot[t][r]          which slot holds position t of today's row r
//
// Time-major, so appending position t writes one slab (rows × H × D) and nothing moves; a beam
// search's reordering rewrites the small table of slots (ints), never a key or a value.
#pragma once
#include <cstdint>
#include <vector>

#include <attnlab/core/tensor.h>

namespace attn {

struct KVCache {
  // Cross-attention: the memory's keys and values (U, S, H·D), one entry per group of rows that
  // hold one sentence (models/transformer.h, DecodeState), heads side by side as the projections
  // write them (head_scores and head_context read them so), computed once per decode.
  Tensor k, v;
  bool filled = false;

  // Self-attention (append / attend / reorder below).
  Tensor keys, values;                     // (capacity, slots, H, D); capacity doubles when full
  std::vector<std::vector<int32_t>> slot;  // slot[t][r], t < len, r < rows
  int len = 0;                             // positions so far
  int rows = 0;                            // rows now (at most the slots)

  // Appends one position per row: k_new and v_new are (rows, H, 1, D). The first call fixes the
  // rows, heads and width; later calls must match them.
  void append(const Tensor& k_new, const Tensor& v_new);
  // Attention of one query per row over all len positions: q (rows, H, 1, D), mask (rows, 1, len)
  // additive (or undefined: all visible); noself hides the newest position (the query's own)
  // whenever another is visible. Returns (rows, H, 1, D); probs, if given, gets P (rows, H, 1, len).
  Tensor attend(const Tensor& q, const Tensor& mask, float scale, bool noself, Tensor* probs = nullptr) const;
  // Row i becomes today's row rows[i] (any order, repeats allowed: beam search; fewer rows: a
  // finished sentence leaves). More rows than slots copies the cache into new slots, once.
  void reorder(const std::vector<int>& rows);
};

}  // namespace attn
