// apps/bench.cpp — `attnlab bench`: full training steps on synthetic batches, achieved GFLOP/s
// against this machine's measured sgemm peak, and a per-op profile read from the tape.
//
//   attnlab bench --d 256 --heads 4 --layers 3 --ff 1024 --vocab 8000 --batch 64 --len 24 --steps 20 --variant qk
//   attnlab bench --decode-run runs/default-qk --sentences 200     # translation speed: batched, one at a time, no cache
#include <sys/resource.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include <attnlab/train/build_info.h>
#include <attnlab/train/loaded_run.h>
#include "apps/commands.h"
#include <attnlab/core/kernels.h>
#include <attnlab/core/runtime.h>
#include <attnlab/core/threads.h>
#include <attnlab/data/corpus.h>
#include <attnlab/models/decode.h>
#include <attnlab/nn/optim.h>

namespace attn {
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// What a benchmark report needs besides the numbers: where and when they were measured, with
// which BLAS kernels and which of attnlab's vectorised loop versions (core/runtime.h).
static void print_machine_line() {
  char when[32] = "unknown date";
  const std::time_t now = std::time(nullptr);
  if (std::tm tm{}; gmtime_r(&now, &tm)) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
  fmt::print("machine: {}; BLAS kernels {}, products threaded by {}, attnlab loops {}; attnlab {}; {}\n",
             machine_description(), blas_kernels(), splits_products() ? "attnlab" : "the BLAS", vector_isa(),
             attnlab_build(), when);
}

// Best of a few 1024³ products: this machine's sgemm peak at the configured thread count
// (bench takes the better of a measurement before and one after the timed steps).
double measure_sgemm_peak() {
  const int n = 1024;
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    auto t = Clock::now();
    matmul_forward(c.data(), a.data(), b.data(), n, n, n, false, false);  // threaded as the step's products
    best = std::max(best, 2.0 * n * n * n / seconds_since(t) / 1e9);
  }
  return best;
}

// Where a replay's products read and write.
//  - Shared (the "alone" replay): every operand one of four scratch buffers, cache-resident after
//    the first product: the products' own speed, what fusing elementwise work could reach at most.
//    (A product's speed does not depend on its numbers, and a training backward has let go of
//    the step's activations by the time the profile reads the tape.)
//  - Spread: a value and a gradient buffer of its own for each tensor the products touch, as the
//    step has them, so that an operand written long before (the activation a weight gradient
//    reads, a whole forward after it was made) comes from memory as it does in the step. An
//    elementwise op's output shares its input's buffers: in the step it was written just before
//    the product reads it.
class ReplayMemory {
 public:
  ReplayMemory(const Tape& tape, bool spread, bool chunked) : spread_(spread), chunked_(chunked) {
    for (auto& e : tape.entries) {
      most_ = std::max(most_, size_t(e.out->value.numel()));
      for (const Var& v : e.inputs) most_ = std::max(most_, size_t(v->value.numel()));
      if (e.op == "logits_cross_entropy")  // the logits it never keeps: rows x V
        most_ = std::max(most_, size_t(e.inputs[0]->value.dim(0) * e.inputs[1]->value.dim(0)));
      if (spread && !is_product(e.op) && !e.inputs.empty() && e.inputs[0]->value.numel() == e.out->value.numel())
        alias_[e.out.get()] = root(e.inputs[0].get());
    }
    if (!spread) out_.resize(most_), a_.assign(most_, 0.5f), b_.assign(most_, 0.25f), g_.assign(most_, 0.125f);
  }
  static bool is_product(const std::string& op) {
    return op == "linear" || op == "matmul" || op == "gram" || op == "logits_cross_entropy" || op.rfind("head_", 0) == 0;
  }
  float* in(const TapeEntry& e, int i) { return spread_ ? buffer(values_, e.inputs[size_t(i)]) : i == 0 ? a_.data() : b_.data(); }
  float* out(const TapeEntry& e) { return spread_ ? buffer(values_, e.out) : out_.data(); }
  float* out_grad(const TapeEntry& e) { return spread_ ? buffer(grads_, e.out) : g_.data(); }
  float* in_grad(const TapeEntry& e, int i) { return spread_ ? buffer(grads_, e.inputs[size_t(i)]) : out_.data(); }
  float* logits(size_t n) {  // the output layer's logits: whole in the alone replay, else one chunk of their own
    if (!chunked_) return out_.data();
    if (logits_.size() < n) logits_.assign(n, 0.f);
    return logits_.data();
  }
  bool spread() const { return spread_; }
  bool chunked() const { return chunked_; }  // the output layer a chunk of rows at a time, as the op goes
  // The memory traffic no product can avoid when none of its data is in cache: `batch` products of
  // (M, K) by (K, N) read each operand once, and read each result (for ownership, or to add onto)
  // and write it once, 8 bytes a float as the bandwidth's in-place passes count them. Not a bound:
  // sgemm re-reads operands larger than its blocks, and strided rows may stream slower.
  void moved(int64_t batch, int64_t M, int64_t N, int64_t K) {
    bytes_ += 4.0 * double(batch) * double(M * K + K * N + 2 * M * N);
  }
  void moved_gram(int64_t batch, int64_t N, int64_t K) {  // a aᵀ, a (N, K): one operand
    bytes_ += 4.0 * double(batch) * double(N * K + 2 * N * N);
  }
  double bytes() const { return bytes_; }

