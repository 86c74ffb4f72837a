// tests/test_models.cpp — the transformer: parameter counts, cached decoding equal to full
// recomputation, checkpoints, and tiny qk / qq models that must learn the reverse task.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include <attnlab/train/loaded_run.h>
#include <attnlab/train/trainer.h>
#include <attnlab/data/synthetic.h>
#include <attnlab/core/fileio.h>
#include <attnlab/data/batching.h>
#include <attnlab/models/checkpoint.h>
#include "tests/decisions.h"
#include "tests/torch_parity.h"
#include <attnlab/models/blocks.h>
#include <attnlab/models/decode.h>
#include <attnlab/core/kernels.h>

using namespace attn;
namespace fs = std::filesystem;

static ModelConfig tiny(const std::string& preset) {
  ModelConfig c;
  c.vocab = 20;
  c.d_model = 16;
  c.heads = 2;
  c.enc_layers = 2;
  c.dec_layers = 2;
  c.d_ff = 32;
  c.dropout = 0.f;
  c.max_len = 32;
  c.apply_preset(preset);
  return c;
}

TEST_CASE("parameter counts: the model, the formula and the per-variant savings agree") {
  for (auto& p : ModelConfig::preset_names()) {
    INFO(p);
    ModelConfig c = tiny(p);
    Transformer m(c, 1);
    REQUIRE(m.params.count() == count_params(c));
  }
  ModelConfig base;
  base.apply_preset("qk");
  ModelConfig qq = base;
  qq.apply_preset("qq");
  // qq drops W_k (C² + C) in each of the 3 encoder and 3 decoder self-attentions
  REQUIRE(count_params(base) - count_params(qq) == 6 * (256 * 256 + 256));
}

TEST_CASE("--match-params widens a variant to within 0.5% of the baseline") {
  ModelConfig base;
  base.apply_preset("qk");
  for (std::string p : {"qq", "qq-noV-noO", "noV"}) {
    for (std::string widen : {"d_ff", "d_model"}) {
      ModelConfig c = base;
      c.apply_preset(p);
      std::string how = match_params(c, count_params(base), widen);
      INFO(p << " " << widen << ": " << how);
      REQUIRE(std::llabs(count_params(c) - count_params(base)) <= count_params(base) / 200);
    }
  }
}

TEST_CASE("config validation names the bad flag") {
  ModelConfig c = tiny("qk");
  c.d_model = 10;
  c.heads = 4;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("--d-model 10 is not divisible by --heads 4"));
  c = tiny("qk");
  c.d_ff = 0;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("--d-ff"));
  REQUIRE_THROWS_WITH(c.apply_preset("kq"), Catch::Contains("unknown variant 'kq'"));
}

static std::vector<int32_t> some_src(int n, int S, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> v(size_t(n) * S);
  for (int b = 0; b < n; b++)
    for (int s = 0; s < S; s++) v[size_t(b) * S + s] = s == S - 1 - b ? 2 : s > S - 1 - b ? 0 : int32_t(4 + rng.below(16));
  return v;
}

// The paths' difference bound: the log-probabilities of the cached and the full path are
// required below to agree within this (a batch and a sentence alone differ the same way: the
// same sums, in products of other shapes), so a choice by a wider margin than twice it (greedy)
// or 2(t + 1) times it (beam, scores summed over t + 1 steps) is the same on both paths.
static constexpr double kPathDelta = 1e-4;

