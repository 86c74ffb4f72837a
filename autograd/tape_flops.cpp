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
    } else if (e.op == "logits_cross_entropy") {  // Z = H Wᵀ, dH = G W, dW = Gᵀ H (over chunks of rows)
      const Tensor &h = e.inputs[0]->value, &w = e.inputs[1]->value;
      const double fwd = 2.0 * double(h.dim(0)) * double(w.dim(0)) * double(h.dim(1));
      f += fwd * (1 + int(e.inputs[0]->requires_grad) + int(e.inputs[1]->requires_grad));
    } else if (e.op == "linear") {
      const Tensor& w = e.inputs[1]->value;
      const double fwd = 2.0 * double(out.numel()) * double(w.dim(0));
      f += fwd * (1 + int(e.inputs[0]->requires_grad) + int(e.inputs[1]->requires_grad));
    } else if (e.op == "head_scores" || e.op == "head_context") {
      // per head: S_h (Tq,Tk) = Q_h Kᵀ_h over D, or O_h (Tq,D) = P_h V_h over Tk
      const Tensor& p = e.inputs[0]->value;  // q (B,Tq,H·D), or p (B,H,Tq,Tk)
      const double K = e.op == "head_scores" ? double(p.dim(-1) / out.dim(1)) : double(p.dim(-1));
      const double fwd = 2.0 * double(out.numel()) * K;
      const int grads = int(e.inputs[0]->requires_grad) + int(e.inputs[1]->requires_grad);
      f += fwd * (1 + grads);
    } else if (e.op == "head_gram") {
      const Tensor& q = e.inputs[0]->value;                       // (B,T,H·D), out (B,H,T,T)
      const double fwd = double(out.numel()) * double(q.dim(-1) / out.dim(1));  // syrk: half of 2·T·T·D
      f += fwd + 2.0 * fwd;
    } else if (e.op == "gram") {
      const Tensor& q = e.inputs[0]->value;
      const double fwd = double(out.numel()) * double(q.dim(-1));  // syrk: half of 2·N·N·K
      f += fwd + 2.0 * fwd;                                         // backward: (G+Gᵀ) Q, one full product
    }
  }
  return f;
}

}  // namespace attn
