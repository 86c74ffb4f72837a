// autograd/tape_flops.cpp — what the products on a tape cost, counted from their shapes: the
// work that dominates a step (attnlab bench's efficiency, the frontier report's cost axis). An op
// that multiplies matrices is counted here by name; a new one is added here too.
#include <attnlab/autograd/tape.h>

namespace attn {

double Tape::product_flops() const {
  double f = 0;
  for (auto& e : entries) {
    const Tensor& out = e.out->value;
    if (e.op == "matmul") {
      const Tensor& a = e.inputs[0]->value;
      const double K = double(a.numel()) / double(out.numel() / out.dim(-1));  // a holds batch·M·K values
      const double fwd = 2.0 * double(out.numel()) * K;
      const int grads = int(e.inputs[0]->requires_grad) + int(e.inputs[1]->requires_grad);
      f += fwd * (1 + grads);
    } else if (e.op == "linear") {
      const Tensor& w = e.inputs[1]->value;
      const double fwd = 2.0 * double(out.numel()) * double(w.dim(0));
      f += fwd * (1 + int(e.inputs[0]->requires_grad) + int(e.inputs[1]->requires_grad));
    } else if (e.op == "gram") {
      const Tensor& q = e.inputs[0]->value;
      const double fwd = double(out.numel()) * double(q.dim(-1));  // syrk: half of 2·N·N·K
      f += fwd + 2.0 * fwd;                                         // backward: (G+Gᵀ) Q, one full product
    }
  }
  return f;
}

}  // namespace attn
