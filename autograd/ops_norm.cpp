// autograd/ops_norm.cpp — layer norm and unit (L2) normalisation over the last axis.
#include <cmath>
#include <stdexcept>

#include <attnlab/autograd/ops.h>
#include <attnlab/core/kernels.h>

namespace attn {

// ---- layernorm: y = (x − mean) * rstd * w + b ------------------------------------------

static void layernorm_op_backward(TapeEntry& e);  // below

Var layernorm(const Var& x, const Var& weight, const Var& bias, const std::string& name) {
  const int64_t C = x->value.dim(-1), R = x->value.numel() / C;
  if (weight->value.shape() != Shape{C} || bias->value.shape() != Shape{C})
    throw std::invalid_argument(fmt::format("layernorm '{}': weight {} does not fit input {}", name,
                                            shape_str(weight->value.shape()), shape_str(x->value.shape())));
  Tensor out = Tensor::empty(x->value.shape()), mean = Tensor::empty({R}), rstd = Tensor::empty({R});
  layernorm_forward(out.data(), mean.data(), rstd.data(), x->value.data(), weight->value.data(), bias->value.data(), R,
                    int(C));
  Recorded r = record("layernorm", name, out, {x, weight, bias});
  if (r.entry) {
    r.entry->saved = {{"mean", mean}, {"rstd", rstd}};
    r.entry->backward = layernorm_op_backward;
  }
  return r.out;
}

static void layernorm_op_backward(TapeEntry& e) {
  const Var &x = e.inputs[0], &w = e.inputs[1], &b = e.inputs[2];
  const int64_t C = x->value.dim(-1), R = x->value.numel() / C;
  const GradDst dx = x->requires_grad ? grad_dst(x) : GradDst{nullptr, false};
  // (the weight's and the bias's gradients are sums over rows: added to)
  layernorm_backward(dx.data, w->requires_grad ? grad_dst(w).zeroed_if_fresh(C) : nullptr,
                     b->requires_grad ? grad_dst(b).zeroed_if_fresh(C) : nullptr, e.out->grad.data(), x->value.data(),
                     w->value.data(), e.get("mean").data(), e.get("rstd").data(), R, int(C), dx.accumulate);
}

// ---- l2_normalize: y = x / |x| -----------------------------------------------------------

static void l2_normalize_backward(TapeEntry& e);  // below

Var l2_normalize(const Var& x, const std::string& name) {
  const int64_t C = x->value.dim(-1), R = x->value.numel() / C;
  Tensor out = Tensor::empty(x->value.shape()), norm = Tensor::empty({R});
  for (int64_t r = 0; r < R; r++) {
    double s = 0;
    for (int64_t c = 0; c < C; c++) s += double(x->value[r * C + c]) * x->value[r * C + c];
    norm[r] = float(std::sqrt(s)) + 1e-6f;
    for (int64_t c = 0; c < C; c++) out[r * C + c] = x->value[r * C + c] / norm[r];
  }
  Recorded r = record("l2_normalize", name, out, {x});
  if (r.entry) {
    r.entry->saved = {{"norm", norm}};
    r.entry->backward = l2_normalize_backward;
  }
  return r.out;
}

static void l2_normalize_backward(TapeEntry& e) {
  // y = x / n, n = |x|  =>  dL/dx = (G − y <G, y>) / n
  const Tensor &y = e.out->value, &G = e.out->grad, &norm = e.get("norm");
  const int64_t C = y.dim(-1), R = y.numel() / C;
  float* dx = grad_dst(e.inputs[0]).zeroed_if_fresh(R * C);
  for (int64_t r = 0; r < R; r++) {
    float dot = 0.f;
    for (int64_t c = 0; c < C; c++) dot += G[r * C + c] * y[r * C + c];
    for (int64_t c = 0; c < C; c++) dx[r * C + c] += (G[r * C + c] - y[r * C + c] * dot) / norm[r];
  }
}

}  // namespace attn