TEST_CASE("the masks: a padded key hidden from every query of its sentence, a later key from each query") {
  struct PoisonEmpty {  // fresh tensors hold NaN meanwhile: an element a mask leaves unwritten fails
    PoisonEmpty() { Tensor::poison_empty(true); }
    ~PoisonEmpty() { Tensor::poison_empty(false); }
  } poison;
  const float ninf = -std::numeric_limits<float>::infinity();
  const int B = 3, Tq = 4, S = 5;
  for (int pad : {0, 9}) {
    INFO("pad id " << pad);
    const std::vector<int32_t> keys = {7, 8, 0, 0, 0,   // with pad 0: two tokens, then padding
                                       0, 9, 9, 9, 9,   // a pad first (hidden too); with pad 9, four
                                       5, 6, 7, 8, 10};  // no padding either way
    const Tensor pm = padding_mask(keys, B, Tq, S, pad);
    REQUIRE(pm.shape() == Shape{B, Tq, S});
    for (int b = 0; b < B; b++)
      for (int i = 0; i < Tq; i++)
        for (int j = 0; j < S; j++) CHECK(pm.at({b, i, j}) == (keys[size_t(b) * S + j] == pad ? ninf : 0.f));
  }
  const int T = 6;
  const Tensor cm = causal_mask(2, T);
  REQUIRE(cm.shape() == Shape{2, T, T});
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < T; i++)
      for (int j = 0; j < T; j++) CHECK(cm.at({b, i, j}) == (j > i ? ninf : 0.f));
}

TEST_CASE("incremental decoding with the key/value cache equals full recomputation, every preset") {
  DecidedTokens decided;
  for (auto& p : ModelConfig::preset_names()) {
    INFO(p);
    Transformer m(tiny(p), 3);
    const int B = 2, S = 6;
    auto src = some_src(B, S, 4);
    DecodeState st = m.start(src, B, S);
    std::vector<std::vector<int32_t>> prefixes(B, {1});
    Rng rng(9);
    for (int t = 0; t < 5; t++) {
      std::vector<int32_t> last;
      for (auto& pr : prefixes) last.push_back(pr.back());
      Tensor cached = m.step(st, last);
      Tensor full = next_logprobs_full(m, st.memory, src, S, prefixes);
      // compare log-probabilities row by row
      for (int b = 0; b < B; b++) {
        double lse = -1e30, mx = -1e30;
        for (int v = 0; v < 20; v++) mx = std::max(mx, double(cached.at({b, v})));
        double z = 0;
        for (int v = 0; v < 20; v++) z += std::exp(cached.at({b, v}) - mx);
        lse = mx + std::log(z);
        for (int v = 0; v < 20; v++) REQUIRE(cached.at({b, v}) - lse == Approx(full.at({b, v})).margin(kPathDelta));
      }
      for (auto& pr : prefixes) pr.push_back(int32_t(4 + rng.below(16)));
    }
    // and whole translations, greedy and beam, agree token for token wherever the full
    // recomputation's choices are decided by more than the paths' difference (tests/decisions.h)
    std::vector<std::vector<int32_t>> srcs = {{5, 6, 7, 8, 2}, {9, 10, 2}, {4, 2}, {11, 12, 13, 14, 15, 16, 2}};
    for (int beam : {1, 3}) {
      DecodeOptions a, b;
      a.beam = b.beam = beam;
      b.use_cache = false;
      a.max_len = b.max_len = 8;
      std::vector<std::vector<float>> margins;
      b.margins = &margins;
      const auto full = translate_ids(m, srcs, b), cached = translate_ids(m, srcs, a);
      for (size_t i = 0; i < srcs.size(); i++) {
        INFO("beam " << beam << ", sentence " << i);
        if (beam == 1)
          decided.greedy(full[i], cached[i], margins[i], 2 * kPathDelta);
        else
          decided.beam(full[i], cached[i], margins[i], kPathDelta);
      }
    }
  }
  decided.require_enough();
}

