// models/blocks.h — the pieces the three architectures share: the embedding with sinusoidal
// positions, a residual sub-layer (pre-LN or post-LN), the self-attention block, the masks.
//
//   Block b = make_block(params, "dec.0", cfg, cfg.dec_self, rng);   // ln1, self_attn, ln2, ff
//   x = embed(m, ids, B, T, /*offset=*/0, ctx, "dec.emb");
//   x = block_forward(m, b, x, causal_mask(B, T), ctx, "dec.0");
#pragma once
#include <string>
#include <vector>

#include <attnlab/models/model.h>

namespace attn {

// Self-attention and a feed-forward layer, each a residual sub-layer: an encoder layer, or a
// decoder-only model's layer.
struct Block {
  LayerNorm ln1, ln2;
  MultiHeadAttention self_attn;
  FeedForward ff;
};
// Creates its parameters in the order ln1, self_attn, ln2, ff (the order weights are drawn in).
Block make_block(ParamStore& ps, const std::string& prefix, const ModelConfig& cfg, const AttnVariant& v, Rng& rng);

// ids (B,T) → E[ids]·√C + PE[offset : offset+T], with dropout when training.
Var embed(const Model& m, const std::vector<int32_t>& ids, int B, int T, int offset, const Context& ctx,
          const std::string& name);

// One residual sub-layer: pre-LN  x + drop(f(LN(x)))  or post-LN  LN(x + drop(f(x))).
template <typename F>
Var residual(const Model& m, const Var& x, const LayerNorm& ln, const Context& ctx, const std::string& name, F f) {
  // x + dropout(y) is one op in training (dropout_add: the branch's dropout and the add in one pass)
  if (m.cfg.post_ln) {
    Var y = f(x);
    return ln(ctx.train ? dropout_add(x, y, m.cfg.dropout, *ctx.rng, name + ".res") : add(x, y, name + ".res"),
              name + ".ln");
  }
  Var y = f(ln(x, name + ".ln"));
  return ctx.train ? dropout_add(x, y, m.cfg.dropout, *ctx.rng, name + ".res") : add(x, y, name + ".res");
}

// A block's two sub-layers, named prefix.sa and prefix.ffn. With a cache, x holds only the
// newest positions and the keys and values of earlier ones come from the cache.
Var block_forward(const Model& m, const Block& b, const Var& x, const Tensor& mask, const Context& ctx,
                  const std::string& prefix, KVCache* cache = nullptr);

// Additive masks (0 visible, -inf hidden): keys that are padding; keys after the query.
Tensor padding_mask(const std::vector<int32_t>& keys, int B, int Tq, int S, int pad_id);
Tensor causal_mask(int B, int T);

// The logits h Eᵀ (rows, V) of hidden states (..., C), through the tied embedding.
Var tied_logits(const Model& m, const Var& hidden, const std::string& name);
// The training loss, "loss": the mean label-smoothed cross-entropy of those logits against one
// target per row (pad_id ignored), as one op (logits_cross_entropy) that keeps no logits.
Var tied_loss(const Model& m, const Var& hidden, const std::vector<int32_t>& targets, float smoothing, int pad_id,
              const std::string& name);

}  // namespace attn
