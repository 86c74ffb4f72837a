// tests/test_nn.cpp — attention variants against a plain reference implementation (forward
// and gradients), the QQᵀ identities, masks, layers and optimizers.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include <attnlab/autograd/tape.h>
#include <attnlab/core/kernels.h>
#include <attnlab/core/threads.h>
#include <attnlab/nn/attention.h>
#include <attnlab/nn/layers.h>
#include <attnlab/nn/kv_cache.h>
#include <attnlab/nn/optim.h>

using namespace attn;

// ---- a plain, double-precision reference of multi-head attention -------------------------
// out = [softmax(mask + Q_h K_hᵀ/√D) V_h]_h Wo + bo, with the variant's changes written out.
static std::vector<double> reference_attention(const MultiHeadAttention& m, const Tensor& X, const Tensor& KV,
                                               const Tensor& mask) {
  const int B = int(X.dim(0)), Tq = int(X.dim(1)), Tk = int(KV.dim(1)), C = m.d_model, H = m.heads, D = C / H;
  auto proj = [&](const Tensor& in, int T, const Linear* l) {  // (B,T,C) in double
    std::vector<double> out(size_t(B) * T * C);
    for (int b = 0; b < B; b++)
      for (int t = 0; t < T; t++)
        for (int o = 0; o < C; o++) {
          double acc = l ? l->bias->value[o] : 0.0;
          for (int i = 0; i < C; i++)
            acc += double(in.at({b, t, i})) * (l ? l->weight->value.at({i, o}) : (i == o ? 1.0 : 0.0));
          out[(size_t(b) * T + t) * C + o] = acc;
        }
    return out;
  };
  auto Q = proj(X, Tq, &m.wq);
  auto K = proj(KV, Tk, m.variant.shared_qk ? &m.wq : &m.wk);  // qq: keys through W_q
  auto V = proj(KV, Tk, m.variant.value_proj ? &m.wv : nullptr);
  std::vector<double> ctx(size_t(B) * Tq * C, 0.0);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < Tq; i++) {
        std::vector<double> s(static_cast<size_t>(Tk), 0.0);
        double mx = -1e300;
        for (int j = 0; j < Tk; j++) {
          double knorm = 0;
          for (int d = 0; d < D; d++) knorm += K[(size_t(b) * Tk + j) * C + h * D + d] * K[(size_t(b) * Tk + j) * C + h * D + d];
          knorm = m.variant.normk ? std::sqrt(knorm) : 1.0;
          double dot = 0;
          for (int d = 0; d < D; d++) dot += Q[(size_t(b) * Tq + i) * C + h * D + d] * K[(size_t(b) * Tk + j) * C + h * D + d] / knorm;
          s[j] = dot / std::sqrt(double(D)) + mask.at({b, i, j});
          mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (int j = 0; j < Tk; j++) z += (s[j] = std::exp(s[j] - mx));
        for (int j = 0; j < Tk; j++)
          for (int d = 0; d < D; d++) ctx[(size_t(b) * Tq + i) * C + h * D + d] += s[j] / z * V[(size_t(b) * Tk + j) * C + h * D + d];
      }
  if (!m.variant.out_proj) return ctx;
  std::vector<double> out(ctx.size());
  for (int r = 0; r < B * Tq; r++)
    for (int o = 0; o < C; o++) {
      double acc = m.wo.bias->value[o];
      for (int i = 0; i < C; i++) acc += ctx[size_t(r) * C + i] * m.wo.weight->value.at({i, o});
      out[size_t(r) * C + o] = acc;
    }
  return out;
}

static Tensor randn(const Shape& s, uint64_t seed, float sc = 1.f) {
  Rng rng(seed);
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); i++) t[i] = rng.normal() * sc;
  return t;
}

static Tensor causal(int B, int T) {
  Tensor m({B, T, T});
  for (int b = 0; b < B; b++)
    for (int i = 0; i < T; i++)
      for (int j = i + 1; j < T; j++) m.at({b, i, j}) = -std::numeric_limits<float>::infinity();
  return m;
}

