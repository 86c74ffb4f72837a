// autograd/ops_loss.cpp — fused softmax + label-smoothed cross-entropy, and sum.
#include <stdexcept>

#include <attnlab/autograd/ops.h>
#include <attnlab/core/kernels.h>

namespace attn {

// ---- cross_entropy ---------------------------------------------------------------------

static void cross_entropy_op_backward(TapeEntry& e, float smoothing, int ignore_id, int64_t count);  // below

Var cross_entropy(const Var& logits, const std::vector<int32_t>& targets, float smoothing, int ignore_id,
                  const std::string& name, bool logits_unread_after) {
  const int64_t V = logits->value.dim(-1), R = logits->value.numel() / V;
  if (int64_t(targets.size()) != R)
    throw std::invalid_argument(fmt::format("cross_entropy '{}': {} targets for {} rows of logits", name, targets.size(), R));
  for (int32_t t : targets)
    if (t != ignore_id && (t < 0 || t >= V))
      throw std::invalid_argument(fmt::format("cross_entropy '{}': target {} outside vocabulary of {}", name, t, V));
  // The logits of an op (not a leaf, whose value is someone's), read by nobody after this, in a
  // training step: the probabilities overwrite them (the kernel reads each logit before writing it).
  const bool in_place = logits_unread_after && gradients_handed_over() && logits->tape_index >= 0;
  Tensor probs = in_place ? logits->value : Tensor::empty(logits->value.shape());
  int64_t count = 0;
  double total = cross_entropy_forward(probs.data(), &count, logits->value.data(), targets.data(), R, int(V),
                                       smoothing, ignore_id);
  Tensor out = Tensor::scalar(count > 0 ? float(total / double(count)) : 0.f);
  Recorded r = record("cross_entropy", name, out, {logits});
  if (r.entry) {
    r.entry->saved = {{"probs", probs}};
    r.entry->ids = targets;
    r.entry->backward = [=](TapeEntry& e) { cross_entropy_op_backward(e, smoothing, ignore_id, count); };
  }
  return r.out;
}

static void cross_entropy_op_backward(TapeEntry& e, float smoothing, int ignore_id, int64_t count) {
  // loss = (1/count) Σ_rows −Σ_v q_v log p_v  =>  dL/dlogits = G (p − q) / count
  const Tensor& probs = e.get("probs");
  const int64_t V = probs.dim(-1), R = probs.numel() / V;
  const float g = e.out->grad.item() / float(count > 0 ? count : 1);
  if (float* dx = grad_take(e.inputs[0], probs)) {  // the probabilities become the gradient, in place
    cross_entropy_backward(dx, dx, e.ids.data(), R, int(V), smoothing, ignore_id, g, false);
    return;
  }
  const GradDst dx = grad_dst(e.inputs[0]);
  cross_entropy_backward(dx.data, probs.data(), e.ids.data(), R, int(V), smoothing, ignore_id, g, dx.accumulate);
}

// ---- sum -------------------------------------------------------------------------------

static void sum_backward(TapeEntry& e);  // below

Var sum(const Var& x, const std::string& name) {
  double s = 0;
  for (int64_t i = 0; i < x->value.numel(); i++) s += x->value[i];
  Recorded r = record("sum", name, Tensor::scalar(float(s)), {x});
  if (r.entry)
    r.entry->backward = sum_backward;
  return r.out;
}

static void sum_backward(TapeEntry& e) {
  // dL/dx_i += G
  const int64_t n = e.inputs[0]->value.numel();
  float* dx = grad_dst(e.inputs[0]).zeroed_if_fresh(n);
  const float g = e.out->grad.item();
  for (int64_t i = 0; i < n; i++) dx[i] += g;
}

}  // namespace attn
