// models/transformer.cpp — the encoder–decoder forward pass, masks, presets, parameter matching.
#include "models/transformer.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace attn {

static const float kNegInf = -std::numeric_limits<float>::infinity();

// ---- config ----------------------------------------------------------------------------

// The attention-variant presets: one row each, read by apply_preset, the preset list, the
// --variant help text and compare's grids. Each site's spec is an AttnVariant (nn/attention.h).
const std::vector<VariantPreset>& variant_presets() {
  static const std::vector<VariantPreset> table = {
      // name          enc self         dec self         cross         what changes
      {"qk",           "qk",            "qk",            "qk",         "baseline: separate W_q, W_k, W_v, W_o"},
      {"qq",           "qq",            "qq",            "qk",         "W_k = W_q in both self-attentions (cross-attention keeps W_k)"},
      {"qq-noself",    "qq+noself",     "qq+noself",     "qk",         "qq, and a token attends to itself only when nothing else is visible"},
      {"qq-normk",     "qq+normk",      "qq+normk",      "qk",         "qq with unit-length keys"},
      {"qq-enc",       "qq",            "qk",            "qk",         "qq in encoder self-attention only"},
      {"qq-dec",       "qk",            "qq",            "qk",         "qq in decoder self-attention only"},
      {"qq-all",       "qq",            "qq",            "qq",         "qq at every site, cross-attention too"},
      {"noV",          "qk+noV",        "qk+noV",        "qk+noV",     "no value projection (V = X) at every site"},
      {"noO",          "qk+noO",        "qk+noO",        "qk+noO",     "no output projection at every site"},
      {"qq-noV-noO",   "qq+noV+noO",    "qq+noV+noO",    "qk+noV+noO", "qq, with neither value nor output projection at any site"},
  };
  return table;
}

std::vector<std::string> ModelConfig::preset_names() {
  std::vector<std::string> names;
  for (auto& p : variant_presets()) names.push_back(p.name);
  return names;
}

void ModelConfig::apply_preset(const std::string& name) {
  for (auto& p : variant_presets())
    if (p.name == name) {
      enc_self = AttnVariant::parse(p.enc_self);
      dec_self = AttnVariant::parse(p.dec_self);
      cross = AttnVariant::parse(p.cross);
      preset = name;
      return;
    }
  std::string all;
  for (auto& p : preset_names()) all += (all.empty() ? "" : ", ") + p;
  throw std::invalid_argument("--variant: unknown variant '" + name + "' (expected one of: " + all + ")");
}

void ModelConfig::validate() const {
  auto positive = [](const char* flag, int v) {
    if (v <= 0) throw std::invalid_argument(fmt::format("--{}: must be a positive integer, got {}", flag, v));
  };
  positive("vocab", vocab);
  positive("d-model", d_model);
  positive("heads", heads);
  positive("d-ff", d_ff);
  positive("max-len", max_len);
  if (enc_layers < 0 || dec_layers <= 0)
    throw std::invalid_argument(fmt::format("--enc-layers/--dec-layers: need enc >= 0 and dec >= 1, got {} and {}",
                                            enc_layers, dec_layers));
  if (d_model % heads != 0)
    throw std::invalid_argument(fmt::format("--d-model {} is not divisible by --heads {}", d_model, heads));
  if (!(dropout >= 0.f && dropout < 1.f)) throw std::invalid_argument(fmt::format("--dropout: must be in [0, 1), got {}", dropout));
  if (!(label_smoothing >= 0.f && label_smoothing < 1.f))
    throw std::invalid_argument(fmt::format("--label-smoothing: must be in [0, 1), got {}", label_smoothing));
}

// The fields config.json holds under "model", each under its own name. Besides these: the
// label smoothing (optional on reading: runs from before it was configurable used 0.1) and the
// three sites' variants, stored as their specs ("qq+noself").
#define ATTNLAB_MODEL_CONFIG_FIELDS(X) \
  X(vocab) X(d_model) X(heads) X(enc_layers) X(dec_layers) X(d_ff) X(dropout) X(gelu) X(post_ln) X(max_len) \
  X(pad_id) X(bos_id) X(eos_id) X(unk_id) X(preset)

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json j;
#define X(field) j[#field] = field;
  ATTNLAB_MODEL_CONFIG_FIELDS(X)
#undef X
  j["label_smoothing"] = label_smoothing;
  j["enc_self"] = enc_self.str();
  j["dec_self"] = dec_self.str();
  j["cross"] = cross.str();
  return j;
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  ModelConfig c;
#define X(field) j.at(#field).get_to(c.field);
  ATTNLAB_MODEL_CONFIG_FIELDS(X)
#undef X
  c.label_smoothing = j.value("label_smoothing", 0.1f);
  c.enc_self = AttnVariant::parse(j.at("enc_self"));
  c.dec_self = AttnVariant::parse(j.at("dec_self"));
  c.cross = AttnVariant::parse(j.at("cross"));
  c.validate();
  return c;
}