TEST_CASE("every attention variant matches the plain reference in output and gradients") {
  const int B = 2, T = 4, C = 8, H = 2;
  for (std::string spec : {"qk", "qq", "qq+nogram", "qq+noself", "qq+normk", "qk+noV", "qk+noO", "qq+noV+noO", "qk+normk"}) {
    for (bool use_causal : {false, true}) {
      INFO("variant " << spec << (use_causal ? " causal" : ""));
      ParamStore ps;
      Rng rng(5);
      AttnVariant v = AttnVariant::parse(spec);
      MultiHeadAttention m(ps, "attn", C, H, v, 0.f, rng);
      for (auto& p : ps.params) p->value = randn(p->value.shape(), std::hash<std::string>{}(p->name) % 1000, 0.5f);
      Var x = parameter("x", randn({B, T, C}, 9));
      Tensor mask = use_causal ? causal(B, T) : Tensor({B, T, T});
      if (v.noself) apply_noself(mask);
      Tensor W = randn({B, T, C}, 10);  // L = Σ out ⊙ W

      Tape tape;
      TapeScope scope(tape);
      Var out = m.forward(x, x, mask, Context{});
      std::vector<double> ref = reference_attention(m, x->value, x->value, mask);
      for (int64_t i = 0; i < out->value.numel(); i++) REQUIRE(out->value[i] == Approx(ref[size_t(i)]).margin(1e-4));
      tape.backward(sum(mul(out, constant(W))));

      // Gradients of the reference by central differences (double), for W_q and the input.
      auto ref_loss = [&]() {
        auto r = reference_attention(m, x->value, x->value, mask);
        double l = 0;
        for (size_t i = 0; i < r.size(); i++) l += r[i] * W[int64_t(i)];
        return l;
      };
      for (Var p : {m.wq.weight, x}) {
        for (int64_t k = 0; k < p->value.numel(); k += 3) {
          const float orig = p->value[k];
          p->value[k] = orig + 1e-3f;
          const double lp = ref_loss();
          p->value[k] = orig - 1e-3f;
          const double lm = ref_loss();
          p->value[k] = orig;
          REQUIRE(p->grad[k] == Approx((lp - lm) / 2e-3).margin(2e-3).epsilon(1e-2));
        }
      }
    }
  }
}

TEST_CASE("QQᵀ scores are symmetric with diagonal |q_i|²/√D; a causal mask breaks the symmetry") {
  ParamStore ps;
  Rng rng(2);
  MultiHeadAttention m(ps, "sa", 6, 1, AttnVariant::parse("qq"), 0.f, rng);
  Var x = parameter("x", randn({1, 5, 6}, 3));
  Tape tape;
  TapeScope scope(tape);
  m.forward(x, x, Tensor({1, 5, 5}), Context{});
  const Tensor& S = tape.find("sa.scores")->value;
  const Tensor& Q = tape.find("sa.q")->value;
  for (int i = 0; i < 5; i++) {
    double qn = 0;
    for (int d = 0; d < 6; d++) qn += Q.at({0, i, d}) * Q.at({0, i, d});  // Q (B, T, H·D), one head
    REQUIRE(S.at({0, 0, i, i}) == Approx(qn / std::sqrt(6.0)).epsilon(1e-5));
    for (int j = 0; j < 5; j++) REQUIRE(S.at({0, 0, i, j}) == S.at({0, 0, j, i}));
  }
  REQUIRE(tape.find("sa.scores") == tape.find("sa.scores"));
  // The score op's inputs: QQᵀ reads Q (the head_gram op has a single input, used twice).
  bool found = false;
  for (auto& e : tape.entries)
    if (e.out->name == "sa.scores") found = e.op == "head_gram" && e.inputs[0]->name == "sa.q";
  REQUIRE(found);
  std::map<std::string, Tensor> probs;
  Context observe;
  observe.attention_probs = &probs;
  m.forward(x, x, causal(1, 5), observe);
  REQUIRE(probs.size() == 1);
  const Tensor& P = probs.at(m.name);
  REQUIRE(P.at({0, 0, 0, 1}) == 0.f);
  REQUIRE(P.at({0, 0, 1, 0}) > 0.f);
}

