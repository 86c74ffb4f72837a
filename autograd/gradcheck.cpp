// autograd/gradcheck.cpp — the op table and the finite-difference / VJP checkers.
#include <attnlab/autograd/gradcheck.h>

#include <cmath>
#include <limits>

namespace attn {

// Inputs are drawn from ±[0.1, 1.1]: away from 0 so relu/abs kinks are not straddled.
static std::vector<Var> make_inputs(const std::vector<Shape>& shapes, Rng& rng) {
  std::vector<Var> ins;
  for (size_t i = 0; i < shapes.size(); i++) {
    Tensor t(shapes[i]);
    for (int64_t k = 0; k < t.numel(); k++) {
      float u = rng.uniform() * 2.f - 1.f;
      t[k] = (u < 0 ? -0.1f : 0.1f) + u;
    }
    ins.push_back(parameter(fmt::format("in{}", i), t));
  }
  return ins;
}

static Tensor weights_like(const Tensor& out, Rng& rng) {
  Tensor w(out.shape());
  for (int64_t k = 0; k < w.numel(); k++) w[k] = rng.uniform() * 2.f - 1.f;
  return w;
}

static double weighted_sum(const Tensor& out, const Tensor& w) {
  double s = 0;
  for (int64_t k = 0; k < out.numel(); k++) s += double(out[k]) * w[k];
  return s;
}

// Evaluates L = Σ build(ins) ⊙ W without recording.
static double eval_loss(const GradcheckCase& c, const std::vector<Var>& ins, const Tensor& w) {
  NoGradScope ng;
  return weighted_sum(c.build(ins)->value, w);
}

// Analytic gradients of L through the tape.
static void analytic_grads(const GradcheckCase& c, const std::vector<Var>& ins, const Tensor& w) {
  for (auto& v : ins) v->grad = Tensor();
  Tape tape;
  TapeScope scope(tape);
  Var out = c.build(ins);
  Var loss = sum(mul(out, constant(w, "W")), "L");
  tape.backward(loss);
}

GradcheckResult run_gradcheck(const GradcheckCase& c, uint64_t seed) {
  GradcheckResult r{c.op, c.label, 0, 0, false, ""};
  Rng rng(seed);
  std::vector<Var> ins = make_inputs(c.inputs, rng);
  Tensor w;
  {
    NoGradScope ng;
    w = weights_like(c.build(ins)->value, rng);
  }
  analytic_grads(c, ins, w);
  r.pass = true;
  double worst_excess = -1;
  for (size_t i = 0; i < ins.size(); i++) {
    Tensor& x = ins[i]->value;
    Tensor g = ins[i]->grad.defined() ? ins[i]->grad : Tensor::zeros(x.shape());
    for (int64_t k = 0; k < x.numel(); k++) {
      const float orig = x[k];
      x[k] = orig + float(kGradStep);
      double fp = eval_loss(c, ins, w);
      x[k] = orig - float(kGradStep);
      double fm = eval_loss(c, ins, w);
      x[k] = orig;
      const double numeric = (fp - fm) / (2 * kGradStep);
      const double analytic = g[k];
      const double abs_err = std::fabs(analytic - numeric);
      const double rel_err = abs_err / std::max({std::fabs(numeric), std::fabs(analytic), 1e-3});
      r.max_abs_err = std::max(r.max_abs_err, abs_err);
      r.max_rel_err = std::max(r.max_rel_err, rel_err);
      const double excess = abs_err - (kGradAbsTol + kGradRelTol * std::fabs(numeric));
      if (excess > worst_excess) {
        worst_excess = excess;
        r.worst = fmt::format("input {} element {}: analytic {:.6g} numeric {:.6g}", i, k, analytic, numeric);
      }
      if (!std::isfinite(analytic) || excess > 0) r.pass = false;
    }
  }
  return r;
}

GradcheckResult vjp_check(const GradcheckCase& c, uint64_t seed) {
  GradcheckResult r{c.op, c.label + " (vjp)", 0, 0, false, ""};
  Rng rng(seed);
  std::vector<Var> ins = make_inputs(c.inputs, rng);
  Tensor v;
  {
    NoGradScope ng;
    v = weights_like(c.build(ins)->value, rng);
  }
  analytic_grads(c, ins, v);  // ins[i]->grad = Jᵢᵀ v
  std::vector<Tensor> u, orig;
  double jt_v_dot_u = 0;
  for (auto& in : ins) {
    u.push_back(weights_like(in->value, rng));
    orig.push_back(in->value.clone());
    if (in->grad.defined()) jt_v_dot_u += weighted_sum(in->grad, u.back());
  }
  auto shifted = [&](double h) {
    for (size_t i = 0; i < ins.size(); i++)
      for (int64_t k = 0; k < ins[i]->value.numel(); k++) ins[i]->value[k] = orig[i][k] + float(h) * u[i][k];
    return eval_loss(c, ins, v);
  };
  const double h = kGradStep;
  const double v_dot_ju = (shifted(h) - shifted(-h)) / (2 * h);
  shifted(0);
  r.max_abs_err = std::fabs(v_dot_ju - jt_v_dot_u);
  r.max_rel_err = r.max_abs_err / std::max({std::fabs(v_dot_ju), std::fabs(jt_v_dot_u), 1e-3});
  r.pass = r.max_rel_err < 1e-2 || r.max_abs_err < kGradAbsTol;
  r.worst = fmt::format("<v, J u> = {:.6g}, <Jᵀ v, u> = {:.6g}", v_dot_ju, jt_v_dot_u);
  return r;
}

// ---- the table: every op of kOps, with its variations ------------------------------------

static Tensor causal_mask_for_test(int B, int Tq, int Tk, bool one_row_fully_masked) {
  Tensor m({B, Tq, Tk});
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int b = 0; b < B; b++)
    for (int i = 0; i < Tq; i++)
      for (int j = 0; j < Tk; j++) m.at({b, i, j}) = j > i ? ninf : 0.f;
  if (one_row_fully_masked)
    for (int j = 0; j < Tk; j++) m.at({B - 1, Tq - 1, j}) = ninf;
  return m;
}

