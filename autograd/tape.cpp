// autograd/tape.cpp — recording, the reverse walk and anomaly checks. The tape's views (dump, dot,
// SVG) are in tape_views.cpp, its product count in tape_flops.cpp.
#include <attnlab/autograd/tape.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <attnlab/autograd/registry.h>
#include <attnlab/core/kernels.h>

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

GradDst grad_dst(const Var& v) {
  if (v->grad.defined()) return {v->grad.data(), true};
  v->grad = Tensor::empty(v->value.shape());
  return {v->grad.data(), false};
}

float* grad_take(const Var& v, const Tensor& buffer) {
  if (!g_backward_frees_grads || v->grad.defined() || buffer.numel() != v->value.numel()) return nullptr;
  v->grad = buffer.reshape(v->value.shape());  // shares the storage
  return v->grad.data();
}

float* GradDst::zeroed_if_fresh(int64_t n) const {
  if (!accumulate) std::fill(data, data + n, 0.f);
  return data;
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
  const GradDst seed = grad_dst(loss);  // d(loss)/d(loss) = 1
  seed.data[0] = 1.f;
  struct FreesGrads {  // for grad_take, on this thread, while this walk runs
    bool prev;
    explicit FreesGrads(bool on) : prev(g_backward_frees_grads) { g_backward_frees_grads = on; }
    ~FreesGrads() { g_backward_frees_grads = prev; }
  } frees(!keep_grads);
  for (int i = static_cast<int>(entries.size()) - 1; i >= 0; i--) {
    TapeEntry& e = entries[i];
    if (e.out->grad.defined()) {  // else: does not influence the loss
      if (profile) {
        const double t0 = now_seconds();
        e.backward(e);
        e.bwd_seconds = now_seconds() - t0;
      } else {
        e.backward(e);
      }
      if (anomaly)
        for (const Var& in : e.inputs)
          if (in->grad.defined() && !all_finite(in->grad))
            throw std::runtime_error(fmt::format("anomaly: backward of op '{}' node '{}' (tape #{}) produced NaN/Inf "
                                                 "in the gradient for '{}'",
                                                 e.op, e.out->name, i, in->name));
    }
    if (!keep_grads) {  // every consumer of e.out came later and has run, and so has e itself
      e.out->grad = Tensor();
      e.saved.clear();
      if (e.out != loss) e.out->value.release_storage();  // the shape stays, for whoever counts
    }
  }
}

Var Tape::find(const std::string& name) const {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if (it->out->name == name) return it->out;
  return nullptr;
}

}  // namespace attn
