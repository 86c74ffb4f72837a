// models/blocks.cpp — embedding, self-attention block, masks and the tied output layer.
#include <attnlab/models/blocks.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace attn {

static const float kNegInf = -std::numeric_limits<float>::infinity();

Block make_block(ParamStore& ps, const std::string& prefix, const ModelConfig& cfg, const AttnVariant& v, Rng& rng) {
  const int C = cfg.d_model;
  Block b;
  b.ln1 = LayerNorm(ps, prefix + ".ln1", C, rng);
  b.self_attn = MultiHeadAttention(ps, prefix + ".self_attn", C, cfg.heads, v, cfg.dropout, rng);
  b.ln2 = LayerNorm(ps, prefix + ".ln2", C, rng);
  b.ff = FeedForward(ps, prefix + ".ff", C, cfg.d_ff, cfg.gelu, cfg.dropout, rng);
  return b;
}

Var embed(const Model& m, const std::vector<int32_t>& ids, int B, int T, int offset, const Context& ctx,
          const std::string& name) {
  const int C = m.cfg.d_model;
  if (offset + T > m.cfg.max_len)
    throw std::invalid_argument(fmt::format("sequence of {} tokens exceeds max_len {}", offset + T, m.cfg.max_len));
  Var x = scale(embedding(m.emb, ids, {B, T}, name + ".tok"), std::sqrt(float(C)), name + ".scaled");
  // Only the positions offset .. offset+T-1 (decoding adds one a step).
  x = add_rows(x, constant(sinusoidal_positions(T, C, offset), "positions"), name + ".pos");
  if (ctx.train) x = dropout(x, m.cfg.dropout, *ctx.rng, name + ".drop");
  return x;
}

Var block_forward(const Model& m, const Block& b, const Var& x, const Tensor& mask, const Context& ctx,
                  const std::string& prefix, KVCache* cache) {
  Var y = residual(m, x, b.ln1, ctx, prefix + ".sa",
                   [&](const Var& h) { return b.self_attn.forward(h, h, mask, ctx, cache, true); });
  return residual(m, y, b.ln2, ctx, prefix + ".ffn", [&](const Var& h) { return b.ff(h, ctx); });
}

Tensor padding_mask(const std::vector<int32_t>& keys, int B, int Tq, int S, int pad_id) {
  Tensor m = Tensor::empty({B, Tq, S});
  float* row = m.data();
  for (int b = 0; b < B; b++) {
    const int32_t* k = keys.data() + size_t(b) * S;
    for (int i = 0; i < Tq; i++, row += S)
      for (int j = 0; j < S; j++) row[j] = k[j] == pad_id ? kNegInf : 0.f;
  }
  return m;
}

Tensor causal_mask(int B, int T) {
  Tensor m({B, T, T});  // zeros: every key up to the query's own position is visible
  float* row = m.data();
  for (int b = 0; b < B; b++)
    for (int i = 0; i < T; i++, row += T) std::fill(row + i + 1, row + T, kNegInf);
  return m;
}

// Hidden states (..., C) as rows (N, C), one per token.
static Var rows_of(const Var& hidden, const std::string& name) {
  const int64_t C = hidden->value.dim(-1);
  return reshape(hidden, {hidden->value.numel() / C, C}, name);
}

Var tied_logits(const Model& m, const Var& hidden, const std::string& name) {
  return matmul(rows_of(hidden, name), m.emb, false, true, 1.f, "logits");  // tied: h Eᵀ
}

Var tied_loss(const Model& m, const Var& hidden, const std::vector<int32_t>& targets, float smoothing, int pad_id,
              const std::string& name) {
  return logits_cross_entropy(rows_of(hidden, name), m.emb, targets, smoothing, pad_id, "loss");  // cross_entropy(h Eᵀ)
}

}  // namespace attn