 private:
  const Variable* root(const Variable* v) const {
    for (auto it = alias_.find(v); it != alias_.end(); it = alias_.find(v)) v = it->second;
    return v;
  }
  float* buffer(std::map<const Variable*, std::vector<float>>& m, const Var& v) {
    std::vector<float>& b = m[root(v.get())];
    if (b.empty()) b.assign(size_t(std::max<int64_t>(1, v->value.numel())), 0.f);  // touched now, not while timed
    return b.data();
  }
  bool spread_, chunked_;
  double bytes_ = 0;
  size_t most_ = 0;
  std::vector<float> out_, a_, b_, g_, logits_;
  std::map<const Variable*, const Variable*> alias_;
  std::map<const Variable*, std::vector<float>> values_, grads_;
};

// One entry's products, forward or backward, with the entry's shapes. Transposes are read from the
// shapes (a square operand counts as not transposed: the same multiply-adds either way).
static void replay_entry(const TapeEntry& e, ReplayMemory& m, bool backward) {
  const Tensor& out = e.out->value;
  const bool grad0 = e.inputs[0]->requires_grad, grad1 = e.inputs.size() > 1 && e.inputs[1]->requires_grad;
  if (e.op == "linear") {
    const Var &xv = e.inputs[0], &wv = e.inputs[1];
    const int I = int(wv->value.dim(0)), O = int(wv->value.dim(1)), R = int(xv->value.numel() / I);
    if (!backward) matmul_forward(m.out(e), m.in(e, 0), m.in(e, 1), R, O, I, false, false), m.moved(1, R, O, I);
    if (backward && grad0) matmul_forward(m.in_grad(e, 0), m.out_grad(e), m.in(e, 1), R, I, O, false, true), m.moved(1, R, I, O);
    if (backward && grad1) matmul_forward(m.in_grad(e, 1), m.in(e, 0), m.out_grad(e), I, O, R, true, false), m.moved(1, I, O, R);
  } else if (e.op == "logits_cross_entropy") {  // all of it in the forward, as the op does
    if (backward) return;
    const Var &hv = e.inputs[0], &wv = e.inputs[1];
    const int R = int(hv->value.dim(0)), C = int(hv->value.dim(1)), V = int(wv->value.dim(0));
    // Alone: its three products whole, as matmul's would be; spread, and the products as the step
    // runs them: a chunk of rows at a time, as the op goes.
    const int rows = m.chunked() ? int(logits_chunk_rows(R, C)) : R;
    for (int r0 = 0; r0 < R; r0 += rows) {
      const int n = std::min(rows, R - r0);
      float* z = m.logits(size_t(n) * V);
      const float* h = m.in(e, 0) + (m.spread() ? int64_t(r0) * C : 0);
      matmul_forward(z, h, m.in(e, 1), n, V, C, false, true), m.moved(1, n, V, C);
      if (grad0) matmul_forward(m.in_grad(e, 0) + (m.spread() ? int64_t(r0) * C : 0), m.chunked() ? z : m.out_grad(e),
                                m.in(e, 1), n, C, V, false, false), m.moved(1, n, C, V);
      if (grad1) matmul_forward(m.in_grad(e, 1), m.chunked() ? z : m.out_grad(e), h, V, C, n, true, false, 1.f,
                                r0 > 0 ? 1.f : 0.f), m.moved(1, V, C, n);
    }
  } else if (e.op == "matmul") {
    const Tensor &a = e.inputs[0]->value, &b = e.inputs[1]->value;
    const int M = int(out.dim(-2)), N = int(out.dim(-1)), batch = int(out.numel() / (int64_t(M) * N));
    const int K = int(a.numel() / (int64_t(batch) * M));
    const bool ta = a.dim(-2) != M, tb = b.dim(-2) != K;
    if (!backward) matmul_batched(m.out(e), m.in(e, 0), m.in(e, 1), batch, M, N, K, ta, tb), m.moved(batch, M, N, K);
    if (backward && grad0)
      matmul_batched(m.in_grad(e, 0), m.out_grad(e), m.in(e, 1), batch, M, K, N, false, !tb), m.moved(batch, M, K, N);
    if (backward && grad1)
      matmul_batched(m.in_grad(e, 1), m.in(e, 0), m.out_grad(e), batch, K, N, M, !ta, false), m.moved(batch, K, N, M);
  } else if (e.op == "head_scores" || e.op == "head_gram" || e.op == "head_context") {
    // heads side by side (B, T, H·D) against one matrix per head (B, H, Tq, Tk), as the ops read them
    const Tensor& sc = e.op == "head_context" ? e.inputs[0]->value : out;  // the scores' shape
    const int B = int(sc.dim(0)), H = int(sc.dim(1)), Tq = int(sc.dim(2)), Tk = int(sc.dim(3));
    const Tensor& wide = e.op == "head_context" ? out : e.inputs[0]->value;  // (B, Tq, H·D)
    const int D = int(wide.dim(2)) / H;
    const HeadLayout lq = HeadLayout::side_by_side(H, Tq, D), lk = HeadLayout::side_by_side(H, Tk, D),
                     ls = HeadLayout::contiguous(Tq, Tk);
    const float *x = m.in(e, 0), *w = e.inputs.size() > 1 ? m.in(e, 1) : nullptr, *g = m.out_grad(e);
    if (e.op == "head_scores") {
      if (!backward) matmul_heads(m.out(e), ls, x, lq, w, lk, B * H, Tq, Tk, D, false, true), m.moved(B * H, Tq, Tk, D);
      if (backward && grad0)
        matmul_heads(m.in_grad(e, 0), lq, g, ls, w, lk, B * H, Tq, D, Tk, false, false), m.moved(B * H, Tq, D, Tk);
      if (backward && grad1)
        matmul_heads(m.in_grad(e, 1), lk, g, ls, x, lq, B * H, Tk, D, Tq, true, false), m.moved(B * H, Tk, D, Tq);
    } else if (e.op == "head_gram") {
      if (!backward) gram_heads(m.out(e), ls, x, lq, B * H, Tq, D, 1.f), m.moved_gram(B * H, Tq, D);
      if (backward && grad0)
        gram_backward_heads(m.in_grad(e, 0), lq, g, ls, x, lq, B * H, Tq, D, 1.f, false), m.moved(B * H, Tq, D, Tq);
    } else {
      if (!backward) matmul_heads(m.out(e), lq, x, ls, w, lk, B * H, Tq, D, Tk, false, false), m.moved(B * H, Tq, D, Tk);
      if (backward && grad0)
        matmul_heads(m.in_grad(e, 0), ls, g, lq, w, lk, B * H, Tq, Tk, D, false, true), m.moved(B * H, Tq, Tk, D);
      if (backward && grad1)
        matmul_heads(m.in_grad(e, 1), lk, x, ls, g, lq, B * H, Tk, D, Tq, true, false), m.moved(B * H, Tk, D, Tq);
    }
  } else if (e.op == "gram") {
    const Tensor& q = e.inputs[0]->value;
    const int N = int(q.dim(-2)), K = int(q.dim(-1)), batch = int(q.numel() / (int64_t(N) * K));
    if (!backward) gram_batched(m.out(e), m.in(e, 0), batch, N, K, 1.f), m.moved_gram(batch, N, K);
    if (backward && grad0)
      gram_backward_batched(m.in_grad(e, 0), m.out_grad(e), m.in(e, 0), batch, N, K, 1.f, false), m.moved(batch, N, K, N);
  }
}