TEST_CASE("noself masks the diagonal unless nothing else is visible") {
  Tensor m = causal(1, 3);
  apply_noself(m);
  REQUIRE(m.at({0, 0, 0}) == 0.f);  // row 0 sees only itself: allowed
  REQUIRE(std::isinf(m.at({0, 1, 1})));
  REQUIRE(m.at({0, 1, 0}) == 0.f);
  REQUIRE(std::isinf(m.at({0, 2, 2})));
}

TEST_CASE("variants own exactly the projections they use") {
  auto count = [](const std::string& spec) {
    ParamStore ps;
    Rng rng(1);
    MultiHeadAttention m(ps, "a", 8, 2, AttnVariant::parse(spec), 0.f, rng);
    return std::make_pair(ps.count(), ps.find("a.wk.weight") != nullptr);
  };
  REQUIRE(count("qk") == std::make_pair<int64_t, bool>(4 * (64 + 8), true));
  REQUIRE(count("qq") == std::make_pair<int64_t, bool>(3 * (64 + 8), false));
  REQUIRE(count("qq+noV+noO").first == 64 + 8);
  REQUIRE_THROWS_WITH(AttnVariant::parse("kq"), Catch::Contains("unknown attention variant 'kq'"));
  REQUIRE(AttnVariant::parse("qq+noself+noO").str() == "qq+noself+noO");
  ParamStore ps;
  Rng rng(1);
  REQUIRE_THROWS_WITH(MultiHeadAttention(ps, "bad", 10, 3, AttnVariant{}, 0.f, rng), Catch::Contains("multiple of heads 3"));
}

TEST_CASE("the feed-forward layer records ReLU and dropout as one op only in training with dropout") {
  // relu_dropout in training; relu and dropout apart with GELU's path; no dropout at all in
  // evaluation or at p = 0. The ops on the tape name what ran.
  auto ops = [](bool gelu, float p, bool train) {
    ParamStore ps;
    Rng rng(1);
    FeedForward ff(ps, "ff", 8, 16, gelu, p, rng);
    Tape tape;
    TapeScope scope(tape);
    Var x = constant(Tensor::full({3, 8}, 0.5f), "x");
    Rng draws(2);
    ff(x, Context{train, &draws});
    std::vector<std::string> names;
    for (const TapeEntry& e : tape.entries) names.push_back(e.op + " " + e.out->name);
    return names;
  };
  using V = std::vector<std::string>;
  REQUIRE(ops(false, 0.1f, true) == V{"linear ff.w1", "relu_dropout ff.act", "linear ff.w2"});
  REQUIRE(ops(false, 0.1f, false) == V{"linear ff.w1", "relu ff.act", "linear ff.w2"});
  REQUIRE(ops(false, 0.f, true) == V{"linear ff.w1", "relu ff.act", "linear ff.w2"});
  REQUIRE(ops(true, 0.1f, true) == V{"linear ff.w1", "gelu ff.act", "dropout ff.drop", "linear ff.w2"});
}

TEST_CASE("normk makes every key unit length") {
  ParamStore ps;
  Rng rng(4);
  MultiHeadAttention m(ps, "sa", 8, 2, AttnVariant::parse("qq+normk"), 0.f, rng);
  Var x = parameter("x", randn({1, 3, 8}, 5));
  Tape tape;
  TapeScope scope(tape);
  m.forward(x, x, Tensor({1, 3, 3}), Context{});
  const Tensor& K = tape.find("sa.k_unit")->value;
  for (int64_t r = 0; r < K.numel() / 4; r++) {
    double n = 0;
    for (int d = 0; d < 4; d++) n += K[r * 4 + d] * K[r * 4 + d];
    REQUIRE(n == Approx(1.0).epsilon(1e-4));
  }
}

