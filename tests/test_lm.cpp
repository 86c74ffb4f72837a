// tests/test_lm.cpp — the decoder-only language model and the encoder-only masked-token model:
// parameter counts, generation with the cache equal to recomputation for every variant, the
// masking recipe, and tiny models that must learn tasks only attention can solve.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include <attnlab/core/fileio.h>
#include <attnlab/core/safetensors.h>
#include <attnlab/data/batching.h>
#include <attnlab/models/checkpoint.h>
#include "tests/decisions.h"
#include "tests/torch_parity.h"
#include <attnlab/models/generate.h>
#include <attnlab/models/lm.h>
#include <attnlab/nn/optim.h>

using namespace attn;
namespace fs = std::filesystem;

static ModelConfig tiny(const std::string& arch, const std::string& preset, int vocab = 20) {
  ModelConfig c;
  c.arch = parse_arch(arch);
  c.vocab = vocab;
  c.d_model = 16;
  c.heads = 2;
  c.enc_layers = 2;
  c.dec_layers = 3;
  c.d_ff = 32;
  c.dropout = 0.f;
  c.max_len = 32;
  c.apply_preset(preset);
  return c;
}

// The presets that change the self-attention an lm (decoder) or mlm (encoder) has.
static std::vector<std::string> presets_for(const std::string& arch) {
  std::vector<std::string> out;
  for (auto& p : variant_presets())
    if (p.name == "qk" || (arch == "lm" ? p.dec_self : p.enc_self) != "qk") out.push_back(p.name);
  return out;
}

TEST_CASE("a decoder-only lm is self-attention blocks without cross-attention; an mlm the encoder's blocks") {
  for (std::string arch : {"lm", "mlm"})
    for (auto& p : presets_for(arch)) {
      INFO(arch << " " << p);
      ModelConfig c = tiny(arch, p);
      auto m = make_model(c, 1);
      const int64_t C = c.d_model, F = c.d_ff, L = arch == "lm" ? c.dec_layers : c.enc_layers;
      const AttnVariant& v = arch == "lm" ? c.dec_self : c.enc_self;
      const int64_t attn = (C * C + C) * (1 + !v.shared_qk + v.value_proj + v.out_proj);
      const int64_t block = 2 * (2 * C) + attn + (C * F + F + F * C + C);  // two norms, attention, feed-forward
      REQUIRE(m->params.count() == c.vocab * C + L * block + 2 * C);     // + the final norm
      REQUIRE(m->params.count() == count_params(c));
      for (auto& w : m->params.params) REQUIRE(w->name.find("cross_attn") == std::string::npos);
      REQUIRE(m->sites().size() == size_t(L));
      for (auto& [name, site] : m->sites()) REQUIRE(name.rfind(arch == "lm" ? "dec." : "enc.", 0) == 0);
    }
  // a preset that changes only a site the architecture lacks would train qk under another name
  ModelConfig c;
  c.arch = Arch::lm;
  REQUIRE_THROWS_WITH(c.apply_preset("qq-enc"), Catch::Contains("--variant qq-enc: changes no decoder self-attention"));
  c.arch = Arch::mlm;
  REQUIRE_THROWS_WITH(c.apply_preset("qq-dec"), Catch::Contains("--variant qq-dec: changes no encoder self-attention"));
  // the names are read in one place: the flag, config.json
  REQUIRE_THROWS_WITH(parse_arch("gpt"), "--arch: unknown architecture 'gpt' (expected one of: seq2seq, lm, mlm)");
  nlohmann::json j = c.to_json();
  REQUIRE(j.at("arch") == "mlm");
  REQUIRE(ModelConfig::from_json(j).arch == Arch::mlm);
  j["arch"] = "gpt";
  REQUIRE_THROWS_WITH(ModelConfig::from_json(j), "\"arch\": unknown architecture 'gpt' (expected one of: seq2seq, lm, mlm)");
}

// The cached and the full path's logits are required below to agree within this; it bounds the
// paths' difference when their choices are compared (tests/decisions.h).
static constexpr double kPathDelta = 1e-4;

