// autograd/tape.h — tape-based reverse-mode autodiff (marian/micrograd style).
//
// A Variable is a named value with an optional gradient. Every differentiable op appends
// one TapeEntry (op, node name, inputs, output, named saved tensors, backward) to the
// current Tape; Tape::backward(loss) walks the entries in reverse creation order — no
// topological sort needed — and each backward writes its inputs' gradients by the one rule
// below (grad_dst): the first path into a variable assigns, later ones add, so a Variable used
// twice, like Q in S = Q Qᵀ, receives the sum of both paths.
//
//   Tape tape;                      // records while a TapeScope is alive
//   TapeScope scope(tape);
//   Var w = parameter("w", Tensor::from({2}, {1, 2}));
//   Var y = sum(mul(w, w, "w2"), "loss");
//   tape.backward(y);               // w->grad == 2 w
//   fmt::print("{}", tape.dump());  // one line per entry
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <attnlab/core/tensor.h>

namespace attn {

struct Variable {
  std::string name;          // "enc.0.self_attn.scores"; shown by dump(), to_dot() and gdb
  Tensor value;
  Tensor grad;               // undefined until backward reaches this variable
  bool requires_grad = false;
  int tape_index = -1;       // the entry that produced it; -1 for leaves (parameters, inputs)
};
using Var = std::shared_ptr<Variable>;

Var parameter(const std::string& name, Tensor value);  // a leaf that requires grad
Var constant(Tensor value, const std::string& name = "const");  // a leaf that does not

// ---- How a backward writes a gradient: the one rule -----------------------------------
// For each input v that needs a gradient, a backward asks d = grad_dst(v) once and writes v's
// whole gradient through d:
//   d.accumulate == false  the first consumer of v that the reverse walk reaches: d.data is
//                          fresh, uninitialised memory, and every element must be ASSIGNED;
//   d.accumulate == true   a later consumer: the buffer holds the earlier paths' sum; ADD.
// Backward kernels take d.accumulate (BLAS products d.beta(): 0 or 1) and write `(+)=` by it.
// A writer that can only add (a scatter such as embedding rows, a sum over rows) starts from
// d.zeroed_if_fresh(n), which zero-fills a fresh buffer first. So a variable used twice, like Q
// in S = Q Qᵀ, receives the sum of both paths, and no gradient is zero-filled only to be
// overwritten (that zero-fill, on every gradient, was ~10% of a training step). Ops reach a
// gradient buffer no other way (tests/lint.sh checks it).
struct GradDst {
  float* data;
  bool accumulate;
  float beta() const { return accumulate ? 1.f : 0.f; }
  float* zeroed_if_fresh(int64_t n) const;  // n: v's numel()
};
GradDst grad_dst(const Var& v);
// The rule's one shortcut, for training. A backward that holds a buffer of v's size it will not
// read again — its output's gradient, which a training backward frees right after the entry, or a
// tensor it saved for itself alone — may offer it as v's fresh gradient instead of copying:
//   if (!grad_take(v, buffer)) { const GradDst d = grad_dst(v); ... }  // else: buffer is v's gradient
// It is taken (the buffer's data returned, for a backward that rewrites it in place) only when v
// has no gradient yet and the running backward keeps none for reading (Tape::keep_grads off);
// the backward must leave v's whole gradient in it. Otherwise (nullptr) nothing changes and the
// backward writes through grad_dst. With keep_grads on (inspect, tests, gdb sessions) no buffer
// is ever shared, so every node's gradient stays its own.
float* grad_take(const Var& v, const Tensor& buffer);

struct TapeEntry {
  std::string op;    // op kind: "matmul", "softmax", ...
  Var out;
  std::vector<Var> inputs;
  std::vector<std::pair<std::string, Tensor>> saved;  // e.g. {"probs", P}, {"mean", m}, {"rstd", r}
  std::vector<int32_t> ids;                           // integer inputs (token ids, targets)
  std::function<void(TapeEntry&)> backward;
  double fwd_seconds = 0, bwd_seconds = 0;            // filled when Tape::profile is on
  const Tensor& get(const std::string& what) const;   // a saved tensor by name
};

class Tape {
 public:
  std::vector<TapeEntry> entries;
  bool anomaly = false;  // check every forward output and backward gradient for NaN/Inf
  bool profile = false;  // time each entry: forward = time since the previous entry was recorded
  // Keep every intermediate's gradient and value after backward() so they can be read (inspect,
  // dumps, tests). Training turns it off: as the reverse walk passes an entry (its consumers all
  // came later and have run), its output's gradient, its saved tensors and its output's value
  // are let go — as PyTorch frees its graph inside backward() — so the backward's gradients reuse
  // the activations' memory. The shapes stay; the loss backward() was called on keeps its value;
  // parameters keep their gradients. Read any other intermediate before backward().
  bool keep_grads = true;
  double profile_mark = 0;  // (seconds, steady clock) when the previous entry was recorded

  // Seeds d(loss)/d(loss) = 1 and runs every entry's backward in reverse order.
  void backward(const Var& loss);
  void clear() { entries.clear(); }
  // The views (autograd/tape_views.cpp). Index, op, name, input ids, shape, |value|, |grad| —
  // one line per entry.
  std::string dump() const;
  // Graphviz: leaves as boxes, entries as ellipses labelled "#i op\nname".
  std::string to_dot() const;
  // The same graph drawn as SVG, no tools needed: leaves (parameters, constants) on the left,
  // each entry one column right of its latest input. An input used twice by one entry (Q in
  // Q Qᵀ) gets two arrows, drawn in red, labelled with the operand each one is.
  std::string to_svg() const;
  // The most recent variable with this node name (an intermediate such as "...scores"), or null.
  // After backward its ->grad holds dL/d(that node): the way to capture any gradient.
  Var find(const std::string& name) const;
  // Floating-point operations (2 per multiply-add) of the products on the tape (matmul, linear,
  // gram; autograd/tape_flops.cpp), forward and backward as implemented, counted from their
  // shapes: what a step costs in the work that dominates it (attnlab bench, and the frontier report's cost axis).
  double product_flops() const;
};

// The tape ops record to. Null (the default) means no recording: inference / no-grad.
Tape* current_tape();
class TapeScope {  // makes `tape` current for its lifetime
 public:
  explicit TapeScope(Tape& tape);
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;
 private:
  Tape* prev_;
};
class NoGradScope {  // records nothing for its lifetime
 public:
  NoGradScope();
  ~NoGradScope();
  NoGradScope(const NoGradScope&) = delete;
  NoGradScope& operator=(const NoGradScope&) = delete;
 private:
  Tape* prev_;
};

// Used by op wrappers: makes the output variable and, when recording and some input needs a
// gradient, appends the entry and returns it (else null). Also the anomaly check on forward.
struct Recorded {
  Var out;
  TapeEntry* entry = nullptr;
};
Recorded record(const char* op, const std::string& name, Tensor value, std::vector<Var> inputs);

}  // namespace attn