const std::vector<GradcheckCase>& gradcheck_table() {
  static const std::vector<GradcheckCase> table = {
      {"matmul", "a b", {{3, 4}, {4, 5}}, [](auto& in) { return matmul(in[0], in[1], false, false); }},
      {"matmul", "aᵀ b", {{4, 3}, {4, 5}}, [](auto& in) { return matmul(in[0], in[1], true, false); }},
      {"matmul", "a bᵀ, alpha 0.5", {{3, 4}, {5, 4}}, [](auto& in) { return matmul(in[0], in[1], false, true, 0.5f); }},
      {"matmul", "aᵀ bᵀ", {{4, 3}, {5, 4}}, [](auto& in) { return matmul(in[0], in[1], true, true); }},
      {"matmul", "batched (2,2,3,4)(2,2,5,4)ᵀ", {{2, 2, 3, 4}, {2, 2, 5, 4}},
       [](auto& in) { return matmul(in[0], in[1], false, true, 0.7f); }},
      {"matmul", "Q Qᵀ: one input used twice", {{2, 4, 3}},
       [](auto& in) { return matmul(in[0], in[0], false, true, 0.5f); }},
      {"linear", "rank 3 with bias", {{2, 3, 4}, {4, 5}, {5}}, [](auto& in) { return linear(in[0], in[1], in[2]); }},
      {"linear", "no bias", {{3, 4}, {4, 2}}, [](auto& in) { return linear(in[0], in[1], nullptr); }},
      {"gram", "alpha Q Qᵀ (ssyrk)", {{2, 2, 4, 3}}, [](auto& in) { return gram(in[0], 0.5f); }},
      {"head_scores", "2 heads side by side, Tq 3, Tk 4", {{2, 3, 6}, {2, 4, 6}},
       [](auto& in) { return head_scores(in[0], in[1], 2, 0.7f); }},
      {"head_scores", "Q Qᵀ: one input used twice", {{2, 3, 4}},
       [](auto& in) { return head_scores(in[0], in[0], 2, 0.5f); }},
      {"head_gram", "3 heads, alpha Q_h Q_hᵀ (ssyrk)", {{2, 4, 6}}, [](auto& in) { return head_gram(in[0], 3, 0.5f); }},
      {"head_context", "2 heads, Tq 3, Tk 4", {{2, 2, 3, 4}, {2, 4, 6}},
       [](auto& in) { return head_context(in[0], in[1]); }},
      {"add", "", {{3, 4}, {3, 4}}, [](auto& in) { return add(in[0], in[1]); }},
      {"mul", "", {{3, 4}, {3, 4}}, [](auto& in) { return mul(in[0], in[1]); }},
      {"mul", "x ⊙ x", {{3, 4}}, [](auto& in) { return mul(in[0], in[0]); }},
      {"scale", "", {{3, 4}}, [](auto& in) { return scale(in[0], -1.5f); }},
      {"relu", "", {{3, 4}}, [](auto& in) { return relu(in[0]); }},
      {"gelu", "", {{3, 4}}, [](auto& in) { return gelu(in[0]); }},
      {"softmax", "rows", {{3, 5}}, [](auto& in) { return softmax(in[0], Tensor(), 1.f); }},
      {"softmax", "scaled, causal mask, a fully masked row", {{2, 2, 3, 4}},
       [](auto& in) { return softmax(in[0], causal_mask_for_test(2, 3, 4, true), 0.8f); }},
      {"log_softmax", "", {{3, 5}}, [](auto& in) { return log_softmax(in[0]); }},
      {"layernorm", "", {{2, 3, 6}, {6}, {6}}, [](auto& in) { return layernorm(in[0], in[1], in[2]); }},
      {"embedding", "repeated ids", {{6, 3}},
       [](auto& in) { return embedding(in[0], {1, 4, 1, 0, 5, 1}, {2, 3}); }},
      {"cross_entropy", "smoothing 0.1, padding ignored", {{6, 5}},
       [](auto& in) { return cross_entropy(in[0], {1, 0, 4, 0, 2, 3}, 0.1f, 0); }},
      {"cross_entropy", "no smoothing", {{2, 3, 5}},
       [](auto& in) { return cross_entropy(in[0], {1, 2, 4, 3, 2, 3}, 0.f, -1); }},
      {"logits_cross_entropy", "h wᵀ in chunks of 2 rows, smoothing 0.1, padding ignored", {{5, 3}, {6, 3}},
       [](auto& in) { return logits_cross_entropy(in[0], in[1], {1, 0, 4, 0, 5}, 0.1f, 0, "", 2); }},
      {"logits_cross_entropy", "h wᵀ in one chunk, no smoothing", {{4, 3}, {5, 3}},
       [](auto& in) { return logits_cross_entropy(in[0], in[1], {1, 2, 4, 3}, 0.f, -1); }},
      {"dropout", "p 0.3, fixed seed", {{4, 5}},
       [](auto& in) {
         Rng rng(7);
         return dropout(in[0], 0.3f, rng);
       }},
      {"relu_dropout", "p 0.3, fixed seed", {{4, 5}},
       [](auto& in) {
         Rng rng(7);
         return relu_dropout(in[0], 0.3f, rng);
       }},
      {"dropout_add", "x + dropout(y), p 0.3, fixed seed", {{4, 5}, {4, 5}},
       [](auto& in) {
         Rng rng(7);
         return dropout_add(in[0], in[1], 0.3f, rng);
       }},
      {"dropout_add", "x + dropout(x): one input in both places", {{3, 4}},
       [](auto& in) {
         Rng rng(9);
         return dropout_add(in[0], in[0], 0.4f, rng);
       }},
      {"reshape", "", {{2, 6}}, [](auto& in) { return reshape(in[0], {3, 4}); }},
      {"transpose12", "", {{2, 3, 4, 2}}, [](auto& in) { return transpose12(in[0]); }},
      {"sum", "", {{3, 4}}, [](auto& in) { return sum(in[0]); }},
      {"l2_normalize", "", {{3, 4}}, [](auto& in) { return l2_normalize(in[0]); }},
      {"add_rows", "positions (T,C) over (B,T,C)", {{2, 3, 4}, {3, 4}},
       [](auto& in) { return add_rows(in[0], in[1]); }},
  };
  return table;
}

}  // namespace attn
