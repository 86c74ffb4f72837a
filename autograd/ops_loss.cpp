// autograd/ops_loss.cpp — fused softmax + label-smoothed cross-entropy, the same fused with the
// tied output layer's product, and sum.
#include <algorithm>
#include <stdexcept>

#include <attnlab/autograd/ops.h>
#include <attnlab/core/kernels.h>

namespace attn {

// ---- cross_entropy ---------------------------------------------------------------------

static void cross_entropy_op_backward(TapeEntry& e, float smoothing, int ignore_id, int64_t count);  // below

static void check_targets(const char* op, const std::string& name, const std::vector<int32_t>& targets, int64_t R,
                          int64_t V, int ignore_id) {
  if (int64_t(targets.size()) != R)
    throw std::invalid_argument(fmt::format("{} '{}': {} targets for {} rows of logits", op, name, targets.size(), R));
  for (int32_t t : targets)
    if (t != ignore_id && (t < 0 || t >= V))
      throw std::invalid_argument(fmt::format("{} '{}': target {} outside vocabulary of {}", op, name, t, V));
}

Var cross_entropy(const Var& logits, const std::vector<int32_t>& targets, float smoothing, int ignore_id,
                  const std::string& name) {
  const int64_t V = logits->value.dim(-1), R = logits->value.numel() / V;
  check_targets("cross_entropy", name, targets, R, V, ignore_id);
  Tensor probs = Tensor::empty(logits->value.shape());
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

// ---- logits_cross_entropy: cross_entropy(h wᵀ) ---------------------------------------------

int64_t logits_chunk_rows(int64_t R, int64_t C) {
  // Measured (bench/output_chunks.cpp, docs/benchmarks.md): at d_model 64 the 128-row chunks'
  // logits, still in cache, save a fifth of the output layer's time; at 128 they save nothing
  // and at 256 the smaller products lose, so there one chunk holds every row.
  return C <= 64 ? std::min<int64_t>(R, 128) : R;
}

static void logits_cross_entropy_backward(TapeEntry& e);  // below

Var logits_cross_entropy(const Var& h, const Var& w, const std::vector<int32_t>& targets, float smoothing,
                         int ignore_id, const std::string& name, int chunk_rows) {
  const Tensor &hv = h->value, &wv = w->value;
  if (hv.rank() != 2 || wv.rank() != 2 || hv.dim(1) != wv.dim(1))
    throw std::invalid_argument(fmt::format("logits_cross_entropy '{}': hidden {} (rows, C) and weight {} (V, C) do "
                                            "not fit",
                                            name, shape_str(hv.shape()), shape_str(wv.shape())));
  if (chunk_rows < 0)
    throw std::invalid_argument(fmt::format("logits_cross_entropy '{}': chunks of {} rows", name, chunk_rows));
  const int64_t R = hv.dim(0), C = hv.dim(1), V = wv.dim(0);
  check_targets("logits_cross_entropy", name, targets, R, V, ignore_id);
  int64_t count = 0;  // the rows the mean is over, needed before the first chunk's gradient
  for (int32_t t : targets) count += t != ignore_id;
  // Recorded (as record() decides below), its backward will need them: the gradients are made
  // here. (A tape recorded only to count its flops, as the frontier report's, pays for them too.)
  const bool dh_needed = current_tape() && h->requires_grad, dw_needed = current_tape() && w->requires_grad;
  Tensor dh = dh_needed ? Tensor::empty({R, C}) : Tensor();
  Tensor dw = !dw_needed ? Tensor() : R > 0 ? Tensor::empty({V, C}) : Tensor::zeros({V, C});  // no rows: no chunk writes it
  const int64_t rows = std::max<int64_t>(1, chunk_rows > 0 ? std::min<int64_t>(chunk_rows, R) : logits_chunk_rows(R, C));
  Tensor z = Tensor::empty({std::min(rows, R), V});  // one chunk's logits, then probabilities, then dL/dlogits
  const float scale = 1.f / float(count > 0 ? count : 1);  // dL/dlogits = (p - q) / count for dL/dloss = 1
  double total = 0;
  for (int64_t r0 = 0; r0 < R; r0 += rows) {
    const int n = int(std::min(rows, R - r0));
    const float* hc = hv.data() + r0 * C;
    const int32_t* tc = targets.data() + r0;
    matmul_forward(z.data(), hc, wv.data(), n, int(V), int(C), false, true);  // Z = H_c Wᵀ
    int64_t counted = 0;
    if (!dh_needed && !dw_needed) {
      total += cross_entropy_forward(z.data(), &counted, z.data(), tc, n, int(V), smoothing, ignore_id);
      continue;
    }
    total += cross_entropy_forward_backward(z.data(), &counted, tc, n, int(V), smoothing, ignore_id, scale);  // dL/dZ
    if (dh_needed) matmul_forward(dh.data() + r0 * C, z.data(), wv.data(), n, int(C), int(V), false, false);  // G W
    if (dw_needed)  // Gᵀ H_c, the chunks' added up
      matmul_forward(dw.data(), z.data(), hc, int(V), int(C), n, true, false, 1.f, r0 > 0 ? 1.f : 0.f);
  }
  Tensor out = Tensor::scalar(count > 0 ? float(total / double(count)) : 0.f);
  Recorded r = record("logits_cross_entropy", name, out, {h, w});
  if (r.entry) {
    r.entry->saved = {{"dh", dh}, {"dw", dw}};
    r.entry->backward = logits_cross_entropy_backward;
  }
  return r.out;
}

static void logits_cross_entropy_backward(TapeEntry& e) {
  // The forward made dL/dh and dL/dw for dL/dloss = 1; the chain rule scales them by the real one.
  const float g = e.out->grad.item();
  for (int i : {0, 1}) {
    const Var& v = e.inputs[i];
    if (!v->requires_grad) continue;
    const Tensor& made = e.get(i == 0 ? "dh" : "dw");
    if (g == 1.f && grad_take(v, made)) continue;  // handed over as it is
    const GradDst d = grad_dst(v);
    if (d.accumulate) axpy(d.data, g, made.data(), made.numel());
    else scale_forward(d.data, made.data(), g, made.numel());
  }
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