// ---- construction ----------------------------------------------------------------------

Transformer::Transformer(const ModelConfig& c, uint64_t seed) : cfg(c) {
  cfg.validate();
  Rng rng(seed);
  const int C = cfg.d_model;
  emb = params.add("emb.weight", {cfg.vocab, C}, Init::Normal, rng, 1.f / std::sqrt(float(C)));
  for (int i = 0; i < cfg.enc_layers; i++) {
    const std::string p = fmt::format("enc.{}", i);
    EncoderLayer l;
    l.ln1 = LayerNorm(params, p + ".ln1", C, rng);
    l.self_attn = MultiHeadAttention(params, p + ".self_attn", C, cfg.heads, cfg.enc_self, cfg.dropout, rng);
    l.ln2 = LayerNorm(params, p + ".ln2", C, rng);
    l.ff = FeedForward(params, p + ".ff", C, cfg.d_ff, cfg.gelu, cfg.dropout, rng);
    enc.push_back(std::move(l));
  }
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
  Tensor m({B, Tq, S});
  for (int b = 0; b < B; b++)
    for (int i = 0; i < Tq; i++)
      for (int j = 0; j < S; j++) m.at({b, i, j}) = src[size_t(b) * S + j] == cfg.pad_id ? kNegInf : 0.f;
  return m;
}

Tensor Transformer::causal_mask(int B, int T) const {
  Tensor m({B, T, T});
  for (int b = 0; b < B; b++)
    for (int i = 0; i < T; i++)
      for (int j = i + 1; j < T; j++) m.at({b, i, j}) = kNegInf;
  return m;
}

// ---- forward ---------------------------------------------------------------------------

// x * √C + PE[offset : offset+T]   (B,T,C)
static Var embed(const Transformer& m, const std::vector<int32_t>& ids, int B, int T, int offset, const Context& ctx,
                 const std::string& name) {
  const int C = m.cfg.d_model;
  if (offset + T > m.cfg.max_len)
    throw std::invalid_argument(fmt::format("sequence of {} tokens exceeds max_len {}", offset + T, m.cfg.max_len));
  Var x = scale(embedding(m.emb, ids, {B, T}, name + ".tok"), std::sqrt(float(C)), name + ".scaled");
  Tensor pe = sinusoidal_positions(offset + T, C);
  Tensor rows({T, C});
  std::copy(pe.data() + int64_t(offset) * C, pe.data() + int64_t(offset + T) * C, rows.data());
  x = add_rows(x, constant(rows, "positions"), name + ".pos");
  if (ctx.train) x = dropout(x, m.cfg.dropout, *ctx.rng, name + ".drop");
  return x;
}

// One residual sub-layer: pre-LN  x + drop(f(LN(x)))  or post-LN  LN(x + drop(f(x))).
template <typename F>
static Var residual(const Transformer& m, const Var& x, const LayerNorm& ln, const Context& ctx,
                    const std::string& name, F f) {
  if (m.cfg.post_ln) {
    Var y = f(x);
    if (ctx.train) y = dropout(y, m.cfg.dropout, *ctx.rng, name + ".drop");
    return ln(add(x, y, name + ".res"), name + ".ln");
  }
  Var y = f(ln(x, name + ".ln"));
  if (ctx.train) y = dropout(y, m.cfg.dropout, *ctx.rng, name + ".drop");
  return add(x, y, name + ".res");
}