TEST_CASE("a cached decode's rows keep their sources through any reorder: runs of one sentence share it") {
  // The source side is kept once per block of g rows, g the length of the first run of one
  // sentence, when every block of g rows holds one sentence (a beam search's rows: the
  // cross-attention takes them as the sentence's queries), else once per row. Every reorder below (into runs, among them, across sentences, into unequal runs,
  // down to one row) must leave each row's log-probabilities those of its own source and prefix.
  for (auto& p : ModelConfig::preset_names()) {
    INFO(p);
    Transformer m(tiny(p), 5);
    const int B = 3, S = 6;
    const std::vector<int32_t> src = some_src(B, S, 8);
    DecodeState st = m.start(src, B, S);
    std::vector<int> sentence = {0, 1, 2};  // each row's source sentence
    std::vector<std::vector<int32_t>> prefixes(B, std::vector<int32_t>{1});
    Rng rng(12);
    auto check_step = [&] {
      std::vector<int32_t> last, row_src;
      for (size_t r = 0; r < prefixes.size(); r++) {
        last.push_back(prefixes[r].back());
        row_src.insert(row_src.end(), src.begin() + sentence[r] * S, src.begin() + (sentence[r] + 1) * S);
      }
      Tensor cached = m.step(st, last);
      const int R = int(prefixes.size());
      Var memory = m.encode(row_src, R, S, Context{});
      Tensor full = next_logprobs_full(m, memory, row_src, S, prefixes);
      std::vector<float> lse(static_cast<size_t>(R));
      logsumexp_rows(lse.data(), cached.data(), R, 20);
      for (int r = 0; r < R; r++)
        for (int v = 0; v < 20; v++) REQUIRE(cached.at({r, v}) - lse[size_t(r)] == Approx(full.at({r, v})).margin(kPathDelta));
      for (auto& pr : prefixes) pr.push_back(int32_t(4 + rng.below(16)));
    };
    auto reorder = [&](const std::vector<int>& rows, int group) {
      m.reorder(st, rows);
      std::vector<int> s2;
      std::vector<std::vector<int32_t>> p2;
      for (int r : rows) s2.push_back(sentence[size_t(r)]), p2.push_back(prefixes[size_t(r)]);
      sentence = s2, prefixes = p2;
      REQUIRE(st.group == group);
      REQUIRE(st.memory->value.dim(0) == int64_t(rows.size()) / group);
      check_step();
    };
    check_step();                                // one row per sentence
    reorder({0, 0, 1, 1, 2, 2}, 2);              // each sentence twice: a beam of 2
    reorder({1, 0, 3, 3, 4, 5}, 2);              // a beam's reorder within each sentence
    reorder({2, 3, 0, 1, 4, 5}, 2);              // two sentences swap places: same shape, other sources
    reorder({4, 5, 0, 1}, 2);                    // a sentence leaves, the others swap places
    reorder({0, 2, 3}, 1);                       // unequal runs: a source per row
    reorder({2, 2, 0, 0}, 2);                    // back into runs
    reorder({3, 3, 3, 0, 0, 0}, 3);              // longer runs
    reorder({5}, 1);                             // one row left
    REQUIRE_THROWS_WITH(m.reorder(st, {1}), Catch::Contains("row 1 of 1"));
    REQUIRE_THROWS_WITH(m.step(st, {1, 1}), Catch::Contains("2 tokens for 1 rows"));
  }
}

TEST_CASE("sentences translated together get the translations each gets alone, every preset") {
  // A batch pads its sources to the longest, encodes each once, and drops a sentence's rows
  // when its search ends (eos, beam full, or its own length limit); none of it may change a
  // sentence's result. Lengths 1-7: the limits 2S + 10 differ, so sentences leave at different steps.
  Rng rng(11);
  std::vector<std::vector<int32_t>> srcs;
  for (int n : {5, 1, 7, 3, 3, 6, 2}) {
    std::vector<int32_t> s;
    for (int i = 0; i < n - 1; i++) s.push_back(int32_t(4 + rng.below(16)));
    s.push_back(2);
    srcs.push_back(s);
  }
  DecidedTokens decided;
  for (auto& p : ModelConfig::preset_names()) {
    INFO(p);
    Transformer m(tiny(p), 4);
    for (int beam : {1, 3}) {
      INFO("beam " << beam);
      DecodeOptions alone;
      alone.beam = beam;
      alone.batch = 1;
      std::vector<std::vector<float>> margins;
      alone.margins = &margins;
      const auto want = translate_ids(m, srcs, alone);
      std::set<size_t> lengths;
      for (auto& w : want) lengths.insert(w.size());
      REQUIRE(lengths.size() > 1);
      for (int batch : {2, 3, 7, 64}) {
        INFO("batch " << batch);
        DecodeOptions together = alone;
        together.batch = batch;
        together.margins = nullptr;
        const auto got = translate_ids(m, srcs, together);
        // a batch pads the sources and runs other product shapes: its log-probabilities agree
        // with a sentence's alone to the last bits, so its choices are compared where decided
        for (size_t i = 0; i < srcs.size(); i++) {
          INFO("sentence " << i);
          if (beam == 1)
            decided.greedy(want[i], got[i], margins[i], 2 * kPathDelta);
          else
            decided.beam(want[i], got[i], margins[i], kPathDelta);
        }
      }
    }
  }
  decided.require_enough();
}

