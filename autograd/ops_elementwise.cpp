// autograd/ops_elementwise.cpp — add, mul, scale, relu, gelu, dropout (and dropout fused with the
// add after it or the ReLU before it), add_rows.
#include <stdexcept>

#include <attnlab/autograd/ops.h>
#include <attnlab/core/kernels.h>

namespace attn {

static void check_same(const char* op, const std::string& name, const Var& a, const Var& b) {
  if (a->value.shape() != b->value.shape())
    throw std::invalid_argument(fmt::format("{} '{}': shapes {} and {} differ", op, name, shape_str(a->value.shape()),
                                            shape_str(b->value.shape())));
}

// ---- add: out = a + b ------------------------------------------------------------------

static void add_backward(TapeEntry& e);  // below

Var add(const Var& a, const Var& b, const std::string& name) {
  check_same("add", name, a, b);
  Tensor out = Tensor::empty(a->value.shape());
  add_forward(out.data(), a->value.data(), b->value.data(), out.numel());
  Recorded r = record("add", name, out, {a, b});
  if (r.entry) r.entry->backward = add_backward;
  return r.out;
}

static void add_backward(TapeEntry& e) {
  // dL/da (+)= G;  dL/db (+)= G   (a == b: the second adds)
  const Tensor& G = e.out->grad;
  for (const Var& v : {e.inputs[1], e.inputs[0]})  // the second may take G itself (the residual stream)
    if (v->requires_grad && !(v == e.inputs[0] && grad_take(v, G) != nullptr)) {
      const GradDst d = grad_dst(v);
      scale_backward(d.data, G.data(), 1.f, G.numel(), d.accumulate);
    }
}

// ---- mul: out = a * b (elementwise) ----------------------------------------------------

static void mul_backward(TapeEntry& e);  // below

Var mul(const Var& a, const Var& b, const std::string& name) {
  check_same("mul", name, a, b);
  Tensor out = Tensor::empty(a->value.shape());
  mul_forward(out.data(), a->value.data(), b->value.data(), out.numel());
  Recorded r = record("mul", name, out, {a, b});
  if (r.entry) r.entry->backward = mul_backward;
  return r.out;
}

static void mul_backward(TapeEntry& e) {
  // dL/da += G * b;  dL/db += G * a   (a == b gives 2 G a, both paths)
  const Var &a = e.inputs[0], &b = e.inputs[1];
  const Tensor& G = e.out->grad;
  const int64_t n = G.numel();
  if (a->requires_grad) {
    float* da = grad_dst(a).zeroed_if_fresh(n);
    for (int64_t i = 0; i < n; i++) da[i] += G[i] * b->value[i];
  }
  if (b->requires_grad) {
    float* db = grad_dst(b).zeroed_if_fresh(n);
    for (int64_t i = 0; i < n; i++) db[i] += G[i] * a->value[i];
  }
}

// ---- scale: out = s * x ----------------------------------------------------------------

static void scale_backward(TapeEntry& e, float s);  // below

Var scale(const Var& a, float s, const std::string& name) {
  Tensor out = Tensor::empty(a->value.shape());
  scale_forward(out.data(), a->value.data(), s, out.numel());
  Recorded r = record("scale", name, out, {a});
  if (r.entry)
    r.entry->backward = [s](TapeEntry& e) { scale_backward(e, s); };
  return r.out;
}

static void scale_backward(TapeEntry& e, float s) {
  const GradDst dx = grad_dst(e.inputs[0]);  // out = s x  =>  dL/dx (+)= s G
  scale_backward(dx.data, e.out->grad.data(), s, e.out->grad.numel(), dx.accumulate);
}

// ---- relu, gelu ------------------------------------------------------------------------

static void relu_op_backward(TapeEntry& e);  // below

Var relu(const Var& x, const std::string& name) {
  Tensor out = Tensor::empty(x->value.shape());
  relu_forward(out.data(), x->value.data(), out.numel());
  Recorded r = record("relu", name, out, {x});
  if (r.entry)
    r.entry->backward = relu_op_backward;
  return r.out;
}

static void relu_op_backward(TapeEntry& e) {
  const GradDst dx = grad_dst(e.inputs[0]);
  relu_backward(dx.data, e.out->grad.data(), e.out->value.data(), e.out->grad.numel(), dx.accumulate);
}

static void gelu_op_backward(TapeEntry& e);  // below

Var gelu(const Var& x, const std::string& name) {
  Tensor out = Tensor::empty(x->value.shape());
  gelu_forward(out.data(), x->value.data(), out.numel());
  Recorded r = record("gelu", name, out, {x});
  if (r.entry)
    r.entry->backward = gelu_op_backward;
  return r.out;
}

static void gelu_op_backward(TapeEntry& e) {
  const GradDst dx = grad_dst(e.inputs[0]);
  gelu_backward(dx.data, e.out->grad.data(), e.inputs[0]->value.data(), e.out->grad.numel(), dx.accumulate);
}

// ---- dropout ---------------------------------------------------------------------------

static void check_dropout_p(const char* op, const std::string& name, float p) {
  if (!(p >= 0.f && p < 1.f)) throw std::invalid_argument(fmt::format("{} '{}': p must be in [0, 1), got {}", op, name, p));
}

// A dropout mask's seed: two draws, high half first (one definition for dropout and
// relu_dropout, so the two give the same masks from the same Rng).
static uint64_t draw_dropout_seed(Rng& rng) {
  const uint64_t hi = rng.next();
  const uint64_t lo = rng.next();
  return (hi << 32) | lo;
}

static void dropout_op_backward(TapeEntry& e, float p, uint64_t seed);  // below

Var dropout(const Var& x, float p, Rng& rng, const std::string& name) {
  check_dropout_p("dropout", name, p);
  if (p == 0.f) return x;
  // The mask is a function of this seed and the element index; the backward recomputes it.
  const uint64_t seed = draw_dropout_seed(rng);
  Tensor out = Tensor::empty(x->value.shape());
  dropout_forward(out.data(), x->value.data(), out.numel(), p, seed);
  Recorded r = record("dropout", name, out, {x});
  if (r.entry)
    r.entry->backward = [p, seed](TapeEntry& e) { dropout_op_backward(e, p, seed); };
  return r.out;
}

static void dropout_op_backward(TapeEntry& e, float p, uint64_t seed) {
  // out = x * mask  =>  dL/dx += G * mask
  const GradDst dx = grad_dst(e.inputs[0]);
  dropout_backward(dx.data, e.out->grad.data(), e.out->grad.numel(), p, seed, dx.accumulate);
}

// ---- dropout_add: x + dropout(y) -------------------------------------------------------

static void dropout_add_op_backward(TapeEntry& e, float p, uint64_t seed);  // below

Var dropout_add(const Var& x, const Var& y, float p, Rng& rng, const std::string& name) {
  check_dropout_p("dropout_add", name, p);
  check_same("dropout_add", name, x, y);
  if (p == 0.f) return add(x, y, name);  // dropout's identity: no draw, as dropout's own
  const uint64_t seed = draw_dropout_seed(rng);
  Tensor out = Tensor::empty(x->value.shape());
  dropout_add_forward(out.data(), x->value.data(), y->value.data(), out.numel(), p, seed);
  Recorded r = record("dropout_add", name, out, {x, y});
  if (r.entry)
    r.entry->backward = [p, seed](TapeEntry& e) { dropout_add_op_backward(e, p, seed); };
  return r.out;
}

static void dropout_add_op_backward(TapeEntry& e, float p, uint64_t seed) {
  // out = x + y * mask  =>  dL/dx (+)= G,  dL/dy (+)= G * mask (dropout's backward of G).
  // x first, as add's backward reaches x before dropout's reaches y: where x == y, or x already
  // has a gradient, the additions then come in the two ops' order, and so give their bits. x may
  // take G itself (the residual stream); y's pass reads G after, element by element (in place
  // when x == y took it).
  const Tensor& G = e.out->grad;
  const Var &x = e.inputs[0], &y = e.inputs[1];
  if (x->requires_grad && grad_take(x, G) == nullptr) {
    const GradDst dx = grad_dst(x);
    scale_backward(dx.data, G.data(), 1.f, G.numel(), dx.accumulate);
  }
  if (y->requires_grad) {
    const GradDst dy = grad_dst(y);
    dropout_backward(dy.data, G.data(), G.numel(), p, seed, dy.accumulate);
  }
}

// ---- relu_dropout: dropout(relu(x)) -----------------------------------------------------

static void relu_dropout_op_backward(TapeEntry& e, float p);  // below

Var relu_dropout(const Var& x, float p, Rng& rng, const std::string& name) {
  check_dropout_p("relu_dropout", name, p);
  if (p == 0.f) return relu(x, name);
  const uint64_t seed = draw_dropout_seed(rng);
  Tensor out = Tensor::empty(x->value.shape());
  relu_dropout_forward(out.data(), x->value.data(), out.numel(), p, seed);
  Recorded r = record("relu_dropout", name, out, {x});
  if (r.entry)
    r.entry->backward = [p](TapeEntry& e) { relu_dropout_op_backward(e, p); };
  return r.out;
}

static void relu_dropout_op_backward(TapeEntry& e, float p) {
  // out = relu(x) * mask  =>  dL/dx += G * mask * [x > 0], and mask * [x > 0] is [out > 0] / (1 - p)
  const GradDst dx = grad_dst(e.inputs[0]);
  relu_dropout_backward(dx.data, e.out->grad.data(), e.out->value.data(), e.out->grad.numel(), p, dx.accumulate);
}

// ---- add_rows: out[..., t, :] = x[..., t, :] + rows[t, :] ---------------------------------

static void add_rows_backward(TapeEntry& e);  // below

Var add_rows(const Var& x, const Var& rows, const std::string& name) {
  const Tensor& rv = rows->value;
  const int64_t block = rv.numel();
  if (block == 0 || x->value.numel() % block != 0 || x->value.dim(-1) != rv.dim(-1) ||
      (rv.rank() == 2 && (x->value.rank() < 2 || x->value.dim(-2) != rv.dim(0))))
    throw std::invalid_argument(fmt::format("add_rows '{}': rows {} do not broadcast over {}", name,
                                            shape_str(rv.shape()), shape_str(x->value.shape())));
  Tensor out = Tensor::empty(x->value.shape());
  const int64_t reps = out.numel() / block;
  for (int64_t k = 0; k < reps; k++) add_forward(out.data() + k * block, x->value.data() + k * block, rv.data(), block);
  Recorded r = record("add_rows", name, out, {x, rows});
  if (r.entry)
    r.entry->backward = add_rows_backward;
  return r.out;
}

static void add_rows_backward(TapeEntry& e) {
  // dL/dx (+)= G;  dL/drows (+)= sum over the broadcast copies of G
  const Tensor& G = e.out->grad;
  const Var &xv = e.inputs[0], &rw = e.inputs[1];
  if (xv->requires_grad) {
    const GradDst dx = grad_dst(xv);
    scale_backward(dx.data, G.data(), 1.f, G.numel(), dx.accumulate);
  }
  if (rw->requires_grad) {
    const int64_t blk = rw->value.numel();
    float* drows = grad_dst(rw).zeroed_if_fresh(blk);
    for (int64_t k = 0; k < G.numel() / blk; k++) axpy(drows, 1.f, G.data() + k * blk, blk);
  }
}

}  // namespace attn
