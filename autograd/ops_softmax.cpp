// autograd/ops_softmax.cpp — masked, scaled softmax (attention probabilities) and log-softmax.
#include <stdexcept>

#include <attnlab/autograd/ops.h>
#include <attnlab/core/kernels.h>

namespace attn {

// ---- softmax: P = softmax(scale * X + mask) ----------------------------------------------

static void softmax_op_backward(TapeEntry& e, float scale);  // below

Var softmax(const Var& x, const Tensor& mask, float scale, const std::string& name) {
  const Tensor& v = x->value;
  int B = 1, H = 1, Tq, Tk;
  if (v.rank() == 4) {
    B = int(v.dim(0)), H = int(v.dim(1)), Tq = int(v.dim(2)), Tk = int(v.dim(3));
  } else if (v.rank() == 2) {
    Tq = int(v.dim(0)), Tk = int(v.dim(1));
  } else {
    throw std::invalid_argument("softmax '" + name + "': expected rank 2 or 4, got " + shape_str(v.shape()));
  }
  if (mask.defined() && mask.shape() != Shape{B, Tq, Tk})
    throw std::invalid_argument(fmt::format("softmax '{}': mask {} does not fit scores {}", name,
                                            shape_str(mask.shape()), shape_str(v.shape())));
  Tensor out = Tensor::empty(v.shape());
  softmax_forward(out.data(), v.data(), mask.defined() ? mask.data() : nullptr, B, H, Tq, Tk, scale);
  Recorded r = record("softmax", name, out, {x});
  if (r.entry) r.entry->backward = [scale](TapeEntry& e) { softmax_op_backward(e, scale); };
  return r.out;
}

static void softmax_op_backward(TapeEntry& e, float scale) {
  // dL/dX = scale * P ⊙ (dL/dP − rowsum(dL/dP ⊙ P))   (masked entries have P = 0: no gradient)
  const Tensor& P = e.out->value;
  const int64_t C = P.dim(-1);
  const GradDst dx = grad_dst(e.inputs[0]);
  softmax_backward(dx.data, e.out->grad.data(), P.data(), P.numel() / C, int(C), scale, dx.accumulate);
}

// ---- log_softmax -----------------------------------------------------------------------

static void log_softmax_op_backward(TapeEntry& e);  // below

Var log_softmax(const Var& x, const std::string& name) {
  const int64_t C = x->value.dim(-1), R = x->value.numel() / C;
  Tensor out = Tensor::empty(x->value.shape());
  log_softmax_forward(out.data(), x->value.data(), R, int(C));
  Recorded r = record("log_softmax", name, out, {x});
  if (r.entry)
    r.entry->backward = log_softmax_op_backward;
  return r.out;
}

static void log_softmax_op_backward(TapeEntry& e) {
  const int64_t C2 = e.out->value.dim(-1);
  const GradDst dx = grad_dst(e.inputs[0]);
  log_softmax_backward(dx.data, e.out->grad.data(), e.out->value.data(), e.out->value.numel() / C2, int(C2),
                       dx.accumulate);
}

}  // namespace attn
