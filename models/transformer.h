// models/transformer.h — the encoder–decoder transformer with per-site attention variants.
//
// Shared vocabulary: one embedding table E (V,C) for source, target and the output layer
// (logits = h Eᵀ). Pre-LN blocks by default (post-LN by flag). Sinusoidal positions.
//
//   ModelConfig cfg;  cfg.vocab = 8000;  cfg.apply_preset("qq");
//   Transformer model(cfg, /*seed=*/1);
//   Context ctx{.train = true, .rng = &rng};
//   Tape tape; TapeScope scope(tape);
//   Var loss = model.loss(batch, ctx);  tape.backward(loss);
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <attnlab/models/blocks.h>
#include <attnlab/models/model.h>

namespace attn {

using EncoderLayer = Block;  // self-attention and feed-forward (models/blocks.h)
struct DecoderLayer {
  LayerNorm ln1, ln2, ln3;
  MultiHeadAttention self_attn, cross_attn;
  FeedForward ff;
};

// Per-layer caches of one incremental decode. The source side is kept once per group of
// `group` consecutive rows that hold the same sentence (a beam search's rows): the
// cross-attention reads that sentence's memory once, with its rows as the sentence's queries,
// and a reorder among the group's rows moves none of it.
struct DecodeState {
  Var memory;            // (U,S,C), U = rows / group
  Tensor cross_mask;     // (U,group,S)
  std::vector<KVCache> self_cache, cross_cache;  // cross_cache's keys and values: (U,S,C)
  std::vector<int> source;  // which encoded sentence each row holds
  int group = 1;            // rows per entry of the source side
  int step = 0;
};

class Transformer : public Model {
 public:
  std::vector<EncoderLayer> enc;
  std::vector<DecoderLayer> dec;
  LayerNorm enc_ln, dec_ln;  // final norms (pre-LN)

  Transformer(const ModelConfig& cfg, uint64_t seed);

  Var encode(const std::vector<int32_t>& src, int B, int S, const Context& ctx) const;
  // Decoder hidden states (B,T,C) for the whole target prefix.
  Var decode(const std::vector<int32_t>& tgt_in, int B, int T, const Var& memory, const std::vector<int32_t>& src,
             int S, const Context& ctx) const;
  Var logits(const Var& hidden) const;  // (B,T,C) -> (B*T,V)
  Var loss(const Batch& batch, const Context& ctx) const override;
  Scored score(const Batch& batch) const override;
  Batch read_sentence(const std::vector<int32_t>& ids, const Context& ctx) const override;
  const Transformer* translator() const override { return this; }

  // Incremental decoding: start() encodes; step() takes one new token per row and returns
  // logits (B,V) of the next position, reusing cached keys and values.
  DecodeState start(const std::vector<int32_t>& src, int B, int S) const;
  Tensor step(DecodeState& st, const std::vector<int32_t>& tokens) const;
  // Keeps rows `rows` of every cache, in that order: beam search reordering, finished sentences
  // leaving a batch, one encoded source repeated for its beam rows. The self-attention caches
  // move indices only (nn/kv_cache.h); the source side is kept once per block of rows holding one
  // sentence, when the rows fall into equal blocks that each hold one (else once per row), and
  // copied only when those blocks come to hold other sentences.
  void reorder(DecodeState& st, const std::vector<int>& rows) const;

  // Attention sites for analysis: (site name, module).
  std::vector<std::pair<std::string, const MultiHeadAttention*>> sites() const override;

  // Masks (additive 0 / -inf).
  Tensor src_mask(const std::vector<int32_t>& src, int B, int Tq, int S) const;  // keys = source padding
  Tensor causal_mask(int B, int T) const { return attn::causal_mask(B, T); }
};

}  // namespace attn