TEST_CASE("generation with the key/value cache gives the logits of full recomputation, every variant") {
  DecidedTokens decided;
  for (auto& p : presets_for("lm")) {
    INFO(p);
    LanguageModel m(tiny("lm", p), 3);
    Rng rng(5);
    std::vector<int32_t> seq = {m.cfg.bos_id};
    LmState st = m.start(1);
    for (int t = 0; t < 12; t++) {
      Tensor cached = m.step(st, {seq.back()});  // (1,V)
      Tensor full = next_logits_full(m, seq);     // (V)
      for (int v = 0; v < m.cfg.vocab; v++) REQUIRE(cached.at({0, v}) == Approx(full.at({v})).margin(kPathDelta));
      seq.push_back(int32_t(4 + rng.below(16)));
    }
    // whole continuations agree token for token, greedy and sampled, wherever the full
    // recomputation's choices are decided by more than the paths' difference (tests/decisions.h)
    for (float temperature : {0.f, 1.f}) {
      for (uint64_t seed : {11, 12, 13}) {
        GenerateOptions a;
        a.max_tokens = 10;
        a.temperature = temperature;
        a.top_k = temperature > 0 ? 5 : 0;
        a.seed = seed;
        GenerateOptions b = a;
        b.use_cache = false;
        std::vector<double> margins;
        b.margins = &margins;
        const std::vector<int32_t> prompt = {5, 6, int32_t(7 + seed % 3)};
        const auto full = generate_ids(m, prompt, b), cached = generate_ids(m, prompt, a);
        INFO("temperature " << temperature << ", seed " << seed);
        // logits within kPathDelta: greedy's gap moves by at most 2δ; each edge of a draw's share
        // by less than 2δ/T, so the draw is decided beyond twice that
        decided.greedy(full, cached, margins, temperature > 0 ? 4 * kPathDelta / temperature : 2 * kPathDelta);
      }
    }
  }
  decided.require_enough();
}

// A batch of B sentences of random real tokens (ids 4..vocab-1), lengths 3..S.
static Batch sentences(int B, int S, int vocab, uint64_t seed) {
  Rng rng(seed);
  Batch b;
  b.B = B;
  b.S = S;
  b.src.assign(size_t(B) * S, 0);
  for (int i = 0; i < B; i++) {
    const int n = 3 + int(rng.below(uint32_t(S - 2)));
    for (int j = 0; j < n; j++) b.src[size_t(i) * S + j] = int32_t(4 + rng.below(uint32_t(vocab - 4)));
  }
  return b;
}

TEST_CASE("masking: 15% of real tokens chosen (at least one a sentence), 80% masked, 10% random, 10% kept") {
  ModelConfig c = tiny("mlm", "qk", 1000);
  const Batch b = sentences(2000, 24, c.vocab, 1);
  Rng rng(7);
  const Masked m = mask_tokens(b, c, &rng);
  int64_t real = 0, chosen = 0, masked = 0, kept = 0, random = 0;
  for (int i = 0; i < b.B; i++) {
    int in_sentence = 0;
    for (int j = 0; j < b.S; j++) {
      const size_t at = size_t(i) * b.S + j;
      if (b.src[at] == c.pad_id) {
        REQUIRE(m.targets[at] == c.pad_id);  // padding is never chosen
        REQUIRE(m.input[at] == c.pad_id);
        continue;
      }
      real++;
      if (m.targets[at] == c.pad_id) {
        REQUIRE(m.input[at] == b.src[at]);  // not chosen: untouched
        continue;
      }
      chosen++;
      in_sentence++;
      REQUIRE(m.targets[at] == b.src[at]);
      if (m.input[at] == c.bos_id) masked++;
      else if (m.input[at] == b.src[at]) kept++;
      else {
        random++;
        REQUIRE(m.input[at] > c.unk_id);
      }
    }
    REQUIRE(in_sentence >= 1);
  }
  // binomial spreads at these counts are under 0.5%; the at-least-one rule adds a little
  CHECK(double(chosen) / double(real) == Approx(0.15).margin(0.01));
  CHECK(double(masked) / double(chosen) == Approx(0.8).margin(0.015));
  CHECK(double(random) / double(chosen) == Approx(0.1).margin(0.01));  // (a random token equal to the old one counts as kept)
  CHECK(double(kept) / double(chosen) == Approx(0.1).margin(0.01));
  // the evaluation mask is fixed per sentence: the same in any batch, on every call
  const Masked f1 = mask_tokens(b, c, nullptr), f2 = mask_tokens(b, c, nullptr);
  REQUIRE(f1.targets == f2.targets);
  Batch first;  // the third sentence alone
  first.B = 1, first.S = b.S;
  first.src.assign(b.src.begin() + 2 * b.S, b.src.begin() + 3 * b.S);
  const Masked alone = mask_tokens(first, c, nullptr);
  REQUIRE(std::equal(alone.targets.begin(), alone.targets.end(), f1.targets.begin() + 2 * b.S));
  REQUIRE(m.targets != f1.targets);  // training draws its own
}