TEST_CASE("cached decoding, one position at a time, equals causal self-attention over the whole sequence") {
  // The cache appends each position in place and attends over all of them (nn/kv_cache.h);
  // position t of one causal forward over T positions must come out the same, every variant
  // (17 positions: past the cache's first capacity of 16, so it also grows once).
  const int B = 3, T = 17, C = 8;
  for (const char* spec : {"qk", "qq", "qq+noself", "qq+normk", "qk+noself", "qq+noV+noO"}) {
    INFO(spec);
    ParamStore ps;
    Rng rng(3);
    MultiHeadAttention m(ps, "sa", C, 2, AttnVariant::parse(spec), 0.f, rng);
    Tensor X = randn({B, T, C}, 9);
    NoGradScope ng;
    Var x = constant(X);
    const Tensor full = m.forward(x, x, causal(B, T), Context{})->value;
    KVCache cache;
    for (int t = 0; t < T; t++) {
      Tensor xt({B, 1, C});
      for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) xt.at({b, 0, c}) = X.at({b, t, c});
      Var x1 = constant(xt);
      const Tensor step = m.forward(x1, x1, Tensor({B, 1, t + 1}), Context{}, &cache, true)->value;
      for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) REQUIRE(step.at({b, 0, c}) == Approx(full.at({b, t, c})).margin(1e-5));
    }
    REQUIRE(cache.len == T);
  }
}

TEST_CASE("the cache reorders rows by index: a beam search's histories stay each row's own") {
  // Rows are reordered (repeats, a new order, fewer rows, then more rows than slots) between
  // appends; each row's attention must equal attention over the history it was given, kept here
  // by copying (the plain way the cache avoids).
  const int H = 2, D = 4;
  KVCache cache;
  std::vector<std::vector<std::vector<float>>> hist_k(4), hist_v(4);  // row -> positions -> H*D
  uint64_t seed = 40;
  auto append = [&](int R) {
    Tensor k = randn({R, H, 1, D}, seed++), v = randn({R, H, 1, D}, seed++);
    cache.append(k, v);
    for (int r = 0; r < R; r++) {
      hist_k[size_t(r)].push_back(std::vector<float>(k.data() + r * H * D, k.data() + (r + 1) * H * D));
      hist_v[size_t(r)].push_back(std::vector<float>(v.data() + r * H * D, v.data() + (r + 1) * H * D));
    }
  };
  auto reorder = [&](const std::vector<int>& rows) {
    cache.reorder(rows);
    std::vector<std::vector<std::vector<float>>> k(rows.size()), v(rows.size());
    for (size_t i = 0; i < rows.size(); i++) k[i] = hist_k[size_t(rows[i])], v[i] = hist_v[size_t(rows[i])];
    hist_k = k, hist_v = v;
  };
  auto check = [&](int R) {
    Tensor q = randn({R, H, 1, D}, seed++);
    const int T = cache.len;
    Tensor mask({R, 1, T});
    mask.at({1, 0, 0}) = -std::numeric_limits<float>::infinity();  // row 1 does not see position 0
    Tensor probs;
    const Tensor o = cache.attend(q, mask, 0.5f, false, &probs);
    for (int r = 0; r < R; r++)
      for (int h = 0; h < H; h++) {
        std::vector<double> p(static_cast<size_t>(T));
        double z = 0, top = -1e30;
        for (int t = 0; t < T; t++) {
          double s = 0;
          for (int d = 0; d < D; d++) s += double(q.at({r, h, 0, d})) * hist_k[size_t(r)][size_t(t)][size_t(h * D + d)];
          p[size_t(t)] = 0.5 * s + mask.at({r, 0, t});
          top = std::max(top, p[size_t(t)]);
        }
        for (auto& x : p) z += (x = std::exp(x - top));
        for (int d = 0; d < D; d++) {
          double expect = 0;
          for (int t = 0; t < T; t++) expect += p[size_t(t)] / z * hist_v[size_t(r)][size_t(t)][size_t(h * D + d)];
          REQUIRE(o.at({r, h, 0, d}) == Approx(expect).margin(1e-5));
        }
        REQUIRE(probs.at({r, h, 0, 0}) == Approx(p[0] / z).margin(1e-6));
      }
  };
  append(3);
  append(3);
  check(3);
  reorder({2, 2, 0});  // repeats: two rows share a history
  append(3);
  check(3);
  reorder({1, 0});  // fewer rows: a sentence left the batch
  for (int i = 0; i < 16; i++) append(2);  // past the first capacity: the cache grows
  check(2);
  reorder({1, 0, 1, 0});  // more rows than slots: copied into new slots, once
  append(4);
  check(4);
  REQUIRE(cache.len == 20);
  REQUIRE_THROWS_WITH(cache.reorder({4}), Catch::Contains("row 4 of 4"));
  REQUIRE_THROWS_WITH(cache.append(randn({3, H, 1, D}, 1), randn({3, H, 1, D}, 2)), Catch::Contains("does not fit"));
}