TEST_CASE("training's backward (gradients freed and handed over) gives the kept backward's gradients, every preset") {
  // keep_grads off frees each intermediate gradient after use, lets reshape and add take their
  // output gradient's buffer instead of copying it, and lets the loss (logits_cross_entropy) hand
  // over the gradients its forward made; the loss and the parameter gradients must not change.
  std::vector<Example> ex = {{{5, 6, 7, 8, 2}, {9, 10, 11}}, {{12, 13, 2}, {14, 15, 16, 17, 18}}, {{4, 2}, {19}}};
  std::vector<const Example*> ptr = {&ex[0], &ex[1], &ex[2]};
  const Batch b = make_batch(ptr, 0, 1, 2);
  for (auto& p : ModelConfig::preset_names()) {
    INFO(p);
    ModelConfig cfg = tiny(p);
    cfg.dropout = 0.1f;
    cfg.label_smoothing = 0.1f;
    Transformer m(cfg, 5);
    std::vector<std::vector<float>> grads[2];
    float losses[2] = {0, 0};
    for (int keep : {1, 0}) {
      m.params.zero_grad();
      Tape tape;
      tape.keep_grads = keep;
      TapeScope scope(tape);
      Rng drop(7);  // the same dropout draws both times
      Var loss = m.loss(b, Context{true, &drop});
      losses[keep] = loss->value.item();
      tape.backward(loss);
      for (auto& prm : m.params.params) grads[keep].push_back(prm->grad.defined() ? prm->grad.to_vector() : std::vector<float>{});
    }
    REQUIRE(losses[0] == losses[1]);
    REQUIRE(grads[0].size() == m.params.params.size());
    for (size_t i = 0; i < grads[0].size(); i++) {
      INFO(m.params.params[i]->name);
      REQUIRE(!grads[1][i].empty());
      REQUIRE(grads[0][i] == grads[1][i]);
    }
  }
}

TEST_CASE("in training each residual sub-layer joins its branch with one dropout_add node; in evaluation an add") {
  std::vector<Example> ex = {{{5, 6, 7, 8, 2}, {9, 10, 11}}, {{12, 13, 2}, {14, 15, 16, 17, 18}}};
  std::vector<const Example*> ptr = {&ex[0], &ex[1]};
  const Batch b = make_batch(ptr, 0, 1, 2);
  for (bool post_ln : {false, true}) {
    INFO("post-LN " << post_ln);
    ModelConfig cfg = tiny("qk");
    cfg.dropout = 0.1f;
    cfg.post_ln = post_ln;
    Transformer m(cfg, 5);
    for (bool train : {true, false}) {
      Tape tape;
      TapeScope scope(tape);
      Rng drop(7);
      m.loss(b, Context{train, &drop});
      int joins = 0;
      for (const TapeEntry& e : tape.entries)
        if (e.out->name.size() > 4 && e.out->name.compare(e.out->name.size() - 4, 4, ".res") == 0) {
          INFO(e.out->name);
          CHECK(e.op == (train ? "dropout_add" : "add"));
          joins++;
        }
      CHECK(joins == 2 * cfg.enc_layers + 3 * cfg.dec_layers);  // self-attention and FFN; the decoder's cross-attention too
    }
  }
}