// The fastest of `reps` replays (seconds per op kind; the fastest by their total): what both
// replays below report.
template <class Replay>
static std::map<std::string, double> fastest_of(int reps, Replay once) {
  std::map<std::string, double> best;
  double best_total = 1e30;
  for (int rep = 0; rep < reps; rep++) {
    auto t = once();
    double total = 0;
    for (auto& [op, sec] : t) total += sec;
    if (total < best_total) best_total = total, best = t;
  }
  return best;
}

// The step's products replayed: every matmul, linear, gram and head_* product on the tape, the
// forward's in order and then the backward's in reverse, as the step runs them, with nothing in
// between (the best of `reps`, after one untimed). On shared scratch (spread = false) the step
// time minus this is what elementwise passes, glue and the products' interplay with them cost:
// the most that fusing elementwise work could ever save. Spread (ReplayMemory) it is what the products take with
// their operands where the step has them. Returns seconds per op kind ("linear", "matmul",
// "gram", "head_scores", "head_gram", "head_context", "logits_cross_entropy") of the fastest replay,
// and in *bytes one replay's products' unavoidable memory traffic (ReplayMemory::moved).
static std::map<std::string, double> replay_products(const Tape& tape, bool spread, double* bytes = nullptr,
                                                     bool chunked = false, int reps = 3) {
  ReplayMemory memory(tape, spread, spread || chunked);
  auto once = [&]() {
    std::map<std::string, double> t;
    for (bool backward : {false, true})
      for (size_t k = 0; k < tape.entries.size(); k++) {
        const TapeEntry& e = tape.entries[backward ? tape.entries.size() - 1 - k : k];
        if (!ReplayMemory::is_product(e.op)) continue;
        const auto start = Clock::now();
        replay_entry(e, memory, backward);
        t[e.op] += seconds_since(start);
      }
    return t;
  };
  once();  // every buffer touched (and a chunk's logits allocated) before the timed replays
  const double bytes_before = memory.bytes();
  std::map<std::string, double> best = fastest_of(reps, once);
  if (bytes) *bytes = (memory.bytes() - bytes_before) / reps;
  return best;
}