// ---- tiny models that must learn -----------------------------------------------------------

// bos x1..x5 SEP x1..x5 eos over 8 symbols: only the repeat is scored (each of its tokens is
// one of 8 equally likely symbols seen earlier; chance is 1/8).
static Batch repeat_batch(int B, Rng& rng, int pad) {
  const int n = 5, sep = 4;  // symbols 5..12
  Batch b;
  b.B = B;
  b.T = 2 * n + 1;
  b.tgt_in.assign(size_t(B) * b.T, pad);
  b.tgt_out.assign(size_t(B) * b.T, pad);
  for (int i = 0; i < B; i++) {
    std::vector<int32_t> x(n);
    for (auto& t : x) t = int32_t(5 + rng.below(8));
    int32_t* in = b.tgt_in.data() + size_t(i) * b.T;
    int32_t* out = b.tgt_out.data() + size_t(i) * b.T;
    in[0] = 1;
    for (int j = 0; j < n; j++) in[1 + j] = x[j];
    in[1 + n] = sep;
    for (int j = 0; j < n - 1; j++) in[2 + n + j] = x[j];
    for (int j = 0; j < n; j++) out[n + 1 + j] = x[j];  // the prefix and the separator are not scored
    b.tgt_tokens += n;
  }
  return b;
}

// Trains on fresh batches; returns the top-1 accuracy on held-out ones. `frozen` names
// parameters left at their initial values.
static double train_repeat(LanguageModel& m, int steps, const std::vector<std::string>& frozen = {}) {
  std::vector<Var> train;
  for (auto& p : m.params.params)
    if (std::find(frozen.begin(), frozen.end(), p->name) == frozen.end()) train.push_back(p);
  AdamConfig ac;
  ac.lr = 3e-3f;
  Adam opt(train, ac);
  Rng data(1), drop(2);
  for (int s = 0; s < steps; s++) {
    Batch b = repeat_batch(32, data, m.cfg.pad_id);
    m.params.zero_grad();
    Tape tape;
    TapeScope scope(tape);
    Var loss = m.loss(b, Context{true, &drop});
    tape.backward(loss);
    clip_grad_norm(train, 1.0);
    opt.step(ac.lr);
  }
  Rng held(99);
  int64_t right = 0, total = 0;
  for (int i = 0; i < 8; i++) {
    const Scored s = m.score(repeat_batch(64, held, m.cfg.pad_id));
    right += s.correct;
    total += s.tokens;
  }
  return double(right) / double(total);
}

TEST_CASE("a tiny lm learns to repeat a random prefix (>= 95%); without attention it stays near chance", "[slow]") {
  for (std::string p : {"qk", "qq"}) {
    INFO(p);
    ModelConfig c = tiny("lm", p, 13);
    c.d_model = 32;
    c.d_ff = 64;
    c.dec_layers = 2;
    LanguageModel m(c, 1);
    const double acc = train_repeat(m, 600);
    WARN(p << ": repeat accuracy " << acc);
    REQUIRE(acc >= 0.95);
  }
  // The same model with every attention output held at zero (W_o and its bias zeroed and not
  // trained): each position sees only its own token and place, and the repeat cannot be known.
  ModelConfig c = tiny("lm", "qk", 13);
  c.d_model = 32;
  c.d_ff = 64;
  c.dec_layers = 2;
  LanguageModel m(c, 1);
  std::vector<std::string> frozen;
  for (auto& b : m.blocks) {
    for (Var w : {b.self_attn.wo.weight, b.self_attn.wo.bias}) {
      std::fill(w->value.data(), w->value.data() + w->value.numel(), 0.f);
      frozen.push_back(w->name);
    }
  }
  const double acc = train_repeat(m, 600, frozen);
  WARN("no attention: repeat accuracy " << acc << " (chance 0.125)");
  REQUIRE(acc < 0.2);
}

