// nn/attention.cpp — the attention variants, each a visible line in forward().
#include <attnlab/nn/attention.h>

#include <attnlab/core/kernels.h>
#include <attnlab/core/usage_error.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace attn {

// The components after "qk"/"qq" in a spec ("qq+noself+noV"), in the order str() writes them:
// the field each sets and the value it sets it to (the default is the other value).
struct VariantComponent {
  const char* name;
  bool AttnVariant::*field;
  bool value;
};
static constexpr VariantComponent kComponents[] = {
    {"noself", &AttnVariant::noself, true},     {"normk", &AttnVariant::normk, true},
    {"noV", &AttnVariant::value_proj, false},   {"noO", &AttnVariant::out_proj, false},
    {"nogram", &AttnVariant::use_gram, false},
};

AttnVariant AttnVariant::parse(const std::string& spec) {
  AttnVariant v;
  std::stringstream ss(spec);
  std::string part;
  bool first = true;
  while (std::getline(ss, part, '+')) {
    bool known = false;
    if (first && (part == "qk" || part == "qq")) v.shared_qk = part == "qq", known = true;
    for (auto& c : kComponents)
      if (!first && part == c.name) v.*c.field = c.value, known = true;
    if (!known)
      throw UsageError("unknown attention variant '" + spec +
                       "': expected qk or qq, optionally followed by +noself, +normk, +noV, +noO");
    first = false;
  }
  if (first) throw UsageError("empty attention variant: expected qk or qq");
  return v;
}

std::string AttnVariant::str() const {
  std::string s = shared_qk ? "qq" : "qk";
  for (auto& c : kComponents)
    if (this->*c.field == c.value) s += std::string("+") + c.name;
  return s;
}

MultiHeadAttention::MultiHeadAttention(ParamStore& ps, const std::string& name_, int d_model_, int heads_,
                                       AttnVariant v, float dropout, Rng& rng)
    : name(name_), d_model(d_model_), heads(heads_), variant(v), dropout_p(dropout) {
  if (heads <= 0 || d_model <= 0 || d_model % heads != 0)
    throw std::invalid_argument(fmt::format("{}: d_model {} must be a positive multiple of heads {}", name, d_model, heads));
  wq = Linear(ps, name + ".wq", d_model, d_model, rng);
  if (!v.shared_qk) wk = Linear(ps, name + ".wk", d_model, d_model, rng);  // variant: qq has no W_k
  if (v.value_proj) wv = Linear(ps, name + ".wv", d_model, d_model, rng);  // variant: noV
  if (v.out_proj) wo = Linear(ps, name + ".wo", d_model, d_model, rng);    // variant: noO
}