// The step's other kernels replayed: each elementwise op's forward and backward kernels, the
// output layer's exponentials (cross_entropy_forward_backward, chunk by chunk as the op goes) and
// its weight gradient's add onto the parameter's, and the linear layers' bias gradients, with the
// entry's shapes, on scratch of their own that stays in cache, nothing between them (the best of
// `reps`, after one untimed). Where the step's own kernel could cost more, the replay takes the cheaper case: the softmax
// without a mask, every gradient assigned rather than added onto, and a gradient the backward
// hands over as it is (grad_take: the residual stream's, the hidden state's at the output layer)
// not replayed. With the products as the step runs them, in cache, the least time a step built from
// these kernels, unfused, could take.
class KernelScratch {
 public:
  float* get(const std::string& slot, int64_t n) {  // grows the slot (moving it) when n is more than it holds
    std::vector<float>& b = slots_[slot];
    if (int64_t(b.size()) < n) b.assign(size_t(std::max<int64_t>(n, 1)), 0.5f);
    return b.data();
  }
  const int32_t* targets(int64_t n) {
    if (int64_t(targets_.size()) < n) targets_.assign(size_t(n), 0);
    return targets_.data();
  }

 private:
  std::map<std::string, std::vector<float>> slots_;
  std::vector<int32_t> targets_;
};

// One entry's other kernels, forward or backward, as a job to time: empty where there are none (a
// view, a product's entry); *known = false for an op this replay does not know. The scratch is
// sized here, so that the timed jobs only run kernels.
static std::function<void()> kernel_job(const TapeEntry& e, KernelScratch& k, float p, bool backward, bool* known) {
  *known = true;
  const int64_t n = e.out->value.numel();
  const uint64_t seed = 0x5eed;
  const bool grad0 = !e.inputs.empty() && e.inputs[0]->requires_grad;
  const bool grad1 = e.inputs.size() > 1 && e.inputs[1]->requires_grad;
  const bool one_input_op = e.op == "softmax" || e.op == "dropout" || e.op == "relu_dropout" || e.op == "relu" ||
                            e.op == "scale";
  if (backward && one_input_op && !grad0) return {};  // the step's backward makes nothing there either
  float *x = k.get("x", n), *y = k.get("y", n), *out = k.get("out", n), *g = k.get("g", n), *dx = k.get("dx", n);
  if (e.op == "layernorm") {
    const int C = int(e.inputs[1]->value.numel());
    const int64_t R = n / C;
    float *w = k.get("w", C), *dw = k.get("dw", C), *db = k.get("db", C), *mean = k.get("mean", R), *rstd = k.get("rstd", R);
    if (!backward) return [=] { layernorm_forward(out, mean, rstd, x, w, w, R, C); };
    return [=] { layernorm_backward(grad0 ? dx : nullptr, dw, db, g, x, w, mean, rstd, R, C, false); };
  }
  if (e.op == "softmax") {
    const Tensor& v = e.out->value;
    const int Tk = int(v.dim(-1)), Tq = int(v.dim(-2)), H = v.rank() == 4 ? int(v.dim(1)) : 1;
    const int B = int(n / (int64_t(H) * Tq * Tk));
    if (!backward) return [=] { softmax_forward(out, x, nullptr, B, H, Tq, Tk, 0.125f); };  // no mask: the least
    return [=] { softmax_backward(dx, g, out, n / Tk, Tk, 0.125f, false); };
  }
  if (e.op == "dropout") {
    if (!backward) return [=] { dropout_forward(out, x, n, p, seed); };
    return [=] { dropout_backward(dx, g, n, p, seed, false); };
  }
  if (e.op == "dropout_add") {  // x's gradient is the output's, handed over
    if (!backward) return [=] { dropout_add_forward(out, x, y, n, p, seed); };
    if (!grad1) return {};
    return [=] { dropout_backward(dx, g, n, p, seed, false); };
  }
  if (e.op == "relu_dropout") {
    if (!backward) return [=] { relu_dropout_forward(out, x, n, p, seed); };
    return [=] { relu_dropout_backward(dx, g, out, n, p, false); };
  }
  if (e.op == "relu") {
    if (!backward) return [=] { relu_forward(out, x, n); };
    return [=] { relu_backward(dx, g, out, n, false); };
  }
  if (e.op == "add") {
    if (!backward) return [=] { add_forward(out, x, y, n); };
    return [=] { scale_backward(dx, g, 1.f, n, false); };  // one input may take the gradient itself; the other copies it
  }
  if (e.op == "scale") {
    if (!backward) return [=] { scale_forward(out, x, 0.5f, n); };
    return [=] { scale_backward(dx, g, 0.5f, n, false); };
  }
  if (e.op == "add_rows") {
    const int64_t blk = e.inputs[1]->value.numel();
    float* rows = k.get("rows", blk);
    if (!backward) return [=] { for (int64_t r = 0; r < n / blk; r++) add_forward(out + r * blk, x + r * blk, rows, blk); };
    return [=] {
      if (grad0) scale_backward(dx, g, 1.f, n, false);
      if (grad1)
        for (int64_t r = 0; r < n / blk; r++) axpy(rows, 1.f, g + r * blk, blk);
    };
  }
  if (e.op == "embedding") {
    const int C = int(e.inputs[0]->value.dim(1));
    const int32_t* ids = e.ids.data();
    const int64_t N = int64_t(e.ids.size());
    float* table = k.get("table", e.inputs[0]->value.numel());
    if (!backward) return [=] { embedding_forward(out, ids, table, N, C); };
    if (!grad0) return {};
    return [=] { embedding_backward(table, g, ids, N, C); };
  }
  if (e.op == "linear") {  // its products are replay_products'; the bias's gradient is here
    if (!backward || e.inputs.size() < 3 || !e.inputs[2]->requires_grad) return {};
    const int O = int(e.inputs[1]->value.dim(1));
    float* db = k.get("db", O);
    return [=] { bias_backward(db, g, n / O, O); };
  }
  if (e.op == "logits_cross_entropy") {
    const int64_t R = e.inputs[0]->value.dim(0), C = e.inputs[0]->value.dim(1), V = e.inputs[1]->value.dim(0);
    if (backward) {  // the weight's gradient, made in the forward, added onto the parameter's (kept between steps)
      if (!grad1) return {};
      float *made = k.get("dw_made", V * C), *param = k.get("dw_param", V * C);
      return [=] { axpy(param, 1.f, made, V * C); };
    }
    const int64_t rows = logits_chunk_rows(R, C);  // the exponentials between its products
    float* z = k.get("logits", rows * V);
    const int32_t* targets = k.targets(rows);
    return [=] {
      for (int64_t r0 = 0; r0 < R; r0 += rows) {
        const int64_t m = std::min(rows, R - r0);
        int64_t counted = 0;
        cross_entropy_forward_backward(z, &counted, targets, m, int(V), 0.1f, -1, 1.f / float(R));
      }
    };
  }
  if (e.op == "reshape" || ReplayMemory::is_product(e.op)) return {};
  *known = false;
  return {};
}