TEST_CASE("Adam's first step moves each weight by lr against its gradient's sign") {
  Var w = parameter("w", Tensor::from({3}, {1.f, -2.f, 0.5f}));
  w->grad = Tensor::from({3}, {0.3f, -4.f, 1e-3f});
  Adam opt({w}, AdamConfig{0.1f, 0.9f, 0.98f, 1e-9f, 0.f});
  opt.step(0.1f);  // m̂ = g, v̂ = g²  =>  Δ = -lr · g/|g|
  REQUIRE(w->value[0] == Approx(0.9f));
  REQUIRE(w->value[1] == Approx(-1.9f));
  REQUIRE(w->value[2] == Approx(0.4f));
  Var u = parameter("u", Tensor::from({1}, {2.f}));
  u->grad = Tensor::from({1}, {0.f});
  Adam adamw({u}, AdamConfig{0.1f, 0.9f, 0.98f, 1e-9f, 0.5f});
  adamw.step(0.1f);  // decoupled decay only: 2 - 0.1 * 0.5 * 2
  REQUIRE(u->value[0] == Approx(1.9f));
}

TEST_CASE("schedules and clipping") {
  Schedule s{"inverse_sqrt", 1e-3f, 100, 1000, 0.f};
  REQUIRE(schedule_lr(s, 50) == Approx(5e-4f));
  REQUIRE(schedule_lr(s, 100) == Approx(1e-3f));
  REQUIRE(schedule_lr(s, 400) == Approx(5e-4f));
  Schedule c{"cosine", 1e-3f, 100, 1100, 0.f};
  REQUIRE(schedule_lr(c, 600) == Approx(5e-4f));
  REQUIRE(schedule_lr(c, 1100) == Approx(0.f).margin(1e-9));
  REQUIRE_THROWS_WITH(schedule_lr(Schedule{"linear"}, 1), Catch::Contains("unknown schedule 'linear'"));
  Var a = parameter("a", Tensor::from({2}, {0, 0}));
  a->grad = Tensor::from({2}, {3.f, 4.f});
  REQUIRE(clip_grad_norm({a}, 1.0) == Approx(5.0));
  REQUIRE(l2_norm(a->grad) == Approx(1.0).epsilon(1e-5));
  a->grad = Tensor::from({2}, {3.f, 4.f});
  const GradNorm g = grad_norm({a}, 1.0);  // measures, leaves the gradient as it is
  CHECK(g.norm == Approx(5.0));
  CHECK(g.scale == float(1.0 / (5.0 + 1e-6)));  // max_norm / (norm + 1e-6), as clip_grad_norm has always scaled
  CHECK(a->grad[1] == 4.f);
  CHECK(grad_norm({a}, 10.0).scale == 1.f);  // within the limit: no clipping
  CHECK(grad_norm({a}, 0.0).scale == 1.f);   // 0: measure only
  CHECK(grad_norm({a}, 0.0).norm == Approx(5.0));
}