Var MultiHeadAttention::forward(const Var& x, const Var& kv, const Tensor& mask, const Context& ctx, KVCache* cache,
                                bool is_self) const {
  const int D = d_model / heads;
  const float inv_sqrt_d = 1.f / std::sqrt(float(D));
  const std::string& n = name;

  // Queries, keys and values are (B, T, C) with the heads side by side: head h is columns
  // h·D .. h·D+D-1. The per-head products read that layout directly (head_scores, head_context).
  Var q = wq(x, n + ".q");
  auto project_k = [&](const Var& src) {
    return variant.shared_qk ? wq(src, n + ".k")  // variant: qq, W_k = W_q
                             : wk(src, n + ".k");
  };
  auto project_v = [&](const Var& src) {
    return variant.value_proj ? wv(src, n + ".v") : src;  // variant: noV, V = X
  };
  // variant: normk, each head's key of unit length: l2_normalize over D of the (B, T, H, D) view
  auto unit_keys = [&](const Var& k) {
    const Shape s = k->value.shape();
    return reshape(l2_normalize(reshape(k, {s[0], s[1], heads, D}, n + ".k_heads"), n + ".k_unit"), s, n + ".k_normed");
  };

  if (cache && is_self) {  // incremental decoding: this position's key and value join the cache
    if (x->value.dim(1) != 1)
      throw std::logic_error(fmt::format("{}: a cached self-attention step takes one position per row, got {}", n,
                                         x->value.dim(1)));
    // One position: the cache keeps heads split, (rows, H, 1, D) is (rows, 1, H·D) read as is.
    const Shape one = {x->value.dim(0), heads, 1, D};
    Var k_new = variant.shared_qk ? q : project_k(x);  // for qq the cache holds Q
    if (variant.normk) k_new = unit_keys(k_new);        // variant: normk, each key once
    cache->append(k_new->value.reshape(one), project_v(x)->value.reshape(one));
    Tensor probs;
    Tensor o = cache->attend(q->value.reshape(one), mask, inv_sqrt_d, variant.noself,
                             ctx.attention_probs ? &probs : nullptr);
    if (ctx.attention_probs) (*ctx.attention_probs)[name] = probs;
    Var merged = constant(o.reshape({x->value.dim(0), 1, d_model}), n + ".ctx");  // (B,1,C)
    return variant.out_proj ? wo(merged, n + ".out") : merged;  // variant: noO
  }
  Var k, v;
  if (is_self && cache == nullptr && variant.shared_qk) {
    k = q;  // variant: qq self-attention — the very same Q is used as keys, so backward adds both paths
  } else if (cache) {  // cross-attention: the memory's keys and values, projected once per decode
    if (!cache->filled) {
      cache->k = project_k(kv)->value;
      cache->v = project_v(kv)->value;
      cache->filled = true;
    }
    k = constant(cache->k, n + ".k_cache");
    v = constant(cache->v, n + ".v_cache");
  } else {
    k = project_k(kv);
  }
  if (!v) v = project_v(kv);

  if (variant.normk) k = unit_keys(k);  // variant: normk, keys of unit length

  // Scores S_h = Q_h K_hᵀ/√D (B,H,Tq,Tk). For qq self-attention without normk, S_h = Q_h Q_hᵀ/√D
  // is symmetric: one ssyrk (gram) instead of a general product.
  Var s;
  if (k == q && variant.use_gram) s = head_gram(q, heads, inv_sqrt_d, n + ".scores");
  else s = head_scores(q, k, heads, inv_sqrt_d, n + ".scores");

  Tensor noself_mask;
  if (variant.noself && is_self) {  // variant: noself, a token attends to itself only when nothing else is visible
    noself_mask = mask.clone();
    apply_noself(noself_mask);
  }
  Var p = softmax(s, noself_mask.defined() ? noself_mask : mask, 1.f, n + ".probs");  // mask: padding, causal, noself
  if (ctx.attention_probs) (*ctx.attention_probs)[name] = p->value;  // observed: maps, entropy, diagonal mass
  if (ctx.train) p = dropout(p, dropout_p, *ctx.rng, n + ".probs_drop");
  Var o = head_context(p, v, n + ".ctx");  // (B,Tq,C): O_h = P_h V_h in head h's columns
  return variant.out_proj ? wo(o, n + ".out") : o;  // variant: noO
}

double wqk_asymmetry(const MultiHeadAttention& m) {
  const Tensor& wq = m.wq.weight->value;
  const Tensor& wk = m.variant.shared_qk ? wq : m.wk.weight->value;
  const int C = int(wq.dim(0));
  Tensor a({C, C});
  matmul_forward(a.data(), wq.data(), wk.data(), C, C, C, false, true);
  double diff = 0, norm = 0;
  for (int i = 0; i < C; i++)
    for (int j = 0; j < C; j++) {
      const double x = a.at({i, j}), y = a.at({j, i});
      diff += (x - y) * (x - y);
      norm += x * x;
    }
  return norm > 0 ? std::sqrt(diff / norm) : 0;
}

void apply_noself(Tensor& mask, int q_offset) {
  const int64_t B = mask.dim(0), Tq = mask.dim(1), Tk = mask.dim(2);
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < Tq; i++) {
      const int64_t self = i + q_offset;
      if (self >= Tk) continue;
      float* row = mask.data() + (b * Tq + i) * Tk;
      bool other = false;
      for (int64_t j = 0; j < Tk; j++)
        if (j != self && row[j] == 0.f) other = true;
      if (other) row[self] = ninf;
    }
}

}  // namespace attn