static std::map<std::string, double> replay_kernels(const Tape& tape, float p, std::set<std::string>* skipped,
                                                    int reps = 3) {
  KernelScratch scratch;
  std::vector<std::pair<std::string, std::function<void()>>> jobs;  // the forward's in order, then the backward's
  // Twice: the first pass grows the scratch to its largest, so that no job of the second holds a
  // buffer a later one's growth moved.
  for (int pass = 0; pass < 2; pass++)
    for (bool backward : {false, true})
      for (size_t k = 0; k < tape.entries.size(); k++) {
        const TapeEntry& e = tape.entries[backward ? tape.entries.size() - 1 - k : k];
        bool known = true;
        std::function<void()> job = kernel_job(e, scratch, p, backward, &known);
        if (!known) skipped->insert(e.op);
        if (job && pass == 1) jobs.emplace_back(e.op, std::move(job));
      }
  auto once = [&]() {
    std::map<std::string, double> t;
    for (auto& [op, job] : jobs) {
      const auto start = Clock::now();
      job();
      t[op] += seconds_since(start);
    }
    return t;
  };
  once();  // every buffer touched
  return fastest_of(reps, once);
}

// The optimizer's part of the step alone: zeroing the gradients, their norm and Adam's update (the
// clipping folded into it), the best of `reps`, on the model's own tensors after the timed steps.
static double replay_optimizer(ParamStore& params, Adam& opt, int reps = 3) {
  double best = 1e30;
  for (int rep = 0; rep < reps; rep++) {
    const auto start = Clock::now();
    params.zero_grad();
    const GradNorm clip = grad_norm(params.params, 1.0);
    opt.step(1e-4f, clip.scale);
    best = std::min(best, seconds_since(start));
  }
  return best;
}

// Best of a few in-place passes over 64 MiB, far larger than the caches: the bytes per second one
// pass reads and writes here (8 per float), at the configured thread count.
static double measure_bandwidth() {
  std::vector<float> a(size_t(16) << 20, 1.f);
  double best = 1e30;
  for (int rep = 0; rep < 8; rep++) {
    auto t = Clock::now();
    scale_forward(a.data(), a.data(), 1.0000001f, int64_t(a.size()));
    best = std::min(best, seconds_since(t));
  }
  return 8.0 * double(a.size()) / best;
}

static long max_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