TEST_CASE("Adam's step updates each parameter with a gradient as adam_update alone would, and no other") {
  // Adam::step shares pieces of every tensor among the threads: a parameter without a gradient
  // (one the loss did not reach) keeps its weight and moments, an empty one is no piece at all,
  // and the others get adam_update's bits, at 1 and 2 threads.
  for (int threads : {1, 2}) {
    set_threads(threads);
    Rng rng(5);
    std::vector<Var> ps;
    std::vector<Tensor> w0, g0;
    for (int64_t n : {int64_t(70001), int64_t(0), int64_t(300), int64_t(65536)}) {
      Tensor w({n}), g({n});
      for (int64_t k = 0; k < n; k++) w[k] = rng.normal(), g[k] = rng.normal();
      ps.push_back(parameter("p" + std::to_string(ps.size()), w.clone()));
      w0.push_back(w), g0.push_back(g);
      if (ps.size() != 3) ps.back()->grad = g;  // the third has no gradient
    }
    Adam opt(ps, AdamConfig{1e-2f, 0.9f, 0.98f, 1e-9f, 0.01f});
    opt.step(1e-2f, 0.5f);
    for (size_t i = 0; i < ps.size(); i++) {
      const int64_t n = w0[i].numel();
      INFO("threads " << threads << ", parameter " << i << " of " << n);
      Tensor w = w0[i].clone(), m = Tensor::zeros({n}), v = Tensor::zeros({n});
      if (i != 2)  // step 1's bias corrections, as Adam::step computes them
        adam_update(w.data(), m.data(), v.data(), g0[i].data(), n, 1e-2f, 0.9f, 0.98f, 1e-9f, 0.01f,
                    1.f - std::pow(0.9f, 1.f), 1.f - std::pow(0.98f, 1.f), 0.5f);
      const size_t bytes = size_t(n) * sizeof(float);
      REQUIRE(std::memcmp(ps[i]->value.data(), w.data(), bytes) == 0);
      REQUIRE(std::memcmp(opt.m[i].data(), m.data(), bytes) == 0);
      REQUIRE(std::memcmp(opt.v[i].data(), v.data(), bytes) == 0);
      if (i != 2 && n > 0) CHECK(ps[i]->value[0] != w0[i][0]);  // and it moved
    }
  }
  set_threads(0);
}

TEST_CASE("Adam's step with clipping's factor gives the bits of clipping the gradients first") {
  // Training clips inside the update (no pass over the gradients of its own); code that reads the
  // clipped gradients first scales them in place. Both must train to the same bits.
  auto make = [](uint64_t seed) {
    Rng rng(seed);
    std::vector<Var> ps;
    for (int64_t n : {int64_t(7), int64_t(70001)}) {  // below and above the threading threshold
      Tensor w({n}), g({n});
      for (int64_t k = 0; k < n; k++) w[k] = rng.normal(), g[k] = 3.f * rng.normal();
      ps.push_back(parameter("p" + std::to_string(n), w));
      ps.back()->grad = g;
    }
    return ps;
  };
  std::vector<Var> a = make(3), b = make(3);
  Adam oa(a, AdamConfig{}), ob(b, AdamConfig{});
  for (int step = 0; step < 3; step++) {
    const double norm_a = clip_grad_norm(a, 1.0);
    oa.step(1e-3f);
    const GradNorm gb = grad_norm(b, 1.0);
    REQUIRE(gb.norm == norm_a);
    REQUIRE(gb.scale < 1.f);  // the gradients are far above 1: clipping is in play
    ob.step(1e-3f, gb.scale);
    for (size_t i = 0; i < a.size(); i++)  // the next step's gradients, the same numbers for both
      for (int64_t k = 0; k < a[i]->grad.numel(); k++) {
        const float next = 0.5f * a[i]->grad[k] / gb.scale;
        a[i]->grad[k] = b[i]->grad[k] = next;
      }
  }
  for (size_t i = 0; i < a.size(); i++) {
    const int64_t n = a[i]->value.numel();
    INFO(a[i]->name);
    REQUIRE(std::memcmp(a[i]->value.data(), b[i]->value.data(), size_t(n) * sizeof(float)) == 0);
    REQUIRE(std::memcmp(oa.m[i].data(), ob.m[i].data(), size_t(n) * sizeof(float)) == 0);
    REQUIRE(std::memcmp(oa.v[i].data(), ob.v[i].data(), size_t(n) * sizeof(float)) == 0);
  }
}
