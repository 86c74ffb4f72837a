// nn/optim.h — Adam / AdamW, learning-rate schedules, global-norm clipping.
//
//   Adam opt(ps.params, {.lr = 5e-4, .beta2 = 0.98});
//   ... tape.backward(loss); double norm = clip_grad_norm(ps.params, 1.0);
//   opt.step(schedule_lr(sched, step)); ps.zero_grad();
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
  // θ ← θ − lr (m̂ / (√v̂ + ε) + wd θ)
  void step(float lr);
};

// Sum of squares of all gradients, square-rooted; scales them down to max_norm when above it.
// Returns the norm before clipping. max_norm <= 0: measure only.
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
