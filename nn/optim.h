// nn/optim.h — Adam / AdamW, learning-rate schedules, global-norm clipping.
//
//   Adam opt(ps.params, {.lr = 5e-4, .beta2 = 0.98});
//   ... tape.backward(loss); GradNorm g = grad_norm(ps.params, 1.0);
//   opt.step(schedule_lr(sched, step), g.scale); ps.zero_grad();     // clipped inside the update
#pragma once
#include <string>
#include <vector>

#include <attnlab/autograd/tape.h>

namespace attn {

struct AdamConfig {
  float lr = 5e-4f;
  float beta1 = 0.9f, beta2 = 0.98f, eps = 1e-9f;
  float weight_decay = 0.f;  // decoupled (AdamW) when > 0
};

struct Adam {
  std::vector<Var> params;
  AdamConfig cfg;
  std::vector<Tensor> m, v;  // first and second moments, one per parameter
  int64_t t = 0;             // steps taken

  Adam(std::vector<Var> params, AdamConfig cfg);
  // θ ← θ − lr (m̂ / (√v̂ + ε) + wd θ), the moments taking grad_scale · g: clipping's factor
  // (GradNorm::scale), with no pass of its own over the gradients. The same bits as
  // clip_grad_norm's scaling followed by step(lr).
  void step(float lr, float grad_scale = 1.f);
};

// The global norm of all gradients (their squares summed, square-rooted), and the factor that
// clips it to max_norm: max_norm / (norm + 1e-6) when the norm is above max_norm, else 1
// (max_norm <= 0: measure only).
struct GradNorm {
  double norm = 0;
  float scale = 1.f;
};
GradNorm grad_norm(const std::vector<Var>& params, double max_norm);
// Every defined gradient multiplied by s in place.
void scale_grads(const std::vector<Var>& params, float s);
// grad_norm, then the gradients scaled in place by its factor (for code that reads the clipped
// gradients before the update). Returns the norm before clipping.
double clip_grad_norm(const std::vector<Var>& params, double max_norm);

struct Schedule {
  std::string kind = "inverse_sqrt";  // "inverse_sqrt" | "cosine" | "constant"
  float lr = 5e-4f;                   // peak learning rate
  int warmup = 400;
  int total = 10000;                  // cosine: decays to min_lr at `total`
  float min_lr = 1e-5f;
};
float schedule_lr(const Schedule& s, int64_t step);  // step counts from 1

}  // namespace attn
