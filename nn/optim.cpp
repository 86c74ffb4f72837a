// nn/optim.cpp — the update rules.
#include <attnlab/nn/optim.h>

#include <cmath>
#include <stdexcept>

#include <attnlab/core/kernels.h>
#include <attnlab/core/usage_error.h>

namespace attn {

Adam::Adam(std::vector<Var> params_, AdamConfig cfg_) : params(std::move(params_)), cfg(cfg_) {
  for (const Var& p : params) {
    m.push_back(Tensor::zeros(p->value.shape()));
    v.push_back(Tensor::zeros(p->value.shape()));
  }
}

void Adam::step(float lr, float grad_scale) {
  t += 1;
  const float bc1 = 1.f - std::pow(cfg.beta1, float(t));
  const float bc2 = 1.f - std::pow(cfg.beta2, float(t));
  // m = β1 m + (1−β1) g;  v = β2 v + (1−β2) g²;  w −= lr (m̂ / (√v̂ + ε) + wd w), every tensor in one region
  std::vector<AdamTensor> tensors;
  for (size_t i = 0; i < params.size(); i++) {
    Var& p = params[i];
    if (p->grad.defined())
      tensors.push_back({p->value.data(), m[i].data(), v[i].data(), p->grad.data(), p->value.numel()});
  }
  adam_update_tensors(tensors, lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay, bc1, bc2, grad_scale);
}

GradNorm grad_norm(const std::vector<Var>& params, double max_norm) {
  double sq = 0;
  for (const Var& p : params)
    if (p->grad.defined()) sq += sum_squares(p->grad.data(), p->grad.numel());
  GradNorm g;
  g.norm = std::sqrt(sq);
  if (max_norm > 0 && g.norm > max_norm) g.scale = float(max_norm / (g.norm + 1e-6));
  return g;
}

void scale_grads(const std::vector<Var>& params, float s) {
  for (const Var& p : params)
    if (p->grad.defined()) scale_forward(p->grad.data(), p->grad.data(), s, p->grad.numel());  // g *= s
}

double clip_grad_norm(const std::vector<Var>& params, double max_norm) {
  const GradNorm g = grad_norm(params, max_norm);
  if (g.scale != 1.f) scale_grads(params, g.scale);
  return g.norm;
}

float schedule_lr(const Schedule& s, int64_t step) {
  if (step < 1) step = 1;
  const float warm = float(std::max(1, s.warmup));
  if (s.kind == "constant") return step < warm ? s.lr * float(step) / warm : s.lr;
  if (s.kind == "inverse_sqrt") return s.lr * std::min(float(step) / warm, std::sqrt(warm / float(step)));
  if (s.kind == "cosine") {
    if (step < warm) return s.lr * float(step) / warm;
    const float progress = std::min(1.f, float(step - warm) / float(std::max(1, s.total - s.warmup)));
    return s.min_lr + 0.5f * (s.lr - s.min_lr) * (1.f + std::cos(3.14159265f * progress));
  }
  throw UsageError("unknown schedule '" + s.kind + "': expected inverse_sqrt, cosine or constant");
}

}  // namespace attn
