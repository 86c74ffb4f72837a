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

  Var q = split_heads(wq(x, n + ".q_proj"), heads, n + ".q");  // (B,H,Tq,D)

  // Keys and values: from kv, or (incremental decoding) from the cache.
  auto project_k = [&](const Var& src) {
    return variant.shared_qk ? split_heads(wq(src, n + ".k_proj"), heads, n + ".k")  // variant: qq, W_k = W_q
                             : split_heads(wk(src, n + ".k_proj"), heads, n + ".k");
  };
  auto project_v = [&](const Var& src) {
    return variant.value_proj ? split_heads(wv(src, n + ".v_proj"), heads, n + ".v")
                              : split_heads(src, heads, n + ".v");  // variant: noV, V = X
  };
  if (cache && is_self) {  // incremental decoding: this position's key and value join the cache
    if (x->value.dim(1) != 1)
      throw std::logic_error(fmt::format("{}: a cached self-attention step takes one position per row, got {}", n,
                                         x->value.dim(1)));
    Var k_new = variant.shared_qk ? q : project_k(x);  // for qq the cache holds Q
    if (variant.normk) k_new = l2_normalize(k_new, n + ".k_unit");  // variant: normk, each key once
    cache->append(k_new->value, project_v(x)->value);
    Tensor probs;
    Tensor o = cache->attend(q->value, mask, inv_sqrt_d, variant.noself, ctx.attention_probs ? &probs : nullptr);
    if (ctx.attention_probs) (*ctx.attention_probs)[name] = probs;
    Var merged = merge_heads(constant(o, n + ".ctx"), n + ".merged");  // (B,1,C)
    return variant.out_proj ? wo(merged, n + ".out") : merged;  // variant: noO
  }
  Var k, v;
  if (is_self && cache == nullptr && variant.shared_qk) {
    k = q;  // variant: qq self-attention — the very same Q is used as keys, so backward adds both paths
  } else if (cache) {  // cross-attention
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

  if (variant.normk) k = l2_normalize(k, n + ".k_unit");  // variant: normk, keys of unit length

  // Scores S = Q Kᵀ/√D (B,H,Tq,Tk). For qq self-attention without normk, S = Q Qᵀ/√D is
  // symmetric: one ssyrk (gram) instead of a general product.
  Var s;
  if (k == q && variant.use_gram) s = gram(q, inv_sqrt_d, n + ".scores");
  else s = matmul(q, k, false, true, inv_sqrt_d, n + ".scores");

  Tensor noself_mask;
  if (variant.noself && is_self) {  // variant: noself, a token attends to itself only when nothing else is visible
    noself_mask = mask.clone();
    apply_noself(noself_mask);
  }
  Var p = softmax(s, noself_mask.defined() ? noself_mask : mask, 1.f, n + ".probs");  // mask: padding, causal, noself
  if (ctx.attention_probs) (*ctx.attention_probs)[name] = p->value;  // observed: maps, entropy, diagonal mass
  if (ctx.train) p = dropout(p, dropout_p, *ctx.rng, n + ".probs_drop");
  Var o = merge_heads(matmul(p, v, false, false, 1.f, n + ".ctx"), n + ".merged");  // (B,Tq,C)
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
