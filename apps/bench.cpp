// apps/bench.cpp — `attnlab bench`: full training steps on synthetic batches, achieved GFLOP/s
// against this machine's measured sgemm peak, and a per-op profile read from the tape.
//
//   attnlab bench --d 256 --heads 4 --layers 3 --ff 1024 --vocab 8000 --batch 64 --len 24 --steps 20 --variant qk
//   attnlab bench --decode-run runs/default-qk --sentences 200     # translation speed: batched, one at a time, no cache
#include <sys/resource.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>

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

// The step's products replayed alone: every matmul, linear, gram and head_* product on the tape, forward and
// backward, with the same shapes and nothing in between (best of 3). The step time minus this is
// what elementwise passes, glue and the products' interplay with them cost: the most that fusing
// elementwise work could ever save. Operands are scratch buffers (a training backward has let go
// of the step's activations; a product's speed does not depend on its numbers). Transposes are
// read from the shapes (a square operand counts as not transposed: the same multiply-adds either way).
// Returns seconds per op kind ("linear", "matmul", "gram", "head_scores", "head_gram",
// "head_context") of the fastest of the 3 replays.
static std::map<std::string, double> replay_products(const Tape& tape) {
  size_t most = 0;
  for (auto& e : tape.entries)
    for (const Var& v : e.inputs) most = std::max(most, size_t(v->value.numel()));
  for (auto& e : tape.entries) {
    most = std::max(most, size_t(e.out->value.numel()));
    if (e.op == "logits_cross_entropy")  // the logits it never keeps: rows x V
      most = std::max(most, size_t(e.inputs[0]->value.dim(0) * e.inputs[1]->value.dim(0)));
  }
  std::vector<float> out_buf(most), a_buf(most, 0.5f), b_buf(most, 0.25f), g_buf(most, 0.125f);
  float* s = out_buf.data();
  const float *x = a_buf.data(), *w = b_buf.data(), *g = g_buf.data();
  auto once = [&]() {
    std::map<std::string, double> t;
    for (auto& e : tape.entries) {
      if (e.op != "linear" && e.op != "matmul" && e.op != "gram" && e.op != "logits_cross_entropy" &&
          e.op.rfind("head_", 0) != 0)
        continue;
      const auto start = Clock::now();
      const Tensor& out = e.out->value;
      if (e.op == "linear") {
        const Var &xv = e.inputs[0], &wv = e.inputs[1];
        const int I = int(wv->value.dim(0)), O = int(wv->value.dim(1)), R = int(xv->value.numel() / I);
        matmul_forward(s, x, w, R, O, I, false, false);
        if (xv->requires_grad) matmul_forward(s, g, w, R, I, O, false, true);
        if (wv->requires_grad) matmul_forward(s, x, g, I, O, R, true, false);
      } else if (e.op == "logits_cross_entropy") {  // its three products whole, as matmul's would be
        const Var &hv = e.inputs[0], &wv = e.inputs[1];
        const int R = int(hv->value.dim(0)), C = int(hv->value.dim(1)), V = int(wv->value.dim(0));
        matmul_forward(s, x, w, R, V, C, false, true);
        if (hv->requires_grad) matmul_forward(s, g, w, R, C, V, false, false);
        if (wv->requires_grad) matmul_forward(s, g, x, V, C, R, true, false);
      } else if (e.op == "matmul") {
        const Tensor &a = e.inputs[0]->value, &b = e.inputs[1]->value;
        const int M = int(out.dim(-2)), N = int(out.dim(-1)), batch = int(out.numel() / (int64_t(M) * N));
        const int K = int(a.numel() / (int64_t(batch) * M));
        const bool ta = a.dim(-2) != M, tb = b.dim(-2) != K;
        matmul_batched(s, x, w, batch, M, N, K, ta, tb);
        if (e.inputs[0]->requires_grad) matmul_batched(s, g, w, batch, M, K, N, false, !tb);
        if (e.inputs[1]->requires_grad) matmul_batched(s, x, g, batch, K, N, M, !ta, false);
      } else if (e.op == "head_scores" || e.op == "head_gram" || e.op == "head_context") {
        // heads side by side (B, T, H·D) against one matrix per head (B, H, Tq, Tk), as the ops read them
        const Tensor& sc = e.op == "head_context" ? e.inputs[0]->value : out;  // the scores' shape
        const int B = int(sc.dim(0)), H = int(sc.dim(1)), Tq = int(sc.dim(2)), Tk = int(sc.dim(3));
        const Tensor& wide = e.op == "head_context" ? out : e.inputs[0]->value;  // (B, Tq, H·D)
        const int D = int(wide.dim(2)) / H;
        const HeadLayout lq = HeadLayout::side_by_side(H, Tq, D), lk = HeadLayout::side_by_side(H, Tk, D),
                         ls = HeadLayout::contiguous(Tq, Tk);
        const bool grad0 = e.inputs[0]->requires_grad, grad1 = e.inputs.size() > 1 && e.inputs[1]->requires_grad;
        if (e.op == "head_scores") {
          matmul_heads(s, ls, x, lq, w, lk, B * H, Tq, Tk, D, false, true);
          if (grad0) matmul_heads(s, lq, g, ls, w, lk, B * H, Tq, D, Tk, false, false);
          if (grad1) matmul_heads(s, lk, g, ls, x, lq, B * H, Tk, D, Tq, true, false);
        } else if (e.op == "head_gram") {
          gram_heads(s, ls, x, lq, B * H, Tq, D, 1.f);
          if (grad0) gram_backward_heads(s, lq, g, ls, x, lq, B * H, Tq, D, 1.f, false);
        } else {
          matmul_heads(s, lq, x, ls, w, lk, B * H, Tq, D, Tk, false, false);
          if (grad0) matmul_heads(s, ls, g, lq, w, lk, B * H, Tq, Tk, D, false, true);
          if (grad1) matmul_heads(s, lk, x, ls, g, lq, B * H, Tk, D, Tq, true, false);
        }
      } else if (e.op == "gram") {
        const Tensor& q = e.inputs[0]->value;
        const int N = int(q.dim(-2)), K = int(q.dim(-1)), batch = int(q.numel() / (int64_t(N) * K));
        gram_batched(s, x, batch, N, K, 1.f);
        if (e.inputs[0]->requires_grad) gram_backward_batched(s, g, x, batch, N, K, 1.f, false);
      }
      t[e.op] += seconds_since(start);
    }
    return t;
  };
  std::map<std::string, double> best;
  double best_total = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    auto t = once();
    double total = 0;
    for (auto& [op, sec] : t) total += sec;
    if (total < best_total) best_total = total, best = t;
  }
  return best;
}

