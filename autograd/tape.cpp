// autograd/tape.cpp — recording, the reverse walk, anomaly checks, and the views of the tape.
#include "autograd/tape.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>

#include "autograd/registry.h"
#include "core/kernels.h"

namespace attn {

static thread_local Tape* g_current_tape = nullptr;
// True while a backward() that frees each entry's output gradient after the entry is running.
static thread_local bool g_backward_frees_grads = false;

static double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Tape* current_tape() { return g_current_tape; }
TapeScope::TapeScope(Tape& tape) : prev_(g_current_tape) { g_current_tape = &tape; }
TapeScope::~TapeScope() { g_current_tape = prev_; }
NoGradScope::NoGradScope() : prev_(g_current_tape) { g_current_tape = nullptr; }
NoGradScope::~NoGradScope() { g_current_tape = prev_; }

Var parameter(const std::string& name, Tensor value) {
  auto v = std::make_shared<Variable>();
  v->name = name;
  v->value = std::move(value);
  v->requires_grad = true;
  return v;
}

Var constant(Tensor value, const std::string& name) {
  auto v = std::make_shared<Variable>();
  v->name = name;
  v->value = std::move(value);
  return v;
}

Tensor& grad_of(const Var& v) {
  if (!v->grad.defined()) v->grad = Tensor::zeros(v->value.shape());
  return v->grad;
}

GradDst grad_dst(const Var& v) {
  if (v->grad.defined()) return {v->grad.data(), true};
  v->grad = Tensor::empty(v->value.shape());
  return {v->grad.data(), false};
}

void add_to_grad(const Var& v, float alpha, const float* g) {
  const GradDst d = grad_dst(v);
  const int64_t n = v->value.numel();
  if (d.accumulate) axpy(d.data, alpha, g, n);
  else if (alpha == 1.f) std::copy(g, g + n, d.data);
  else scale_forward(d.data, g, alpha, n);
}

void pass_grad(TapeEntry& e, const Var& v) {
  if (g_backward_frees_grads && !v->grad.defined()) {
    v->grad = e.out->grad.reshape(v->value.shape());  // shares the storage; e.out lets go of it next
    return;
  }
  add_to_grad(v, 1.f, e.out->grad.data());
}

const Tensor& TapeEntry::get(const std::string& what) const {
  for (auto& [k, t] : saved)
    if (k == what) return t;
  throw std::logic_error("tape entry '" + op + "' saved no tensor named '" + what + "'");
}

Recorded record(const char* op, const std::string& name, Tensor value, std::vector<Var> inputs) {
  if (!is_registered_op(op))  // an op without a name in kOps has no gradcheck entry either
    throw std::logic_error(fmt::format("op '{}' is not in kOps (autograd/registry.h)", op));
  Recorded r;
  r.out = std::make_shared<Variable>();
  r.out->name = name.empty() ? op : name;
  r.out->value = std::move(value);
  Tape* tape = current_tape();
  if (tape && tape->anomaly && !all_finite(r.out->value))
    throw std::runtime_error(fmt::format("anomaly: op '{}' node '{}' (tape #{}) produced NaN/Inf in forward", op,
                                         r.out->name, tape->entries.size()));
  if (!tape) return r;
  bool any = std::any_of(inputs.begin(), inputs.end(), [](const Var& v) { return v->requires_grad; });
  if (!any) return r;
  r.out->requires_grad = true;
  r.out->tape_index = static_cast<int>(tape->entries.size());
  tape->entries.push_back(TapeEntry{op, r.out, std::move(inputs), {}, {}, {}});
  r.entry = &tape->entries.back();
  if (tape->profile) {
    const double t = now_seconds();
    if (tape->profile_mark > 0) r.entry->fwd_seconds = t - tape->profile_mark;
    tape->profile_mark = t;
  }
  return r;
}

void Tape::backward(const Var& loss) {
  if (loss->value.numel() != 1)
    throw std::logic_error("backward() needs a scalar loss, got shape " + shape_str(loss->value.shape()));
  // Intermediate gradients belong to one backward pass; leaves (parameters) accumulate.
  for (TapeEntry& e : entries) e.out->grad = Tensor();
  grad_of(loss).fill(1.f);
  struct Restore {
    bool prev;
    ~Restore() { g_backward_frees_grads = prev; }
  } restore{g_backward_frees_grads};
  g_backward_frees_grads = !keep_grads;
  for (int i = static_cast<int>(entries.size()) - 1; i >= 0; i--) {
    TapeEntry& e = entries[i];
    if (!e.out->grad.defined()) continue;  // does not influence the loss
    if (profile) {
      const double t0 = now_seconds();
      e.backward(e);
      e.bwd_seconds = now_seconds() - t0;
    } else {
      e.backward(e);
    }
    if (!keep_grads) e.out->grad = Tensor();  // every consumer of e.out came later and has run
    if (!anomaly) continue;
    for (const Var& in : e.inputs)
      if (in->grad.defined() && !all_finite(in->grad))
        throw std::runtime_error(fmt::format("anomaly: backward of op '{}' node '{}' (tape #{}) produced NaN/Inf "
                                             "in the gradient for '{}'",
                                             e.op, e.out->name, i, in->name));
  }
}

static std::string input_ref(const Var& v) {
  return v->tape_index >= 0 ? fmt::format("#{}", v->tape_index) : v->name;
}

std::string Tape::dump() const {
  std::string out = fmt::format("{:>4}  {:<14} {:<34} {:<32} {:<16} {:>10} {:>10}\n", "#", "op", "name", "inputs",
                                "shape", "|value|", "|grad|");
  for (size_t i = 0; i < entries.size(); i++) {
    const TapeEntry& e = entries[i];
    std::string ins;
    for (size_t k = 0; k < e.inputs.size(); k++) ins += (k ? ", " : "") + input_ref(e.inputs[k]);
    std::string g = e.out->grad.defined() ? fmt::format("{:.4g}", l2_norm(e.out->grad)) : "-";
    out += fmt::format("{:>4}  {:<14} {:<34} {:<32} {:<16} {:>10.4g} {:>10}\n", i, e.op, e.out->name, ins,
                       shape_str(e.out->value.shape()), l2_norm(e.out->value), g);
  }
  return out;
}

std::string Tape::to_dot() const {
  std::string out = "digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=10];\n";
  std::map<const Variable*, std::string> leaves;
  for (size_t i = 0; i < entries.size(); i++) {
    const TapeEntry& e = entries[i];
    out += fmt::format("  n{} [label=\"#{} {}\\n{}\\n{}\"];\n", i, i, e.op, e.out->name, shape_str(e.out->value.shape()));
    for (const Var& in : e.inputs) {
      std::string src;
      if (in->tape_index >= 0) {
        src = fmt::format("n{}", in->tape_index);
      } else {
        auto it = leaves.find(in.get());
        if (it == leaves.end()) {
          src = fmt::format("l{}", leaves.size());
          leaves[in.get()] = src;
          out += fmt::format("  {} [shape=box, label=\"{}\\n{}\"];\n", src, in->name, shape_str(in->value.shape()));
        } else {
          src = it->second;
        }
      }
      out += fmt::format("  {} -> n{};\n", src, i);
    }
  }
  return out + "}\n";
}

Var Tape::find(const std::string& name) const {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if (it->out->name == name) return it->out;
  return nullptr;
}

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
