// models/transformer.cpp — the encoder–decoder model: construction, forward pass and masks, scoring.
#include <attnlab/models/transformer.h>

#include <attnlab/models/decode.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace attn {

// ---- construction ----------------------------------------------------------------------

Transformer::Transformer(const ModelConfig& c, uint64_t seed) : Model(c) {
  cfg.validate();
  Rng rng(seed);
  const int C = cfg.d_model;
  emb = params.add("emb.weight", {cfg.vocab, C}, Init::Normal, rng, 1.f / std::sqrt(float(C)));
  for (int i = 0; i < cfg.enc_layers; i++) enc.push_back(make_block(params, fmt::format("enc.{}", i), cfg, cfg.enc_self, rng));
  if (!cfg.post_ln && cfg.enc_layers > 0) enc_ln = LayerNorm(params, "enc.ln", C, rng);
  for (int i = 0; i < cfg.dec_layers; i++) {
    const std::string p = fmt::format("dec.{}", i);
    DecoderLayer l;
    l.ln1 = LayerNorm(params, p + ".ln1", C, rng);
    l.self_attn = MultiHeadAttention(params, p + ".self_attn", C, cfg.heads, cfg.dec_self, cfg.dropout, rng);
    l.ln2 = LayerNorm(params, p + ".ln2", C, rng);
    l.cross_attn = MultiHeadAttention(params, p + ".cross_attn", C, cfg.heads, cfg.cross, cfg.dropout, rng);
    l.ln3 = LayerNorm(params, p + ".ln3", C, rng);
    l.ff = FeedForward(params, p + ".ff", C, cfg.d_ff, cfg.gelu, cfg.dropout, rng);
    dec.push_back(std::move(l));
  }
  if (!cfg.post_ln) dec_ln = LayerNorm(params, "dec.ln", C, rng);
}

// ---- masks -----------------------------------------------------------------------------

Tensor Transformer::src_mask(const std::vector<int32_t>& src, int B, int Tq, int S) const {
  return padding_mask(src, B, Tq, S, cfg.pad_id);
}

// ---- forward ---------------------------------------------------------------------------

Var Transformer::encode(const std::vector<int32_t>& src, int B, int S, const Context& ctx) const {
  Var x = embed(*this, src, B, S, 0, ctx, "enc.emb");
  Tensor mask = src_mask(src, B, S, S);
  for (size_t i = 0; i < enc.size(); i++) x = block_forward(*this, enc[i], x, mask, ctx, fmt::format("enc.{}", i));
  return (cfg.post_ln || enc.empty()) ? x : enc_ln(x, "enc.ln");
}

Var Transformer::decode(const std::vector<int32_t>& tgt_in, int B, int T, const Var& memory,
                        const std::vector<int32_t>& src, int S, const Context& ctx) const {
  Var x = embed(*this, tgt_in, B, T, 0, ctx, "dec.emb");
  Tensor self_mask = causal_mask(B, T);
  Tensor cross_mask = src_mask(src, B, T, S);
  for (size_t i = 0; i < dec.size(); i++) {
    const DecoderLayer& l = dec[i];
    const std::string p = fmt::format("dec.{}", i);
    x = residual(*this, x, l.ln1, ctx, p + ".sa", [&](const Var& h) { return l.self_attn.forward(h, h, self_mask, ctx); });
    x = residual(*this, x, l.ln2, ctx, p + ".ca",
                 [&](const Var& h) { return l.cross_attn.forward(h, memory, cross_mask, ctx, nullptr, false); });
    x = residual(*this, x, l.ln3, ctx, p + ".ffn", [&](const Var& h) { return l.ff(h, ctx); });
  }
  return cfg.post_ln ? x : dec_ln(x, "dec.ln");
}

Var Transformer::logits(const Var& hidden) const { return tied_logits(*this, hidden, "dec.flat"); }

Var Transformer::loss(const Batch& b, const Context& ctx) const {
  Var memory = encode(b.src, b.B, b.S, ctx);
  Var h = decode(b.tgt_in, b.B, b.T, memory, b.src, b.S, ctx);
  return tied_loss(*this, h, b.tgt_out, ctx.train ? cfg.label_smoothing : 0.f, cfg.pad_id, "dec.flat");
}

Scored Transformer::score(const Batch& b) const {
  NoGradScope ng;
  Context ctx;
  Var memory = encode(b.src, b.B, b.S, ctx);
  return score_logits(logits(decode(b.tgt_in, b.B, b.T, memory, b.src, b.S, ctx)), b.tgt_out, cfg.pad_id);
}

// The source (eos-terminated) and its greedy translation, read as training would feed them.
Batch Transformer::read_sentence(const std::vector<int32_t>& ids, const Context& ctx) const {
  Batch b;
  b.B = 1;
  b.src = ids;
  b.src.push_back(cfg.eos_id);
  b.S = int(b.src.size());
  DecodeOptions opt;
  opt.beam = 1;
  const std::vector<int32_t> hyp = translate_ids(*this, {b.src}, opt)[0];
  b.T = int(hyp.size()) + 1;
  b.tgt_in = {cfg.bos_id};
  b.tgt_in.insert(b.tgt_in.end(), hyp.begin(), hyp.end());
  b.tgt_out = hyp;
  b.tgt_out.push_back(cfg.eos_id);
  loss(b, ctx);
  return b;
}

// ---- incremental decoding --------------------------------------------------------------