static long max_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

struct BenchOpts {
  int d = 256, heads = 4, layers = 3, ff = 1024, vocab = 8000, batch = 64, len = 24, steps = 20, threads = 0;
  std::string variant = "qk", decode_run;
  int sentences = 200, decode_batch = DecodeOptions{}.batch;
  bool profile = true;
};

// The per-op profile of the timed steps, and the step's products replayed alone.
static void print_profile(const std::map<std::string, std::pair<double, double>>& per_op,
                          std::map<std::string, double> alone, double total, double flops, double peak, int steps) {
  std::vector<std::pair<std::string, std::pair<double, double>>> rows(per_op.begin(), per_op.end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.first + a.second.second > b.second.first + b.second.second; });
  double profiled = 0;
  for (auto& r : rows) profiled += r.second.first + r.second.second;
  fmt::print("per-op profile (ms per step; forward = time since the previous op was recorded; alone = the op's\n"
             "products replayed with nothing between them, same shapes):\n");
  fmt::print("  {:<20} {:>10} {:>10} {:>8} {:>10}\n", "op", "forward", "backward", "share", "alone");
  for (auto& [op, t] : rows) {
    const std::string a = alone.count(op) ? fmt::format("{:.2f}", 1000 * alone[op]) : "";
    fmt::print("  {:<20} {:>10.2f} {:>10.2f} {:>7.1f}% {:>10}\n", op, 1000 * t.first / steps, 1000 * t.second / steps,
               100 * (t.first + t.second) / total, a);
  }
  fmt::print("  {:<20} {:>21.2f} {:>7.1f}%  (optimizer, clipping, batch, freeing, glue)\n", "other", 1000 * (total - profiled) / steps,
             100 * (total - profiled) / total);
  double products_alone = 0;
  for (auto& [op, sec] : alone) products_alone += sec;
  const double step_flops = flops / steps;
  fmt::print("the step's products replayed alone (same shapes, nothing between them): {:.3g} ms, {:.1f} GFLOP/s "
             "({:.0f}% of the step; {:.0f}% of the measured sgemm peak)\n",
             1000 * products_alone, step_flops / products_alone / 1e9, 100 * products_alone / (total / steps),
             100 * step_flops / products_alone / 1e9 / peak);
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
  double peak = measure_sgemm_peak();  // and again after the steps: this VM's speed drifts
  std::map<std::string, std::pair<double, double>> per_op;  // op -> (forward, backward) seconds
  double total = 0, flops = 0;
  std::map<std::string, double> alone;  // the last step's products replayed alone, per op kind
  long steps_rss_kb = 0;
  for (int s = -2; s < o.steps; s++) {  // two warm-up steps
    Batch b = make();
    auto tape = std::make_unique<Tape>();
    auto t = Clock::now();
    tape->profile = o.profile && s >= 0;
    tape->keep_grads = false;  // as in training
    {
      TapeScope scope(*tape);
      model.params.zero_grad();
      Var loss = model.loss(b, Context{true, &drop});
      tape->backward(loss);
      clip_grad_norm(model.params.params, 1.0);
      opt.step(1e-4f);
    }
    double dt = seconds_since(t);
    if (s >= 0) {
      flops += tape->product_flops();
      for (auto& e : tape->entries) {
        per_op[e.op].first += e.fwd_seconds;
        per_op[e.op].second += e.bwd_seconds;
      }
      if (o.profile && s == o.steps - 1) {
        steps_rss_kb = max_rss_kb();  // before the replay's own buffers
        alone = replay_products(*tape);
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
  peak = std::max(peak, measure_sgemm_peak());
  const double tok = double(o.batch) * o.len * o.steps / total;
  const double gflops = flops / total / 1e9;
  fmt::print("attnlab {} d={} heads={} layers={}+{} ff={} vocab={} batch={}x{} threads={}: {:.0f} target tok/s, {:.1f} ms/step, "
             "{:.1f} GFLOP/s ({:.0f}% of measured sgemm peak {:.1f} GFLOP/s), max RSS {:.0f} MiB, params {}\n",
             o.variant, o.d, o.heads, o.layers, o.layers, o.ff, o.vocab, o.batch, o.len, num_threads(), tok,
             1000 * total / o.steps, gflops, 100 * gflops / peak, peak, rss_mib, model.params.count());
  print_machine_line();
  if (o.profile) print_profile(per_op, alone, total, flops, peak, o.steps);
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