// Sentences "a b c d a b c d": the second half repeats the first, so a masked token can be read
// from its twin four places away; each token alone is one of 8 equally likely symbols.
static Batch twin_batch(int B, Rng& rng) {
  const int n = 4;
  Batch b;
  b.B = B;
  b.S = 2 * n;
  b.src.assign(size_t(B) * b.S, 0);
  for (int i = 0; i < B; i++)
    for (int j = 0; j < n; j++) b.src[size_t(i) * b.S + j] = b.src[size_t(i) * b.S + j + n] = int32_t(4 + rng.below(8));
  return b;
}

TEST_CASE("a tiny mlm fills masked tokens far above the unigram baseline", "[slow]") {
  ModelConfig c = tiny("mlm", "qk", 12);
  c.d_model = 32;
  c.d_ff = 64;
  MaskedLM m(c, 1);
  AdamConfig ac;
  ac.lr = 3e-3f;
  Adam opt(m.params.params, ac);
  Rng data(1), mask(2);
  for (int s = 0; s < 1500; s++) {
    Batch b = twin_batch(32, data);
    m.params.zero_grad();
    Tape tape;
    TapeScope scope(tape);
    tape.backward(m.loss(b, Context{true, &mask}));
    clip_grad_norm(m.params.params, 1.0);
    opt.step(ac.lr);
  }
  Rng held(99);
  int64_t right = 0, total = 0;
  for (int i = 0; i < 8; i++) {
    const Scored s = m.score(twin_batch(64, held));
    right += s.correct;
    total += s.tokens;
  }
  const double acc = double(right) / double(total);
  // The unigram baseline (the most frequent symbol) is right 1/8 of the time. A masked token
  // whose twin is masked too cannot be read (about 15% of them); the rest can.
  WARN("mlm masked-token accuracy " << acc << " (unigram baseline 0.125)");
  REQUIRE(acc >= 0.125 + 0.5);
}

TEST_CASE("PyTorch parity: lm and mlm loss and every parameter gradient (optional: needs python3-torch)", "[torch]") {
  skip_unless_torch();
  for (std::string arch : {"lm", "mlm"})
    for (std::string preset : {"qk", "qq", "qq-noself", "qq-normk", "qq-noV-noO"}) {
      INFO(arch << " " << preset);
      fs::path d = fs::temp_directory_path() / ("attnlab-parity-" + arch + "-" + preset + "-" + std::to_string(::getpid()));
      fs::create_directories(d);
      ModelConfig cfg = tiny(arch, preset);
      cfg.label_smoothing = 0.1f;
      auto m = make_model(cfg, 11);
      // sentences of different lengths: padding in the batch
      std::vector<Example> ex(3);
      const std::vector<std::vector<int32_t>> text = {{5, 6, 7, 8, 9}, {12, 13}, {14, 15, 16, 17, 18, 19, 4}};
      for (size_t i = 0; i < ex.size(); i++) (arch == "lm" ? ex[i].tgt : ex[i].src) = text[i];
      Batch b = make_batch({&ex[0], &ex[1], &ex[2]}, 0, 1, 2);
      Rng draws(1);
      const Masked masked = mask_tokens(b, cfg, &draws);  // the draws the mlm's loss() makes from the same seed
      Tape tape;
      Var loss;
      {
        TapeScope scope(tape);
        Rng same(1);
        loss = m->loss(b, Context{true, &same});  // training mode: label smoothing; dropout is 0
        tape.backward(loss);
      }
      nlohmann::json bj = {{"B", b.B}, {"S", b.S}, {"T", b.T}, {"src", arch == "mlm" ? masked.input : b.src},
                           {"tgt_in", b.tgt_in}, {"tgt_out", b.tgt_out}, {"targets", masked.targets}};
      check_torch_parity(d, *m, cfg, loss, bj);
    }
}

TEST_CASE("--match-params widens an lm or mlm variant back to its own baseline's count (within 0.5%)") {
  for (std::string arch : {"lm", "mlm"})
    for (std::string preset : {"qq", "noV", "qq-noV-noO"})
      for (std::string widen : {"d_ff", "d_model"}) {
        ModelConfig base = tiny(arch, "qk");
        base.d_model = 64, base.d_ff = 256, base.vocab = 1000;
        ModelConfig c = base;
        c.apply_preset(preset);
        const std::string how = match_params(c, count_params(base), widen);
        INFO(arch << " " << preset << " " << widen << ": " << how);
        REQUIRE(count_params(c) < count_params(base) + count_params(base) / 200);
        REQUIRE(count_params(c) > count_params(base) - count_params(base) / 200);
        REQUIRE(make_model(c, 1)->params.count() == count_params(c));
      }
}