DecodeState Transformer::start(const std::vector<int32_t>& src, int B, int S) const {
  DecodeState st;
  Context ctx;
  st.memory = encode(src, B, S, ctx);
  st.cross_mask = src_mask(src, B, 1, S);
  st.self_cache.resize(dec.size());
  st.cross_cache.resize(dec.size());
  st.source.resize(size_t(B));
  std::iota(st.source.begin(), st.source.end(), 0);
  return st;
}

Tensor Transformer::step(DecodeState& st, const std::vector<int32_t>& tokens) const {
  const int B = int(tokens.size());
  if (size_t(B) != st.source.size())
    throw std::logic_error(fmt::format("step: {} tokens for {} rows", B, st.source.size()));
  Context ctx;
  Var x = embed(*this, tokens, B, 1, st.step, ctx, "dec.emb");
  const int Tk = st.step + 1;
  Tensor self_mask({B, 1, Tk});  // all earlier positions and itself are visible
  for (size_t i = 0; i < dec.size(); i++) {
    const DecoderLayer& l = dec[i];
    const std::string p = fmt::format("dec.{}", i);
    x = residual(*this, x, l.ln1, ctx, p + ".sa",
                 [&](const Var& h) { return l.self_attn.forward(h, h, self_mask, ctx, &st.self_cache[i], true); });
    x = residual(*this, x, l.ln2, ctx, p + ".ca", [&](const Var& h) {  // a group's rows: its source's queries
      const Var q = st.group == 1 ? h : reshape(h, {B / st.group, st.group, cfg.d_model}, p + ".ca.group");
      const Var o = l.cross_attn.forward(q, st.memory, st.cross_mask, ctx, &st.cross_cache[i], false);
      return st.group == 1 ? o : reshape(o, {B, 1, cfg.d_model}, p + ".ca.rows");
    });
    x = residual(*this, x, l.ln3, ctx, p + ".ffn", [&](const Var& h) { return l.ff(h, ctx); });
  }
  if (!cfg.post_ln) x = dec_ln(x, "dec.ln");
  st.step += 1;
  return logits(x)->value;  // (B,V)
}

static Tensor gather_rows(const Tensor& t, const std::vector<int>& rows) {  // along dim 0
  if (!t.defined()) return t;
  Shape s = t.shape();
  const int64_t per = t.numel() / s[0];
  s[0] = int64_t(rows.size());
  Tensor out = Tensor::empty(s);
  for (size_t i = 0; i < rows.size(); i++)
    std::copy(t.data() + rows[i] * per, t.data() + (rows[i] + 1) * per, out.data() + int64_t(i) * per);
  return out;
}

// How many consecutive rows share each entry of the source side: g, the length of the first run
// of one sentence, when every block of g rows holds one sentence (a beam search's rows; a longer
// run is then several entries holding the same), else 1.
static int source_group(const std::vector<int>& source) {
  const size_t R = source.size();
  size_t g = 1;
  while (g < R && source[g] == source[0]) g++;
  if (R == 0 || R % g != 0) return 1;
  for (size_t i = 0; i < R; i++)
    if (source[i] != source[i - i % g]) return 1;
  return int(g);
}

void Transformer::reorder(DecodeState& st, const std::vector<int>& rows) const {
  for (int r : rows)
    if (r < 0 || size_t(r) >= st.source.size())
      throw std::logic_error(fmt::format("reorder: row {} of {}", r, st.source.size()));
  for (auto& c : st.self_cache) c.reorder(rows);  // indices only
  // The source side moves only when its entries come to hold other sentences: a beam search's
  // reordering among one sentence's rows leaves it (every row of a sentence holds the same).
  std::vector<int> source(rows.size());
  for (size_t i = 0; i < rows.size(); i++) source[i] = st.source[size_t(rows[i])];
  const int g = source_group(source);
  std::vector<int> from;  // entry u of the new source side is entry from[u] of the old
  for (size_t u = 0; u * size_t(g) < rows.size(); u++) from.push_back(rows[u * size_t(g)] / st.group);
  bool same = g == st.group && from.size() * size_t(g) == st.source.size();
  for (size_t u = 0; same && u < from.size(); u++) same = from[u] == int(u);
  st.source = std::move(source);
  if (same) return;
  const int64_t S = st.cross_mask.dim(2);
  Tensor mask = Tensor::empty({int64_t(from.size()), g, S});  // each entry's mask, one row per group row
  for (size_t u = 0; u < from.size(); u++)
    for (int i = 0; i < g; i++)
      std::copy_n(st.cross_mask.data() + int64_t(from[u]) * st.group * S, S, mask.data() + (int64_t(u) * g + i) * S);
  st.cross_mask = mask;
  st.group = g;
  st.memory = constant(gather_rows(st.memory->value, from), "memory");
  for (auto& c : st.cross_cache) c.k = gather_rows(c.k, from), c.v = gather_rows(c.v, from);
}

std::vector<std::pair<std::string, const MultiHeadAttention*>> Transformer::sites() const {
  std::vector<std::pair<std::string, const MultiHeadAttention*>> s;
  for (auto& l : enc) s.push_back({l.self_attn.name, &l.self_attn});
  for (auto& l : dec) {
    s.push_back({l.self_attn.name, &l.self_attn});
    s.push_back({l.cross_attn.name, &l.cross_attn});
  }
  return s;
}

}  // namespace attn
