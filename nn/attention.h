// nn/attention.h — multi-head attention whose score form is a per-site choice: QKᵀ or QQᵀ.
//
// The whole difference between the variants is in MultiHeadAttention::forward, a few lines
// each (see the "variant:" comments there):
//   qk      S = Q Kᵀ/√D, K = X W_k                 (Vaswani et al. 2017)
//   qq      K = Q (W_k = W_q): S = Q Qᵀ/√D, symmetric, computed by ssyrk (gram)
//   noself  a position may not attend to itself unless nothing else is visible
//   normk   keys normalised to unit length (Reformer's shared-QK attention)
//   noV     V = X (no value projection);  noO  no output projection
//
//   AttnVariant v = AttnVariant::parse("qq+noself");
//   MultiHeadAttention mha(ps, "enc.0.self_attn", 256, 4, v, 0.1f, rng);
//   Var y = mha.forward(x, x, mask, ctx);       // self-attention
#pragma once
#include <string>

#include <attnlab/nn/kv_cache.h>
#include <attnlab/nn/layers.h>

namespace attn {

struct AttnVariant {
  bool shared_qk = false;   // qq: W_k = W_q
  bool noself = false;
  bool normk = false;
  bool value_proj = true;   // false: noV
  bool out_proj = true;     // false: noO
  bool use_gram = true;     // qq self-attention through ssyrk (tested equal to the matmul path)

  // "qk", "qq", "qq+noself", "qq+normk", "qk+noV+noO", ... (components joined by '+')
  static AttnVariant parse(const std::string& spec);
  std::string str() const;
  bool operator==(const AttnVariant&) const = default;
};


struct MultiHeadAttention {
  std::string name;
  int d_model = 0, heads = 0;
  AttnVariant variant;
  float dropout_p = 0.f;
  Linear wq, wk, wv, wo;  // wk absent for qq, wv for noV, wo for noO

  MultiHeadAttention() = default;
  MultiHeadAttention(ParamStore& ps, const std::string& name, int d_model, int heads, AttnVariant v, float dropout,
                     Rng& rng);

  // x (B,Tq,C) attends over kv (B,Tk,C); kv == x (the same Var) for self-attention.
  // mask (B,Tq,Tk) additive. With a cache (incremental decoding, no gradients), self-attention
  // takes one new position per row (Tq = 1), appends its key and value to the cache (for qq the
  // key is Q itself) and attends over all of them; cross-attention computes the memory's keys
  // and values once.
  Var forward(const Var& x, const Var& kv, const Tensor& mask, const Context& ctx, KVCache* cache = nullptr,
              bool is_self = true) const;
};

// ‖A − Aᵀ‖_F / ‖A‖_F for the site's bilinear form A = W_q W_kᵀ (C,C): 0 when symmetric (as
// QQᵀ forces), about √2 for a random matrix.
double wqk_asymmetry(const MultiHeadAttention& m);

// Applies noself to a self-attention mask (B,T,T) in place: masks the diagonal of each row
// that has any other visible position.
void apply_noself(Tensor& mask, int q_offset = 0);

}  // namespace attn