Var Transformer::encode(const std::vector<int32_t>& src, int B, int S, const Context& ctx) const {
  Var x = embed(*this, src, B, S, 0, ctx, "enc.emb");
  Tensor mask = src_mask(src, B, S, S);
  for (size_t i = 0; i < enc.size(); i++) {
    const EncoderLayer& l = enc[i];
    const std::string p = fmt::format("enc.{}", i);
    x = residual(*this, x, l.ln1, ctx, p + ".sa", [&](const Var& h) { return l.self_attn.forward(h, h, mask, ctx); });
    x = residual(*this, x, l.ln2, ctx, p + ".ffn", [&](const Var& h) { return l.ff(h, ctx); });
  }
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

Var Transformer::logits(const Var& hidden) const {
  const int64_t C = hidden->value.dim(-1);
  Var h2 = reshape(hidden, {hidden->value.numel() / C, C}, "dec.flat");
  return matmul(h2, emb, false, true, 1.f, "logits");  // tied: h Eᵀ
}

Var Transformer::loss(const Batch& b, const Context& ctx) const {
  Var memory = encode(b.src, b.B, b.S, ctx);
  Var h = decode(b.tgt_in, b.B, b.T, memory, b.src, b.S, ctx);
  return cross_entropy(logits(h), b.tgt_out, ctx.train ? cfg.label_smoothing : 0.f, cfg.pad_id, "loss");
}

// ---- incremental decoding --------------------------------------------------------------

DecodeState Transformer::start(const std::vector<int32_t>& src, int B, int S) const {
  DecodeState st;
  Context ctx;
  st.memory = encode(src, B, S, ctx);
  st.cross_mask = src_mask(src, B, 1, S);
  st.self_cache.resize(dec.size());
  st.cross_cache.resize(dec.size());
  return st;
}

Tensor Transformer::step(DecodeState& st, const std::vector<int32_t>& tokens) const {
  const int B = int(tokens.size());
  Context ctx;
  Var x = embed(*this, tokens, B, 1, st.step, ctx, "dec.emb");
  const int Tk = st.step + 1;
  Tensor self_mask({B, 1, Tk});  // all earlier positions and itself are visible
  for (size_t i = 0; i < dec.size(); i++) {
    const DecoderLayer& l = dec[i];
    const std::string p = fmt::format("dec.{}", i);
    x = residual(*this, x, l.ln1, ctx, p + ".sa",
                 [&](const Var& h) { return l.self_attn.forward(h, h, self_mask, ctx, &st.self_cache[i], true); });
    x = residual(*this, x, l.ln2, ctx, p + ".ca", [&](const Var& h) {
      return l.cross_attn.forward(h, st.memory, st.cross_mask, ctx, &st.cross_cache[i], false);
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

void Transformer::reorder(DecodeState& st, const std::vector<int>& rows) const {
  bool same = int64_t(rows.size()) == st.memory->value.dim(0);  // every row kept, in place: nothing to do
  for (size_t i = 0; same && i < rows.size(); i++) same = rows[i] == int(i);
  if (same) return;
  st.memory = constant(gather_rows(st.memory->value, rows), "memory");
  st.cross_mask = gather_rows(st.cross_mask, rows);
  for (auto& c : st.self_cache) c.k = gather_rows(c.k, rows), c.v = gather_rows(c.v, rows);
  for (auto& c : st.cross_cache) c.k = gather_rows(c.k, rows), c.v = gather_rows(c.v, rows);
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

// ---- parameter counting and matching ---------------------------------------------------

int64_t count_params(const ModelConfig& cfg) {
  const int64_t C = cfg.d_model, F = cfg.d_ff;
  auto attn = [&](const AttnVariant& v) {
    int64_t n = C * C + C;                   // wq
    if (!v.shared_qk) n += C * C + C;        // wk
    if (v.value_proj) n += C * C + C;        // wv
    if (v.out_proj) n += C * C + C;          // wo
    return n;
  };
  const int64_t ln = 2 * C, ff = C * F + F + F * C + C;
  int64_t n = int64_t(cfg.vocab) * C;
  n += cfg.enc_layers * (2 * ln + attn(cfg.enc_self) + ff);
  n += cfg.dec_layers * (3 * ln + attn(cfg.dec_self) + attn(cfg.cross) + ff);
  if (!cfg.post_ln) n += (cfg.enc_layers > 0 ? ln : 0) + ln;
  return n;
}

std::string match_params(ModelConfig& cfg, int64_t target, const std::string& widen) {
  const int64_t before = count_params(cfg);
  const std::string was = widen == "d_model" ? fmt::format("d_model {}", cfg.d_model) : fmt::format("d_ff {}", cfg.d_ff);
  if (widen == "d_ff") {
    // count is linear in d_ff: slope = layers * (2C + 1)
    const int64_t slope = int64_t(cfg.enc_layers + cfg.dec_layers) * (2 * cfg.d_model + 1);
    cfg.d_ff += int(std::llround(double(target - before) / double(slope)));
    if (cfg.d_ff <= 0) cfg.d_ff = 1;
  } else if (widen == "d_model") {
    // The widest d_model (a multiple of heads) that stays at or under the target, then d_ff
    // closes the remaining gap (d_model moves the count in steps too coarse for 0.5%).
    for (int d = cfg.d_model; count_params(cfg) < target;) {
      ModelConfig c = cfg;
      c.d_model = d + cfg.heads;
      if (count_params(c) > target) break;
      cfg.d_model = d = c.d_model;
    }
    const int64_t slope = int64_t(cfg.enc_layers + cfg.dec_layers) * (2 * cfg.d_model + 1);
    cfg.d_ff += int(std::llround(double(target - count_params(cfg)) / double(slope)));
  } else {
    throw std::invalid_argument("--match-widen: expected d_ff or d_model, got '" + widen + "'");
  }
  const int64_t after = count_params(cfg);
  const double off = 100.0 * double(after - target) / double(target);
  const std::string now = widen == "d_model" ? fmt::format("d_model {}", cfg.d_model) : fmt::format("d_ff {}", cfg.d_ff);
  return fmt::format("{} -> {}: {} -> {} parameters ({:+.2f}% vs target {}){}", was, now, before, after, off, target,
                     std::fabs(off) <= 0.5 ? "" : " — could not get within 0.5%");
}

}  // namespace attn