static double sum_of(const std::map<std::string, double>& m) {
  double s = 0;
  for (auto& [op, sec] : m) s += sec;
  return s;
}
static double median(std::vector<double> v) {  // v not empty
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
static double least(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
static double most(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

struct BenchOpts {
  int d = 256, heads = 4, layers = 3, ff = 1024, vocab = 8000, batch = 64, len = 24, steps = 20, threads = 0;
  std::string variant = "qk", decode_run;
  int sentences = 200, decode_batch = DecodeOptions{}.batch;
  int pairs = 5;  // rounds of a step and its replays in turn (bench_train)
  bool profile = true;
};

// The per-op profile of the timed steps, and the step's products replayed, on shared scratch
// (alone) and spread as the step lays its tensors out.
static void print_profile(const std::map<std::string, std::pair<double, double>>& per_op,
                          std::map<std::string, double> alone, std::map<std::string, double> spread,
                          const std::map<std::string, double>& as_run, std::map<std::string, double> kernels,
                          const std::set<std::string>& skipped, double total,
                          double flops, double peak, int steps, double bytes, double bandwidth) {
  std::vector<std::pair<std::string, std::pair<double, double>>> rows(per_op.begin(), per_op.end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.first + a.second.second > b.second.first + b.second.second; });
  double profiled = 0;
  for (auto& r : rows) profiled += r.second.first + r.second.second;
  fmt::print("per-op profile (ms per step; forward = time since the previous op was recorded; alone = the op's\n"
             "products replayed with nothing between them, same shapes; spread = the same on a buffer of their own\n"
             "for each tensor, as the step has them; kernels = the op's other kernels, forward and backward, replayed\n"
             "alone: elementwise passes, the output layer's exponentials, the bias gradients, the optimizer's):\n");
  fmt::print("  {:<20} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10}\n", "op", "forward", "backward", "share", "alone", "spread",
             "kernels");
  const auto ms_or_blank = [](const std::map<std::string, double>& m, const std::string& op) {
    return m.count(op) ? fmt::format("{:.2f}", 1000 * m.at(op)) : std::string();
  };
  for (auto& [op, t] : rows)
    fmt::print("  {:<20} {:>10.2f} {:>10.2f} {:>7.1f}% {:>10} {:>10} {:>10}\n", op, 1000 * t.first / steps,
               1000 * t.second / steps, 100 * (t.first + t.second) / total, ms_or_blank(alone, op),
               ms_or_blank(spread, op), ms_or_blank(kernels, op));
  fmt::print("  {:<20} {:>21.2f} {:>7.1f}% {:>10} {:>10} {:>10}  (optimizer, clipping, batch, freeing, glue)\n", "other",
             1000 * (total - profiled) / steps, 100 * (total - profiled) / total, "", "", ms_or_blank(kernels, "other"));
  const double products_alone = sum_of(alone), products_spread = sum_of(spread), step = total / steps;
  const double step_flops = flops / steps;
  fmt::print("the step's products replayed alone (same shapes, nothing between them): {:.1f} ms, {:.1f} GFLOP/s "
             "({:.0f}% of the step; {:.0f}% of the measured sgemm peak)\n",
             1000 * products_alone, step_flops / products_alone / 1e9, 100 * products_alone / step,
             100 * step_flops / products_alone / 1e9 / peak);
  fmt::print("the same spread over the step's tensors (operands from memory where the step's come from memory): "
             "{:.1f} ms, {:.0f}% of the step, {:.2f}x alone\n",
             1000 * products_spread, 100 * products_spread / step, products_spread / products_alone);
  fmt::print("their operands read once and results written once (8 bytes a float: read for ownership or to add onto, "
             "and written): {:.2f} MB per step; at the measured {:.1f} GB/s (in-place passes over 64 MiB) {:.2f} ms, "
             "against {:.2f} ms spread - alone\n",
             bytes / 1e6, bandwidth / 1e9, 1000 * bytes / bandwidth, 1000 * (products_spread - products_alone));
  // The step's least time with these kernels, unfused: its products as it runs them (the output
  // layer in its chunks at d_model 64, which "alone" runs whole) and every other kernel, each in
  // cache. Its products alone over that is the most efficiency such a step can show; below 0.9 a
  // faster step needs the elementwise work inside the products (or cheaper kernels).
  const double kernels_alone = sum_of(kernels), products_as_run = sum_of(as_run), floor = products_as_run + kernels_alone;
  std::string not_replayed;
  for (const std::string& op : skipped) not_replayed += (not_replayed.empty() ? "; not replayed: " : ", ") + op;
  fmt::print("the step's other kernels replayed alone (elementwise ops forward and backward, the output layer's "
             "exponentials and weight gradient's add, the bias gradients, zeroing, the gradient norm and Adam; same "
             "shapes, nothing between them{}): {:.2f} ms; with the products as the step runs them, in cache "
             "({:.2f} ms), {:.2f} ms, so a step of these kernels, unfused, is at most {:.3f} products alone\n",
             not_replayed, 1000 * kernels_alone, 1000 * products_as_run, 1000 * floor, products_alone / floor);
  // The same with the products spread, their operands where the step keeps them (the output layer
  // in its chunks as the step runs it): a step of these kernels, unfused, with no glue, that pays
  // its products' placement as the spread replay pays it. A reference, not a ceiling: the step
  // can beat it (it did in 19 of 48 runs on AMD VM 8, docs/benchmarks.md), possibly because its
  // operands are less far away than a buffer of their own each puts them. A step near it has
  // little glue left to lose; beyond it may need its data nearer or faster kernels.
  const double kept = products_spread + kernels_alone;
  fmt::print("with the products' operands where the step keeps them (spread, {:.2f} ms) and these kernels, {:.2f} ms: "
             "{:.3f} products alone\n",
             1000 * products_spread, 1000 * kept, products_alone / kept);
}


static void bench_train(const BenchOpts& o) {
  set_threads(o.threads);
  ModelConfig cfg;
  cfg.vocab = o.vocab;
  cfg.d_model = o.d;
  cfg.heads = o.heads;
  cfg.enc_layers = cfg.dec_layers = o.layers;
  cfg.d_ff = o.ff;
  cfg.dropout = 0.1f;
  cfg.max_len = std::max(256, o.len + 2);
  cfg.apply_preset(o.variant);
  Transformer model(cfg, 1);
  Adam opt(model.params.params, AdamConfig{});
  Rng rng(5), drop(6);
  auto make = [&]() {
    Batch b;
    b.B = o.batch;
    b.S = b.T = o.len;
    for (int i = 0; i < o.batch * o.len; i++) {
      b.src.push_back(int32_t(4 + rng.below(uint32_t(o.vocab - 4))));
      b.tgt_in.push_back(int32_t(4 + rng.below(uint32_t(o.vocab - 4))));
      b.tgt_out.push_back(int32_t(4 + rng.below(uint32_t(o.vocab - 4))));
    }
    b.src_tokens = b.tgt_tokens = int64_t(o.batch) * o.len;
    return b;
  };
  // One training step on a fresh batch, recorded on `tape`: seconds, the activations' freeing
  // excepted (the caller times that after reading the tape).
  auto step = [&](Tape& tape) {
    Batch b = make();
    const auto t = Clock::now();
    tape.keep_grads = false;  // as in training
    {
      TapeScope scope(tape);
      model.params.zero_grad();
      Var loss = model.loss(b, Context{true, &drop});
      tape.backward(loss);
      const GradNorm clip = grad_norm(model.params.params, 1.0);
      opt.step(1e-4f, clip.scale);  // clipped inside the update, as training does
    }
    return seconds_since(t);
  };
  // The output layer a chunk of rows at a time (logits_chunk_rows: d_model 64 and below)?
  auto output_chunked = [](const Tape& tape) {
    bool chunks = false;
    for (auto& e : tape.entries)
      if (e.op == "logits_cross_entropy")
        chunks = chunks || logits_chunk_rows(e.inputs[0]->value.dim(0), e.inputs[0]->value.dim(1)) < e.inputs[0]->value.dim(0);
    return chunks;
  };
  double peak = measure_sgemm_peak();  // and again after the steps: this VM's speed drifts
  std::map<std::string, std::pair<double, double>> per_op;  // op -> (forward, backward) seconds
  double total = 0, flops = 0;
  std::map<std::string, double> alone, spread;  // the last step's products replayed, per op kind
  std::map<std::string, double> as_run;          // the same in cache, the output layer chunked as the step runs it
  std::map<std::string, double> kernels;         // and its other kernels
  std::set<std::string> skipped;                 // ops whose kernels that replay does not know
  double bytes = 0;  // the spread replay's products' unavoidable memory traffic
  long steps_rss_kb = 0;
  for (int s = -2; s < o.steps; s++) {  // two warm-up steps
    auto tape = std::make_unique<Tape>();
    tape->profile = o.profile && s >= 0;
    double dt = step(*tape);
    if (s >= 0) {
      flops += tape->product_flops();
      for (auto& e : tape->entries) {
        per_op[e.op].first += e.fwd_seconds;
        per_op[e.op].second += e.bwd_seconds;
      }
      if (o.profile && s == o.steps - 1) {
        steps_rss_kb = max_rss_kb();  // before the replay's own buffers
        alone = replay_products(*tape, false);
        as_run = output_chunked(*tape) ? replay_products(*tape, false, nullptr, true) : alone;
        spread = replay_products(*tape, true, &bytes);
        kernels = replay_kernels(*tape, cfg.dropout, &skipped);
        kernels["other"] = replay_optimizer(model.params, opt);  // the last step's gradients
      }
    }
    // Freeing the step's activations belongs to the step too (PyTorch frees its graph inside
    // backward()); it is timed apart only so that the profile above can read the tape first.
    const auto t_free = Clock::now();
    tape.reset();
    dt += seconds_since(t_free);
    if (s >= 0) total += dt;
  }
  // The steps' high-water, before the closing sgemm's (and a profile's replay's) own buffers.
  const double rss_mib = double(steps_rss_kb > 0 ? steps_rss_kb : max_rss_kb()) / 1024.0;
  // A step and its replays in turn, `pairs` times, each ratio taken within its round: the replays
  // above run seconds after the timed steps, and a shared VM's speed can move by a fifth to a half
  // in that time (docs/benchmarks.md, "An Intel VM"). One step and one replay of each kind per
  // round, as the step itself is timed once. (A round's step follows the last round's replays,
  // which leave other data in the caches than a step before it would: if anything, the rounds'
  // steps are the slower for it.)
  std::vector<double> pair_step, pair_alone, pair_kernels, pair_efficiency, pair_at_most, pair_kept;
  for (int i = 0; o.profile && i < o.pairs; i++) {
    auto tape = std::make_unique<Tape>();
    tape->profile = true;  // as the timed steps above
    double dt = step(*tape);
    const double a = sum_of(replay_products(*tape, false, nullptr, false, 1));
    const double r = output_chunked(*tape) ? sum_of(replay_products(*tape, false, nullptr, true, 1)) : a;
    std::set<std::string> unknown;  // as `skipped` above
    const double k = sum_of(replay_kernels(*tape, cfg.dropout, &unknown, 1)) + replay_optimizer(model.params, opt, 1);
    const double sp = sum_of(replay_products(*tape, true, nullptr, true, 1));  // spread, as the profile's
    const auto t_free = Clock::now();  // the step's freeing, timed as above
    tape.reset();
    dt += seconds_since(t_free);
    pair_step.push_back(dt), pair_alone.push_back(a), pair_kernels.push_back(k);
    pair_efficiency.push_back(a / dt), pair_at_most.push_back(a / (r + k)), pair_kept.push_back(a / (sp + k));
  }
  peak = std::max(peak, measure_sgemm_peak());
  const double tok = double(o.batch) * o.len * o.steps / total;
  const double gflops = flops / total / 1e9;
  fmt::print("attnlab {} d={} heads={} layers={}+{} ff={} vocab={} batch={}x{} threads={}: {:.0f} target tok/s, {:.1f} ms/step, "
             "{:.1f} GFLOP/s ({:.0f}% of measured sgemm peak {:.1f} GFLOP/s), max RSS {:.0f} MiB, params {}\n",
             o.variant, o.d, o.heads, o.layers, o.layers, o.ff, o.vocab, o.batch, o.len, num_threads(), tok,
             1000 * total / o.steps, gflops, 100 * gflops / peak, peak, rss_mib, model.params.count());
  print_machine_line();
  if (o.profile) print_profile(per_op, alone, spread, as_run, kernels, skipped, total, flops, peak, o.steps, bytes, measure_bandwidth());
  if (!pair_step.empty())
    fmt::print("the step and its replays in turn, {} times (each ratio within its round, so that the machine's drift "
               "between the figures above cancels; medians, then the least and most): step {:.2f} ms, products alone "
               "{:.2f} ms, other kernels {:.2f} ms; efficiency {:.3f} ({:.3f}-{:.3f}), a step of these kernels, unfused, "
               "at most {:.3f} ({:.3f}-{:.3f}) products alone, and with the products' operands where the step keeps "
               "them {:.3f} ({:.3f}-{:.3f})\n",
               pair_step.size(), 1000 * median(pair_step), 1000 * median(pair_alone), 1000 * median(pair_kernels),
               median(pair_efficiency), least(pair_efficiency), most(pair_efficiency), median(pair_at_most),
               least(pair_at_most), most(pair_at_most), median(pair_kept), least(pair_kept), most(pair_kept));
}

static void bench_decode(const BenchOpts& o) {
  set_threads(o.threads);
  if (!std::filesystem::exists(o.decode_run + "/config.json"))
    throw std::runtime_error("--decode-run " + o.decode_run + ": not a run directory (no config.json)");
  LoadedRun run = load_run(o.decode_run);
  const std::string corpus = run.cfg.corpus.empty() ? default_corpus_dir() : run.cfg.corpus;
  CorpusSplits c = load_corpus_dir(corpus, run.cfg.src_lang, run.cfg.tgt_lang);
  std::vector<std::string> src(c.test.src.begin(), c.test.src.begin() + std::min<size_t>(size_t(o.sentences), c.test.size()));
  print_machine_line();
  for (int beam : {1, 5}) {
    std::vector<std::string> first;
    for (auto [cache, batch] : {std::pair{true, o.decode_batch}, {true, 1}, {false, 1}}) {
      DecodeOptions opt;
      opt.beam = beam;
      opt.use_cache = cache;
      opt.batch = batch;
      auto t = Clock::now();
      const std::vector<std::string> out = translate_lines(run, src, opt);
      const double s = seconds_since(t);
      const std::string how = cache ? fmt::format("with kv cache, {} at a time", batch) : "without kv cache, 1 at a time";
      fmt::print("decode {} beam {} {:<30}: {:6.1f} sentences/s ({} sentences, {:.1f} s){}\n", o.decode_run, beam, how,
                 double(src.size()) / s, src.size(), s,
                 first.empty() ? "" : out == first ? ", same translations" : ", DIFFERENT translations");
      if (first.empty()) first = out;
    }
  }
}

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOpts>();
  CLI::App* cmd = app.add_subcommand("bench", "training-step speed on synthetic batches (or decoding speed with --decode-run)");
  cmd->add_option("--d", o->d, "d_model")->check(whole_number(1));
  cmd->add_option("--heads", o->heads)->check(whole_number(1));
  cmd->add_option("--layers", o->layers, "encoder and decoder layers each")->check(whole_number(1));
  cmd->add_option("--ff", o->ff, "d_ff")->check(whole_number(1));
  cmd->add_option("--vocab", o->vocab)->check(whole_number(8, 1 << 20));
  cmd->add_option("--batch", o->batch)->check(whole_number(1));
  cmd->add_option("--len", o->len, "source and target length")->check(whole_number(1));
  cmd->add_option("--steps", o->steps, "timed steps (after 2 warm-up steps)")->check(whole_number(1));
  cmd->add_option("--variant", o->variant, "attention preset");
  cmd->add_option("--threads", o->threads, "threads (default: ATTNLAB_THREADS or all cores)")->check(whole_number(0, 1024));
  cmd->add_option("--pairs", o->pairs,
                  "rounds of one step and then its products and other kernels replayed, each ratio within its round "
                  "(0: none)")
      ->check(whole_number(0, 1000));
  cmd->add_option("--decode-run", o->decode_run, "benchmark greedy and beam-5 translation of this run's test set instead");
  cmd->add_option("--sentences", o->sentences, "test sentences to decode with --decode-run")->check(whole_number(1));
  cmd->add_option("--decode-batch", o->decode_batch, "sentences decoded together with --decode-run (also timed: 1)")
      ->check(whole_number(1, 4096));
  cmd->callback([o]() {
    if (o->decode_run.empty()) bench_train(*o);
    else bench_decode(*o);
  });
}

}  // namespace attn
