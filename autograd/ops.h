// autograd/ops.h — every differentiable op of attnlab, one declaration each.
//
// The forward wrapper of each op calls a core/ kernel and records a tape entry; its backward
// sits right below it in the ops_*.cpp file named in the comment. Adding an op means: its
// section in an ops_*.cpp file, one declaration here, its name in kOps (autograd/registry.h), and one line in the
// gradcheck table (autograd/gradcheck.cpp). A test fails when an op in kOps has no entry.
//
//   Var s = matmul(q, k, false, true, 1 / sqrtf(D), "scores");   // S = Q Kᵀ/√D
//   Var p = softmax(s, mask, 1.f, "probs");
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <attnlab/autograd/registry.h>
#include <attnlab/autograd/tape.h>
#include <attnlab/core/rng.h>

namespace attn {


// ---- ops_matmul.cpp --------------------------------------------------------------------
// alpha * op(a) @ op(b). Rank 2, or rank 3/4 with equal leading (batch) dims.
Var matmul(const Var& a, const Var& b, bool trans_a, bool trans_b, float alpha = 1.f, const std::string& name = "");
// x (..., in) @ w (in, out) + bias (out); bias may be null.
Var linear(const Var& x, const Var& w, const Var& bias, const std::string& name = "");
// alpha * q qᵀ over the last two axes, through ssyrk: the symmetric score product of QQᵀ.
Var gram(const Var& q, float alpha, const std::string& name = "");
// Attention's per-head products on heads side by side, (B, T, H·D) as the projections write them,
// without splitting heads into (B, H, T, D) first:
//   head_scores  q (B,Tq,H·D), k (B,Tk,H·D)    -> S (B,H,Tq,Tk) = alpha Q_h K_hᵀ for each head h
//   head_gram    q (B,T,H·D)                   -> S (B,H,T,T)   = alpha Q_h Q_hᵀ (ssyrk, as gram)
//   head_context p (B,H,Tq,Tk), v (B,Tk,H·D)  -> O (B,Tq,H·D)  = P_h V_h, head h in its own columns
Var head_scores(const Var& q, const Var& k, int heads, float alpha, const std::string& name = "");
Var head_gram(const Var& q, int heads, float alpha, const std::string& name = "");
Var head_context(const Var& p, const Var& v, const std::string& name = "");

// ---- ops_elementwise.cpp ---------------------------------------------------------------
Var add(const Var& a, const Var& b, const std::string& name = "");     // same shapes
Var mul(const Var& a, const Var& b, const std::string& name = "");     // same shapes
Var scale(const Var& a, float s, const std::string& name = "");
Var relu(const Var& x, const std::string& name = "");
Var gelu(const Var& x, const std::string& name = "");
Var dropout(const Var& x, float p, Rng& rng, const std::string& name = "");  // identity when p == 0
// add(x, dropout(y, p, rng)) as one op — a residual branch's dropout and the add — one pass each
// way, without keeping the dropout's output: the same values, gradients and draws from rng as the
// two ops. add(x, y) when p == 0.
Var dropout_add(const Var& x, const Var& y, float p, Rng& rng, const std::string& name = "");
// dropout(relu(x), p, rng) as one op, one pass each way, without keeping relu's output: the same
// values, gradients and draws from rng as the two ops. relu(x) when p == 0.
Var relu_dropout(const Var& x, float p, Rng& rng, const std::string& name = "");
// x (R, C) + rows (C) broadcast, or x (B, T, C) + rows (T, C) broadcast over B (positions).
Var add_rows(const Var& x, const Var& rows, const std::string& name = "");

// ---- ops_softmax.cpp -------------------------------------------------------------------
// softmax(scale * x + mask) over the last axis. x rank 2 (R, C) or rank 4 (B, H, Tq, Tk) with an
// additive mask (B, Tq, Tk) broadcast over heads; mask may be undefined.
Var softmax(const Var& x, const Tensor& mask, float scale = 1.f, const std::string& name = "");
Var log_softmax(const Var& x, const std::string& name = "");

// ---- ops_norm.cpp ----------------------------------------------------------------------
Var layernorm(const Var& x, const Var& weight, const Var& bias, const std::string& name = "");
Var l2_normalize(const Var& x, const std::string& name = "");  // x / |x| over the last axis

// ---- ops_loss.cpp ----------------------------------------------------------------------
// Mean label-smoothed cross-entropy of logits (..., V) against targets (one per row),
// ignoring rows whose target is ignore_id. Returns a scalar.
// In a training backward (grad_take, autograd/tape.h) the probabilities' buffer becomes dL/dlogits.
Var cross_entropy(const Var& logits, const std::vector<int32_t>& targets, float smoothing, int ignore_id,
                  const std::string& name = "");
// cross_entropy(matmul(h, w, false, true), targets, smoothing, ignore_id) as one op: the tied
// output layer's logits h wᵀ (h (rows, C), w (V, C)) live only inside it. It goes through them a
// chunk of rows at a time (chunk_rows; 0: 128 rows at C <= 64, else all) and, when recorded, makes the
// gradients with respect to h and w there and then, for dL/dloss = 1, while each chunk is in
// cache; its backward scales them by the actual dL/dloss. So no (rows x V) buffer outlives the
// forward. The tape shows one node where the two ops would show a logits node and a loss node.
Var logits_cross_entropy(const Var& h, const Var& w, const std::vector<int32_t>& targets, float smoothing,
                         int ignore_id, const std::string& name = "", int chunk_rows = 0);
int64_t logits_chunk_rows(int64_t rows, int64_t C);  // its chunk at chunk_rows = 0
Var sum(const Var& x, const std::string& name = "");  // scalar

// ---- ops_shape.cpp ---------------------------------------------------------------------
// table (V, C) gathered at ids; output shape = ids_shape + (C).
Var embedding(const Var& table, const std::vector<int32_t>& ids, const Shape& ids_shape,
              const std::string& name = "");
Var reshape(const Var& x, const Shape& shape, const std::string& name = "");
Var transpose12(const Var& x, const std::string& name = "");  // (A,B,C,D) -> (A,C,B,D)

// Head helpers built from the two ops above.
Var split_heads(const Var& x, int heads, const std::string& name = "");  // (B,T,H*D) -> (B,H,T,D)
Var merge_heads(const Var& x, const std::string& name = "");             // (B,H,T,D) -> (B,T,H*D)

}  // namespace attn
