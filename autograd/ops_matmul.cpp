// autograd/ops_matmul.cpp — matrix products: matmul, linear, and the symmetric gram (QQᵀ).
#include <stdexcept>

#include <attnlab/autograd/ops.h>
#include <attnlab/core/kernels.h>

namespace attn {

// Leading (batch) size and the two matrix dims of a rank 2..4 tensor.
struct MatDims {
  int batch, rows, cols;
};
static MatDims mat_dims(const Tensor& t) {
  if (t.rank() < 2) throw std::invalid_argument("matmul: operand of shape " + shape_str(t.shape()) + " is not a matrix");
  int64_t batch = 1;
  for (int d = 0; d < t.rank() - 2; d++) batch *= t.dim(d);
  return {int(batch), int(t.dim(-2)), int(t.dim(-1))};
}

// ---- matmul ----------------------------------------------------------------------------

static void matmul_backward(TapeEntry& e, bool ta, bool tb, float alpha);  // below

Var matmul(const Var& a, const Var& b, bool trans_a, bool trans_b, float alpha, const std::string& name) {
  MatDims ad = mat_dims(a->value), bd = mat_dims(b->value);
  const int M = trans_a ? ad.cols : ad.rows, K = trans_a ? ad.rows : ad.cols;
  const int Kb = trans_b ? bd.cols : bd.rows, N = trans_b ? bd.rows : bd.cols;
  if (K != Kb || ad.batch != bd.batch || a->value.rank() != b->value.rank())
    throw std::invalid_argument(fmt::format("matmul '{}': shapes {} and {} do not fit (trans {} {})", name,
                                            shape_str(a->value.shape()), shape_str(b->value.shape()), trans_a,
                                            trans_b));
  Shape s = a->value.shape();
  s[s.size() - 2] = M;
  s[s.size() - 1] = N;
  Tensor out = Tensor::empty(s);  // beta = 0: BLAS overwrites it
  matmul_batched(out.data(), a->value.data(), b->value.data(), ad.batch, M, N, K, trans_a, trans_b, alpha);
  Recorded r = record("matmul", name, out, {a, b});
  if (r.entry) r.entry->backward = [=](TapeEntry& e) { matmul_backward(e, trans_a, trans_b, alpha); };
  return r.out;
}

static void matmul_backward(TapeEntry& e, bool ta, bool tb, float alpha) {
  // out = alpha * op(a) op(b),  G = dL/dout (M,N)
  //   d op(a) = alpha * G op(b)ᵀ      d op(b) = alpha * op(a)ᵀ G
  // For stored a: if ta, da = alpha * op(b) Gᵀ (K,M); else da = alpha * G op(b)ᵀ (M,K).
  // When a and b are the same variable (Q in Q Qᵀ) the second line adds to what the first wrote.
  const Var &a = e.inputs[0], &b = e.inputs[1];
  const Tensor& G = e.out->grad;
  MatDims ad = mat_dims(a->value), bd = mat_dims(b->value);
  const int M = ta ? ad.cols : ad.rows, K = ta ? ad.rows : ad.cols, N = tb ? bd.rows : bd.cols;
  const int batch = ad.batch;
  const float *g = G.data(), *av = a->value.data(), *bv = b->value.data();
  if (a->requires_grad) {
    const GradDst da = grad_dst(a);
    const float beta = da.beta();
    if (!ta) matmul_batched(da.data, g, bv, batch, M, K, N, false, !tb, alpha, beta);  // (M,N) op(b)ᵀ
    else matmul_batched(da.data, bv, g, batch, K, M, N, tb, true, alpha, beta);        // op(b) Gᵀ
  }
  if (b->requires_grad) {
    const GradDst db = grad_dst(b);
    const float beta = db.beta();
    if (!tb) matmul_batched(db.data, av, g, batch, K, N, M, !ta, false, alpha, beta);  // op(a)ᵀ G
    else matmul_batched(db.data, g, av, batch, N, K, M, true, ta, alpha, beta);        // Gᵀ op(a)
  }
}

// ---- linear ----------------------------------------------------------------------------

static void linear_backward(TapeEntry& e);  // below

Var linear(const Var& x, const Var& w, const Var& bias, const std::string& name) {
  if (w->value.rank() != 2 || x->value.rank() < 1 || x->value.dim(-1) != w->value.dim(0) ||
      (bias && (bias->value.rank() != 1 || bias->value.dim(0) != w->value.dim(1))))
    throw std::invalid_argument(fmt::format("linear '{}': input {} does not fit weight {}", name,
                                            shape_str(x->value.shape()), shape_str(w->value.shape())));
  const int I = int(w->value.dim(0)), O = int(w->value.dim(1));
  const int R = int(x->value.numel() / I);
  Shape s = x->value.shape();
  s.back() = O;
  Tensor out = Tensor::empty(s);  // linear_forward writes every element (the bias rows, or beta = 0)
  linear_forward(out.data(), x->value.data(), w->value.data(), bias ? bias->value.data() : nullptr, R, O, I);
  std::vector<Var> ins = {x, w};
  if (bias) ins.push_back(bias);
  Recorded r = record("linear", name, out, ins);
  if (r.entry) r.entry->backward = linear_backward;
  return r.out;
}

static void linear_backward(TapeEntry& e) {
  // out (R,O) = x (R,I) w (I,O) + bias
  //   dx += G wᵀ;  dw += xᵀ G;  dbias += sum_rows G
  const Var &x = e.inputs[0], &w = e.inputs[1];
  const Tensor& G = e.out->grad;
  const int I = int(w->value.dim(0)), O = int(w->value.dim(1));
  const int R = int(x->value.numel() / I);
  if (x->requires_grad) {
    const GradDst dx = grad_dst(x);
    matmul_forward(dx.data, G.data(), w->value.data(), R, I, O, false, true, 1.f, dx.beta());
  }
  if (w->requires_grad) {
    const GradDst dw = grad_dst(w);
    linear_weight_grad(dw.data, x->value.data(), G.data(), R, I, O, dw.beta());  // x read in order first on one thread
  }
  if (e.inputs.size() > 2 && e.inputs[2]->requires_grad) bias_backward(grad_dst(e.inputs[2]).zeroed_if_fresh(O), G.data(), R, O);
}

// ---- gram: S = alpha * Q Qᵀ --------------------------------------------------------------

static void gram_backward(TapeEntry& e, float alpha);  // below

Var gram(const Var& q, float alpha, const std::string& name) {
  MatDims d = mat_dims(q->value);
  Shape s = q->value.shape();
  s.back() = d.rows;
  Tensor out = Tensor::empty(s);  // ssyrk's triangle, mirrored: every element written
  gram_batched(out.data(), q->value.data(), d.batch, d.rows, d.cols, alpha);
  Recorded r = record("gram", name, out, {q});
  if (r.entry) r.entry->backward = [alpha](TapeEntry& e) { gram_backward(e, alpha); };
  return r.out;
}

static void gram_backward(TapeEntry& e, float alpha) {
  // S = alpha Q Qᵀ: Q appears twice, so dL/dQ = alpha (G + Gᵀ) Q — the symmetrised gradient.
  const Var& q = e.inputs[0];
  if (!q->requires_grad) return;
  const Tensor& G = e.out->grad;
  MatDims d = mat_dims(q->value);
  const GradDst dq = grad_dst(q);
  gram_backward_batched(dq.data, G.data(), q->value.data(), d.batch, d.rows, d.cols, alpha, dq.accumulate);
}

// ---- attention heads side by side ---------------------------------------------------------
// The projections write (B, T, H·D): each row holds every head's D columns next to each other.
// These three ops read and write that layout directly (BLAS takes a row stride), so heads are
// never split or merged by copying. Head h of sequence b is the (T, D) matrix of columns
// h·D .. h·D+D-1 of sequence b; the scores (B, H, Tq, Tk) stay one matrix per head.

struct HeadShape {
  int B, H, Tq, Tk, D;
};
static HeadLayout side_by_side(const HeadShape& s, int T) { return HeadLayout::side_by_side(s.H, T, s.D); }
static HeadLayout scores_layout(const HeadShape& s) { return HeadLayout::contiguous(s.Tq, s.Tk); }

static void check_heads(const Tensor& t, int heads, const std::string& what, const std::string& name) {
  if (t.rank() != 3 || heads <= 0 || t.dim(2) % heads != 0)
    throw std::invalid_argument(fmt::format("{} '{}': {} is not (batch, tokens, heads·head_dim) with {} heads", what,
                                            name, shape_str(t.shape()), heads));
}

static void head_scores_backward(TapeEntry& e, HeadShape s, float alpha);  // below

Var head_scores(const Var& q, const Var& k, int heads, float alpha, const std::string& name) {
  check_heads(q->value, heads, "head_scores", name);
  check_heads(k->value, heads, "head_scores", name);
  if (q->value.dim(0) != k->value.dim(0) || q->value.dim(2) != k->value.dim(2))
    throw std::invalid_argument(fmt::format("head_scores '{}': queries {} and keys {} do not fit", name,
                                            shape_str(q->value.shape()), shape_str(k->value.shape())));
  const HeadShape s{int(q->value.dim(0)), heads, int(q->value.dim(1)), int(k->value.dim(1)), int(q->value.dim(2)) / heads};
  Tensor out = Tensor::empty({s.B, s.H, s.Tq, s.Tk});  // beta = 0: BLAS overwrites it
  // S_h = alpha Q_h K_hᵀ
  matmul_heads(out.data(), scores_layout(s), q->value.data(), side_by_side(s, s.Tq), k->value.data(),
               side_by_side(s, s.Tk), s.B * s.H, s.Tq, s.Tk, s.D, false, true, alpha);
  Recorded r = record("head_scores", name, out, {q, k});
  if (r.entry) r.entry->backward = [s, alpha](TapeEntry& e) { head_scores_backward(e, s, alpha); };
  return r.out;
}

static void head_scores_backward(TapeEntry& e, HeadShape s, float alpha) {
  // S_h = alpha Q_h K_hᵀ, G_h = dL/dS_h:  dQ_h (+)= alpha G_h K_h,  dK_h (+)= alpha G_hᵀ Q_h.
  // When q and k are the same variable (QQᵀ without gram) the second adds to what the first wrote.
  const Var &q = e.inputs[0], &k = e.inputs[1];
  const float* g = e.out->grad.data();
  if (q->requires_grad) {
    const GradDst dq = grad_dst(q);
    matmul_heads(dq.data, side_by_side(s, s.Tq), g, scores_layout(s), k->value.data(), side_by_side(s, s.Tk), s.B * s.H,
                 s.Tq, s.D, s.Tk, false, false, alpha, dq.beta());
  }
  if (k->requires_grad) {
    const GradDst dk = grad_dst(k);
    matmul_heads(dk.data, side_by_side(s, s.Tk), g, scores_layout(s), q->value.data(), side_by_side(s, s.Tq), s.B * s.H,
                 s.Tk, s.D, s.Tq, true, false, alpha, dk.beta());
  }
}

static void head_gram_backward(TapeEntry& e, HeadShape s, float alpha);  // below

Var head_gram(const Var& q, int heads, float alpha, const std::string& name) {
  check_heads(q->value, heads, "head_gram", name);
  const int T = int(q->value.dim(1));
  const HeadShape s{int(q->value.dim(0)), heads, T, T, int(q->value.dim(2)) / heads};
  Tensor out = Tensor::empty({s.B, s.H, T, T});  // ssyrk's triangle, mirrored: every element written
  gram_heads(out.data(), scores_layout(s), q->value.data(), side_by_side(s, T), s.B * s.H, T, s.D, alpha);
  Recorded r = record("head_gram", name, out, {q});
  if (r.entry) r.entry->backward = [s, alpha](TapeEntry& e) { head_gram_backward(e, s, alpha); };
  return r.out;
}

static void head_gram_backward(TapeEntry& e, HeadShape s, float alpha) {
  // S_h = alpha Q_h Q_hᵀ: Q_h appears twice, so dL/dQ_h = alpha (G_h + G_hᵀ) Q_h.
  const Var& q = e.inputs[0];
  if (!q->requires_grad) return;
  const GradDst dq = grad_dst(q);
  gram_backward_heads(dq.data, side_by_side(s, s.Tq), e.out->grad.data(), scores_layout(s), q->value.data(),
                      side_by_side(s, s.Tq), s.B * s.H, s.Tq, s.D, alpha, dq.accumulate);
}

static void head_context_backward(TapeEntry& e, HeadShape s);  // below

Var head_context(const Var& p, const Var& v, const std::string& name) {
  const Tensor &pv = p->value, &vv = v->value;
  if (pv.rank() != 4 || vv.rank() != 3 || pv.dim(0) != vv.dim(0) || pv.dim(3) != vv.dim(1) || pv.dim(1) <= 0 ||
      vv.dim(2) % pv.dim(1) != 0)
    throw std::invalid_argument(fmt::format("head_context '{}': weights {} (batch, heads, queries, keys) do not fit "
                                            "values {} (batch, keys, heads·head_dim)",
                                            name, shape_str(pv.shape()), shape_str(vv.shape())));
  const HeadShape s{int(pv.dim(0)), int(pv.dim(1)), int(pv.dim(2)), int(pv.dim(3)), int(vv.dim(2) / pv.dim(1))};
  Tensor out = Tensor::empty({s.B, s.Tq, s.H * s.D});  // every head writes its D columns of every row
  // O_h = P_h V_h, each head into its own columns
  matmul_heads(out.data(), side_by_side(s, s.Tq), pv.data(), scores_layout(s), vv.data(), side_by_side(s, s.Tk),
               s.B * s.H, s.Tq, s.D, s.Tk, false, false);
  Recorded r = record("head_context", name, out, {p, v});
  if (r.entry) r.entry->backward = [s](TapeEntry& e) { head_context_backward(e, s); };
  return r.out;
}

static void head_context_backward(TapeEntry& e, HeadShape s) {
  // O_h = P_h V_h, G_h = dL/dO_h (head h's columns of dL/dO):  dP_h (+)= G_h V_hᵀ,  dV_h (+)= P_hᵀ G_h
  const Var &p = e.inputs[0], &v = e.inputs[1];
  const float* g = e.out->grad.data();
  if (p->requires_grad) {
    const GradDst dp = grad_dst(p);
    matmul_heads(dp.data, scores_layout(s), g, side_by_side(s, s.Tq), v->value.data(), side_by_side(s, s.Tk), s.B * s.H,
                 s.Tq, s.Tk, s.D, false, true, 1.f, dp.beta());
  }
  if (v->requires_grad) {
    const GradDst dv = grad_dst(v);
    matmul_heads(dv.data, side_by_side(s, s.Tk), p->value.data(), scores_layout(s), g, side_by_side(s, s.Tq), s.B * s.H,
                 s.Tk, s.D, s.Tq, true, false, 1.f, dv.beta());
  }
}

}  // namespace attn
