// models/lm.cpp — the decoder-only language model and the encoder-only masked-token model.
#include <attnlab/models/lm.h>

#include <cmath>

namespace attn {

// ---- the shared stack -------------------------------------------------------------------

BlockStack::BlockStack(const ModelConfig& c, uint64_t seed, const std::string& prefix, const AttnVariant& v, int layers)
    : Model(c), prefix_(prefix) {
  cfg.validate();
  Rng rng(seed);
  const int C = cfg.d_model;
  emb = params.add("emb.weight", {cfg.vocab, C}, Init::Normal, rng, 1.f / std::sqrt(float(C)));
  for (int i = 0; i < layers; i++) blocks.push_back(make_block(params, fmt::format("{}.{}", prefix, i), cfg, v, rng));
  if (!cfg.post_ln) final_ln = LayerNorm(params, prefix + ".ln", C, rng);
}

Var BlockStack::stack(const std::vector<int32_t>& ids, int B, int T, const Tensor& mask, const Context& ctx,
                      std::vector<KVCache>* caches, int offset) const {
  Var x = embed(*this, ids, B, T, offset, ctx, prefix_ + ".emb");
  for (size_t i = 0; i < blocks.size(); i++)
    x = block_forward(*this, blocks[i], x, mask, ctx, fmt::format("{}.{}", prefix_, i), caches ? &(*caches)[i] : nullptr);
  return cfg.post_ln ? x : final_ln(x, prefix_ + ".ln");
}

std::vector<std::pair<std::string, const MultiHeadAttention*>> BlockStack::sites() const {
  std::vector<std::pair<std::string, const MultiHeadAttention*>> s;
  for (auto& b : blocks) s.push_back({b.self_attn.name, &b.self_attn});
  return s;
}

// ---- decoder-only ----------------------------------------------------------------------

LanguageModel::LanguageModel(const ModelConfig& c, uint64_t seed) : BlockStack(c, seed, "dec", c.dec_self, c.dec_layers) {}

// Padding sits after the last token: no real position sees it through the causal mask.
Var LanguageModel::hidden(const std::vector<int32_t>& ids, int B, int T, const Context& ctx) const {
  return stack(ids, B, T, causal_mask(B, T), ctx);
}

Batch LanguageModel::read_sentence(const std::vector<int32_t>& ids, const Context& ctx) const {
  Batch b;
  b.B = 1, b.T = int(ids.size()) + 1;
  b.tgt_in = {cfg.bos_id};
  b.tgt_in.insert(b.tgt_in.end(), ids.begin(), ids.end());
  b.tgt_out = ids;
  b.tgt_out.push_back(cfg.eos_id);
  hidden(b.tgt_in, 1, b.T, ctx);
  return b;
}

Var LanguageModel::loss(const Batch& b, const Context& ctx) const {
  return tied_loss(*this, hidden(b.tgt_in, b.B, b.T, ctx), b.tgt_out, ctx.train ? cfg.label_smoothing : 0.f,
                   cfg.pad_id, "dec.flat");
}

Scored LanguageModel::score(const Batch& b) const {
  NoGradScope ng;
  return score_logits(tied_logits(*this, hidden(b.tgt_in, b.B, b.T, Context{}), "dec.flat"), b.tgt_out, cfg.pad_id);
}

LmState LanguageModel::start(int) const {
  LmState st;
  st.cache.resize(blocks.size());
  return st;
}

Tensor LanguageModel::step(LmState& st, const std::vector<int32_t>& tokens) const {
  NoGradScope ng;
  const int B = int(tokens.size());
  Tensor mask({B, 1, st.step + 1});  // every earlier position and itself
  Var h = stack(tokens, B, 1, mask, Context{}, &st.cache, st.step);
  st.step++;
  return tied_logits(*this, h, "dec.flat")->value;
}

// ---- encoder-only ----------------------------------------------------------------------

static constexpr float kChosen = 0.15f, kToMask = 0.8f, kToRandom = 0.1f;

// FNV-1a of a sentence's tokens: the seed of its fixed mask.
static uint64_t sentence_hash(const int32_t* ids, int n) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < n; i++) {
    h ^= uint32_t(ids[i]);
    h *= 1099511628211ull;
  }
  return h;
}

Masked mask_tokens(const Batch& b, const ModelConfig& cfg, Rng* rng) {
  Masked m{b.src, std::vector<int32_t>(b.src.size(), cfg.pad_id)};
  const uint32_t first_real = uint32_t(cfg.unk_id + 1), n_real = uint32_t(cfg.vocab) - first_real;
  for (int s = 0; s < b.B; s++) {
    const int32_t* ids = b.src.data() + int64_t(s) * b.S;
    int n = 0;
    while (n < b.S && ids[n] != cfg.pad_id) n++;
    if (n == 0) continue;
    Rng fixed(sentence_hash(ids, n));
    Rng& r = rng ? *rng : fixed;
    std::vector<int> chosen;
    for (int j = 0; j < n; j++)
      if (r.uniform() < kChosen) chosen.push_back(j);
    if (chosen.empty()) chosen.push_back(int(r.below(uint32_t(n))));
    for (int j : chosen) {
      const size_t at = size_t(s) * b.S + j;
      m.targets[at] = ids[j];
      const float u = r.uniform();
      if (u < kToMask) m.input[at] = cfg.bos_id;
      else if (u < kToMask + kToRandom) m.input[at] = int32_t(first_real + r.below(n_real));
    }
  }
  return m;
}

MaskedLM::MaskedLM(const ModelConfig& c, uint64_t seed) : BlockStack(c, seed, "enc", c.enc_self, c.enc_layers) {}

Var MaskedLM::hidden(const std::vector<int32_t>& input, int B, int S, const Context& ctx) const {
  return stack(input, B, S, padding_mask(input, B, S, S, cfg.pad_id), ctx);
}

Batch MaskedLM::read_sentence(const std::vector<int32_t>& ids, const Context& ctx) const {
  Batch b;
  b.B = 1, b.S = int(ids.size());
  b.src = ids;
  hidden(b.src, 1, b.S, ctx);
  return b;
}

Var MaskedLM::loss(const Batch& b, const Context& ctx) const {
  const Masked m = mask_tokens(b, cfg, ctx.train ? ctx.rng : nullptr);
  return tied_loss(*this, hidden(m.input, b.B, b.S, ctx), m.targets, ctx.train ? cfg.label_smoothing : 0.f,
                   cfg.pad_id, "enc.flat");
}

Scored MaskedLM::score(const Batch& b) const {
  NoGradScope ng;
  const Masked m = mask_tokens(b, cfg, nullptr);
  return score_logits(tied_logits(*this, hidden(m.input, b.B, b.S, Context{}), "enc.flat"), m.targets, cfg.pad_id);
}

}  // namespace attn