TEST_CASE("a beam step's best extensions equal sorting all of them: ties, dead rows, -inf, any vocabulary size") {
  Rng rng(11);
  for (bool ties : {true, false})
  for (bool normalised : {true, false})
  for (int V : {5, 31, 32, 33, 100, 4000})
    for (int rows : {1, 3, 5})
      for (size_t keep : {size_t(1), size_t(2 * rows), size_t(2 * rows + 1), size_t(40)}) {
        // Log-probabilities on a coarse grid, so that many tie, or all distinct; some -inf; row 1
        // dead. Or logits and each row's log-normaliser (as the cached decoder gives them): the
        // extensions are then ranked by score + (logit − lse).
        std::vector<float> lp(size_t(rows) * V), scores(static_cast<size_t>(rows)), lse(static_cast<size_t>(rows));
        for (auto& x : lp)
          x = rng.uniform() < 0.02f ? -std::numeric_limits<float>::infinity()
              : ties                ? -std::floor(rng.uniform() * 8.f) / 4.f
                                    : -8.f * rng.uniform();
        for (auto& x : scores) x = -std::floor(rng.uniform() * 4.f) / 4.f;
        for (auto& x : lse) x = normalised ? 0.f : ties ? std::floor(rng.uniform() * 8.f) / 4.f : 3.f * rng.uniform() - 1.f;
        if (rows > 1) scores[1] = -std::numeric_limits<float>::infinity();
        const int pad = 0, bos = V > 2 ? 2 : 1;
        std::vector<std::pair<float, int64_t>> all;
        for (int b = 0; b < rows; b++)
          if (scores[size_t(b)] != -std::numeric_limits<float>::infinity())
            for (int v = 0; v < V; v++)
              if (v != pad && v != bos)
                all.push_back({scores[size_t(b)] + (lp[size_t(b) * V + v] - lse[size_t(b)]), int64_t(b) * V + v});
        std::stable_sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first; });
        if (all.size() > keep) all.resize(keep);
        INFO("V " << V << ", rows " << rows << ", keep " << keep << (ties ? ", tied" : ", distinct")
                  << (normalised ? ", log-probabilities" : ", logits and lse"));
        REQUIRE(best_extensions(scores.data(), lp.data(), normalised ? nullptr : lse.data(), rows, V, keep, pad, bos) == all);
      }
  const float lp[2] = {-1.f, -2.f}, score = 0.f;
  REQUIRE(best_extensions(&score, lp, nullptr, 1, 2, 0, -1, -1).empty());  // nothing asked, nothing returned
}

TEST_CASE("checkpoints round-trip, and a checkpoint of another variant or a damaged file is refused") {
  fs::path d = fs::temp_directory_path() / ("attnlab-ckpt-" + std::to_string(::getpid()));
  fs::create_directories(d);
  Transformer a(tiny("qk"), 1), b(tiny("qk"), 2);
  save_model(a, (d / "a.safetensors").string());
  load_model_weights(b, (d / "a.safetensors").string());
  for (size_t i = 0; i < a.params.params.size(); i++)
    REQUIRE(max_abs_diff(a.params.params[i]->value, b.params.params[i]->value) == 0.f);
  Transformer q(tiny("qq"), 1);
  REQUIRE_THROWS_WITH(load_model_weights(q, (d / "a.safetensors").string()),
                      Catch::Contains("a.safetensors") && Catch::Contains("does not belong to this model"));
  ModelConfig wide = tiny("qk");
  wide.d_ff = 48;
  Transformer w(wide, 1);
  REQUIRE_THROWS_WITH(load_model_weights(w, (d / "a.safetensors").string()),
                      Catch::Contains("enc.0.ff.w1.weight") && Catch::Contains("expects (16, 48)"));
  std::string bytes = read_file((d / "a.safetensors").string());
  write_file_atomic((d / "cut.safetensors").string(), bytes.substr(0, bytes.size() - 10));
  REQUIRE_THROWS_WITH(load_model_weights(b, (d / "cut.safetensors").string()), Catch::Contains("cut.safetensors"));
  fs::remove_all(d);
}

