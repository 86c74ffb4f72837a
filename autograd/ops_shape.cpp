// autograd/ops_shape.cpp — embedding lookup, reshape, and the head transpose.
#include <stdexcept>

#include <attnlab/autograd/ops.h>
#include <attnlab/core/kernels.h>

namespace attn {

// ---- embedding: out[n] = table[ids[n]] -------------------------------------------------

static void embedding_op_backward(TapeEntry& e);  // below

Var embedding(const Var& table, const std::vector<int32_t>& ids, const Shape& ids_shape, const std::string& name) {
  const int64_t V = table->value.dim(0), C = table->value.dim(1);
  if (int64_t(ids.size()) != shape_numel(ids_shape))
    throw std::invalid_argument(fmt::format("embedding '{}': {} ids for shape {}", name, ids.size(), shape_str(ids_shape)));
  for (int32_t id : ids)
    if (id < 0 || id >= V) throw std::invalid_argument(fmt::format("embedding '{}': id {} outside table of {}", name, id, V));
  Shape s = ids_shape;
  s.push_back(C);
  Tensor out = Tensor::empty(s);
  embedding_forward(out.data(), ids.data(), table->value.data(), int64_t(ids.size()), int(C));
  Recorded r = record("embedding", name, out, {table});
  if (r.entry) {
    r.entry->ids = ids;
    r.entry->backward = embedding_op_backward;
  }
  return r.out;
}

static void embedding_op_backward(TapeEntry& e) {
  // dtable[ids[n]] += G[n]
  const int C2 = int(e.inputs[0]->value.dim(1));
  float* dtable = grad_dst(e.inputs[0]).zeroed_if_fresh(e.inputs[0]->value.numel());
  embedding_backward(dtable, e.out->grad.data(), e.ids.data(), int64_t(e.ids.size()), C2);
}

// ---- reshape (a view: the output shares the input's storage) ---------------------------

static void reshape_backward(TapeEntry& e);  // below

Var reshape(const Var& x, const Shape& shape, const std::string& name) {
  Tensor out = x->value.reshape(shape);
  Recorded r = record("reshape", name, out, {x});
  if (r.entry)
    r.entry->backward = reshape_backward;
  return r.out;
}

static void reshape_backward(TapeEntry& e) {
  if (grad_take(e.inputs[0], e.out->grad) != nullptr) return;  // same numbers, old shape: G itself
  const GradDst dx = grad_dst(e.inputs[0]);           // dL/dx (+)= G
  scale_backward(dx.data, e.out->grad.data(), 1.f, e.out->grad.numel(), dx.accumulate);
}

// ---- transpose12: (A,B,C,D) -> (A,C,B,D) -------------------------------------------------

static void transpose12_backward(TapeEntry& e, int A, int B, int C, int D);  // below

Var transpose12(const Var& x, const std::string& name) {
  const Tensor& v = x->value;
  if (v.rank() != 4) throw std::invalid_argument("transpose12 '" + name + "': expected rank 4, got " + shape_str(v.shape()));
  const int A = int(v.dim(0)), B = int(v.dim(1)), C = int(v.dim(2)), D = int(v.dim(3));
  Tensor out = Tensor::empty({A, C, B, D});
  permute0213(out.data(), v.data(), A, B, C, D);
  Recorded r = record("transpose12", name, out, {x});
  if (r.entry)
    r.entry->backward = [A, B, C, D](TapeEntry& e) { transpose12_backward(e, A, B, C, D); };
  return r.out;
}

static void transpose12_backward(TapeEntry& e, int A, int B, int C, int D) {
  // the inverse permutation of G
  const GradDst dx = grad_dst(e.inputs[0]);
  if (dx.accumulate) permute0213_add(dx.data, e.out->grad.data(), A, C, B, D);
  else permute0213(dx.data, e.out->grad.data(), A, C, B, D);
}

Var split_heads(const Var& x, int heads, const std::string& name) {
  const int64_t B = x->value.dim(0), T = x->value.dim(1), C = x->value.dim(2);
  if (C % heads != 0) throw std::invalid_argument(fmt::format("split_heads '{}': {} channels over {} heads", name, C, heads));
  return transpose12(reshape(x, {B, T, heads, C / heads}, name + ".view"), name);
}

Var merge_heads(const Var& x, const std::string& name) {
  const int64_t B = x->value.dim(0), H = x->value.dim(1), T = x->value.dim(2), D = x->value.dim(3);
  return reshape(transpose12(x, name + ".t"), {B, T, H * D}, name);
}

}  // namespace attn