static double reverse_accuracy(const std::string& preset, const std::string& out) {
  TrainConfig cfg;
  cfg.task = "reverse";
  cfg.task_train = 3000;
  cfg.task_eval = 100;
  cfg.variant = preset;
  cfg.model = tiny(preset);
  cfg.model.d_model = 64;
  cfg.model.heads = 4;
  cfg.model.d_ff = 128;
  cfg.model.label_smoothing = 0.f;
  cfg.lr = 3e-3f;
  cfg.warmup = 100;
  cfg.batch_tokens = 600;
  cfg.steps = 900;
  cfg.eval_every = 900;
  cfg.log_every = 100;
  cfg.eval_sentences = 0;
  cfg.beam = 1;
  cfg.threads = 1;
  cfg.quiet = true;
  cfg.out = out;
  REQUIRE(run_training(cfg) == 0);
  LoadedRun run = load_run(out);
  ParallelCorpus test = synthetic_task("reverse", 100, cfg.seed * 7919 + 2);
  DecodeOptions greedy;
  auto hyp = translate_lines(run, test.src, greedy);
  int64_t right = 0, total = 0;
  for (size_t i = 0; i < hyp.size(); i++) {
    auto h = run.tok->encode(hyp[i]), r = run.tok->encode(test.tgt[i]);
    for (size_t k = 0; k < r.size(); k++) right += k < h.size() && h[k] == r[k];
    total += int64_t(r.size());
  }
  return double(right) / double(total);
}

TEST_CASE("tiny qk and qq models learn to reverse sequences (>= 95% token accuracy)", "[slow]") {
  fs::path d = fs::temp_directory_path() / ("attnlab-reverse-" + std::to_string(::getpid()));
  for (std::string p : {"qk", "qq"}) {
    double acc = reverse_accuracy(p, (d / p).string());
    WARN(p << ": token accuracy " << acc);  // the margin above 0.95, shown on each kernel family
    REQUIRE(acc >= 0.95);
  }
  fs::remove_all(d);
}

#include <nlohmann/json.hpp>

#include <attnlab/core/safetensors.h>

TEST_CASE("PyTorch parity: loss and every parameter gradient of a tiny model (optional: needs python3-torch)", "[torch]") {
  skip_unless_torch();
  for (std::string preset : {"qk", "qq", "qq-noself", "qq-normk", "qq-noV-noO"}) {
    INFO(preset);
    fs::path d = fs::temp_directory_path() / ("attnlab-parity-" + preset + "-" + std::to_string(::getpid()));
    fs::create_directories(d);
    ModelConfig cfg = tiny(preset);
    cfg.label_smoothing = 0.1f;
    Transformer m(cfg, 11);
    // A batch with padding on both sides.
    std::vector<Example> ex = {{{5, 6, 7, 8, 2}, {9, 10, 11}}, {{12, 13, 2}, {14, 15, 16, 17, 18}}, {{4, 2}, {19}}};
    std::vector<const Example*> ptr = {&ex[0], &ex[1], &ex[2]};
    Batch b = make_batch(ptr, 0, 1, 2);
    Tape tape;
    Var loss;
    {
      TapeScope scope(tape);
      // Training mode applies label smoothing; dropout is 0, so the pass is deterministic.
      Rng rng(1);
      Context ctx{true, &rng};
      loss = m.loss(b, ctx);
      tape.backward(loss);
    }
    nlohmann::json bj = {{"B", b.B}, {"S", b.S}, {"T", b.T}, {"src", b.src}, {"tgt_in", b.tgt_in}, {"tgt_out", b.tgt_out}};
    check_torch_parity(d, m, cfg, loss, bj);
  }
}
