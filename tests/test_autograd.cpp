// tests/test_autograd.cpp — the tape, the gradcheck table, fused ops against their
// compositions, anomaly mode, and a small MLP that must learn XOR.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <set>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "nn/layers.h"
#include "nn/optim.h"

using namespace attn;

static Var rand_param(const std::string& name, const Shape& s, uint64_t seed, float scale_ = 1.f) {
  Rng rng(seed);
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); i++) t[i] = rng.normal() * scale_;
  return parameter(name, t);
}

TEST_CASE("every op in kOps has a gradcheck table entry") {
  std::set<std::string> covered;
  for (auto& c : gradcheck_table()) covered.insert(c.op);
  for (auto op : kOps) {
    INFO("op without a gradcheck entry: " << op);
    REQUIRE(covered.count(std::string(op)) == 1);
  }
  for (auto& c : gradcheck_table()) REQUIRE(is_registered_op(c.op));
}

TEST_CASE("the tape refuses to record an op missing from kOps, in every build (not an assert)") {
  Tape tape;
  TapeScope scope(tape);
  Var x = parameter("x", Tensor::from({2}, {1, 2}));
  REQUIRE_THROWS_WITH(record("cube", "x3", x->value.clone(), {x}), Catch::Contains("op 'cube' is not in kOps"));
  REQUIRE(tape.entries.empty());
  REQUIRE_NOTHROW(record("scale", "x1", x->value.clone(), {x}));
  REQUIRE(tape.entries.size() == 1);
}

// Fresh tensors hold NaN while a test runs with this: a backward that leaves part of a gradient
// it assigns unwritten gives NaN, which the checks below catch.
struct PoisonEmpty {
  PoisonEmpty() { Tensor::poison_empty(true); }
  ~PoisonEmpty() { Tensor::poison_empty(false); }
};

TEST_CASE("every gradcheck case matches central finite differences") {
  PoisonEmpty poison;  // the inputs' gradients start undefined: every op's assigning path runs
  for (auto& c : gradcheck_table()) {
    GradcheckResult r = run_gradcheck(c);
    INFO(r.op << " [" << r.label << "] worst: " << r.worst << " max abs " << r.max_abs_err);
    REQUIRE(r.pass);
  }
}

TEST_CASE("every op's backward adds onto a gradient that is already there") {
  // The first consumer of a variable assigns its gradient, later ones add (GradDst). Seeding the
  // inputs' gradients with S makes every op in the table take the adding path: the result must
  // be S plus the gradient the assigning path gives (checked against finite differences above).
  PoisonEmpty poison;
  for (auto& c : gradcheck_table()) {
    INFO(c.op << " [" << c.label << "]");
    Rng rng(11);
    std::vector<Var> ins;
    for (size_t i = 0; i < c.inputs.size(); i++) {
      Tensor t(c.inputs[i]);
      for (int64_t k = 0; k < t.numel(); k++) t[k] = rng.uniform() * 2.f - 1.f;
      ins.push_back(parameter(fmt::format("in{}", i), t));
    }
    auto grads = [&](bool seeded) {
      std::vector<Tensor> seeds;
      for (auto& v : ins) {
        v->grad = Tensor();
        if (seeded) {
          v->grad = Tensor::full(v->value.shape(), 0.25f);
          for (int64_t k = 0; k < v->grad.numel(); k += 3) v->grad[k] = -1.5f;
        }
      }
      Tape tape;
      TapeScope scope(tape);
      Var out = c.build(ins);
      Tensor w(out->value.shape());
      for (int64_t k = 0; k < w.numel(); k++) w[k] = float(k % 5) - 2.f;
      tape.backward(sum(mul(out, constant(w, "W")), "L"));
      std::vector<Tensor> g;
      for (auto& v : ins) g.push_back(v->grad.defined() ? v->grad.clone() : Tensor::zeros(v->value.shape()));
      return g;
    };
    std::vector<Tensor> fresh = grads(false), seeded = grads(true);
    for (size_t i = 0; i < ins.size(); i++) {
      REQUIRE(all_finite(fresh[i]));
      for (int64_t k = 0; k < fresh[i].numel(); k++) {
        const float s = k % 3 == 0 ? -1.5f : 0.25f;
        REQUIRE(seeded[i][k] == Approx(s + fresh[i][k]).epsilon(1e-5).margin(1e-5));
      }
    }
  }
}

TEST_CASE("vector-Jacobian identity holds on large inputs") {
  std::vector<GradcheckCase> big = {
      {"matmul", "large", {{64, 48}, {40, 48}}, [](auto& in) { return matmul(in[0], in[1], false, true, 0.3f); }},
      {"gram", "large", {{4, 32, 16}}, [](auto& in) { return gram(in[0], 0.25f); }},
      {"softmax", "attention block", {{2, 4, 24, 16}, {2, 4, 24, 16}},
       [](auto& in) { return softmax(matmul(in[0], in[1], false, true, 0.25f), Tensor(), 1.f); }},
      {"layernorm", "large", {{128, 64}, {64}, {64}}, [](auto& in) { return layernorm(in[0], in[1], in[2]); }},
  };
  for (auto& c : big) {
    GradcheckResult r = vjp_check(c, 3);
    INFO(r.op << " " << r.label << ": " << r.worst);
    REQUIRE(r.pass);
  }
}

TEST_CASE("a variable used twice receives both paths: dQ of alpha Q Qᵀ is alpha (G + Gᵀ) Q") {
  Var q = rand_param("Q", {4, 3}, 1);
  Tensor W = rand_param("W", {4, 4}, 2)->value;  // upstream weights: L = Σ S ⊙ W, so G = W
  Tape tape;
  TapeScope scope(tape);
  Var s = matmul(q, q, false, true, 0.5f, "S");
  tape.backward(sum(mul(s, constant(W)), "L"));
  for (int i = 0; i < 4; i++)
    for (int d = 0; d < 3; d++) {
      double expect = 0;
      for (int j = 0; j < 4; j++) expect += 0.5 * (W.at({i, j}) + W.at({j, i})) * q->value.at({j, d});
      REQUIRE(q->grad.at({i, d}) == Approx(expect).margin(1e-5));
    }
}

TEST_CASE("keep_grads = false frees intermediate gradients and leaves parameter gradients unchanged") {
  // A two-layer net where an intermediate (h) feeds two consumers: freeing must wait for both.
  auto run = [](bool keep, std::vector<Tensor>* grads) {
    Var w1 = rand_param("w1", {5, 6}, 11), w2 = rand_param("w2", {6, 3}, 12), x = rand_param("x", {4, 5}, 13);
    Tape tape;
    tape.keep_grads = keep;
    TapeScope scope(tape);
    Var h = relu(linear(x, w1, nullptr, "l1"), "h");
    Var y = add(linear(h, w2, nullptr, "l2"), linear(h, w2, nullptr, "l2b"), "y");
    tape.backward(sum(mul(y, y, "sq"), "L"));
    *grads = {w1->grad.clone(), w2->grad.clone(), x->grad.clone()};
    int alive = 0;
    for (auto& e : tape.entries) alive += e.out->grad.defined();
    return alive;
  };
  std::vector<Tensor> kept, freed;
  const int alive_kept = run(true, &kept), alive_freed = run(false, &freed);
  CHECK(alive_kept == 7);   // l1, h, l2, l2b, y, sq, L: every output gradient is still readable
  CHECK(alive_freed == 0);  // none is, once the walk has passed it
  for (size_t i = 0; i < kept.size(); i++) REQUIRE(max_abs_diff(kept[i], freed[i]) == 0.f);
}

TEST_CASE("reshape and add hand their gradient over when the tape frees it, and copy when it keeps it") {
  // h feeds three consumers; the reverse walk reaches them as c (a reshape: h has no gradient
  // yet, so with keep_grads off h takes c's gradient buffer), then b (adds into that buffer),
  // then a (a reshape that must add, not take). u feeds d = u + g with g = u²: d's backward
  // copies its gradient to g, then u takes the buffer, then g's backward adds 2u G_g into it.
  for (bool keep : {true, false}) {
    Var x = rand_param("x", {4, 6}, 21);
    Tensor Wa = rand_param("Wa", {2, 12}, 22)->value, Wc = rand_param("Wc", {24}, 23)->value;
    Tensor Wd = rand_param("Wd", {4, 6}, 24)->value;
    Tape tape;
    tape.keep_grads = keep;
    TapeScope scope(tape);
    Var h = relu(x, "h");
    Var a = reshape(h, {2, 12}, "a");
    Var b = mul(h, h, "b");
    Var c = reshape(h, {24}, "c");
    Var u = relu(x, "u");
    Var d = add(u, mul(u, u, "g"), "d");
    Var L = add(add(sum(mul(a, constant(Wa))), sum(b)), sum(mul(c, constant(Wc))));
    tape.backward(add(L, sum(mul(d, constant(Wd))), "L"));
    INFO("keep_grads " << keep);
    for (int64_t k = 0; k < 24; k++) {  // dL/dx = Wa + Wc + 2h + Wd (1 + 2u) where x > 0
      const float expect = x->value[k] > 0 ? Wa[k] + Wc[k] + 2 * h->value[k] + Wd[k] * (1 + 2 * u->value[k]) : 0.f;
      REQUIRE(x->grad[k] == Approx(expect).margin(1e-5));
    }
    if (keep) {  // kept gradients stay each node's own numbers
      REQUIRE(max_abs_diff(c->grad, Wc) == 0.f);
      REQUIRE(max_abs_diff(d->grad, Wd) == 0.f);
    }
  }
}

TEST_CASE("gram (ssyrk) equals matmul(Q, Q, ᵀ) in value and gradient") {
  Var q1 = rand_param("Q", {2, 5, 4}, 3), q2 = parameter("Q2", q1->value.clone());
  Tensor W = rand_param("W", {2, 5, 5}, 4)->value;
  Tape tape;
  TapeScope scope(tape);
  Var a = gram(q1, 0.5f), b = matmul(q2, q2, false, true, 0.5f);
  REQUIRE(max_abs_diff(a->value, b->value) < 1e-5f);
  tape.backward(add(sum(mul(a, constant(W))), sum(mul(b, constant(W)))));
  REQUIRE(max_abs_diff(q1->grad, q2->grad) < 1e-5f);
}

TEST_CASE("fused cross-entropy equals log_softmax composed with the target distribution") {
  const int R = 5, V = 7, pad = 0;
  const float eps = 0.1f;
  std::vector<int32_t> targets = {3, 0, 6, 1, 2};
  Var x1 = rand_param("logits", {R, V}, 5), x2 = parameter("logits2", x1->value.clone());
  Tensor q({R, V});
  int count = 0;
  for (int r = 0; r < R; r++) {
    if (targets[r] == pad) continue;
    count++;
    for (int v = 0; v < V; v++) q.at({r, v}) = eps / V + (v == targets[r] ? 1 - eps : 0);
  }
  Tape tape;
  TapeScope scope(tape);
  Var fused = cross_entropy(x1, targets, eps, pad);
  Var composed = scale(sum(mul(log_softmax(x2), constant(q))), -1.f / float(count));
  REQUIRE(fused->value.item() == Approx(composed->value.item()).epsilon(1e-5));
  tape.backward(add(fused, composed));
  REQUIRE(max_abs_diff(x1->grad, x2->grad) < 1e-5f);
}

TEST_CASE("fused layer norm equals √C · l2_normalize(x − mean(x)) ⊙ w + b built from primitives") {
  const int R = 6, C = 8;
  Var x1 = rand_param("x", {R, C}, 6, 2.f), x2 = parameter("x2", x1->value.clone());
  Tensor w = rand_param("w", {C}, 7)->value, b = rand_param("b", {C}, 8)->value;
  Tensor center({C, C}), diag_w({C, C});  // x M subtracts the row mean; diag(w) scales columns
  for (int i = 0; i < C; i++)
    for (int j = 0; j < C; j++) {
      center.at({i, j}) = (i == j ? 1.f : 0.f) - 1.f / C;
      diag_w.at({i, j}) = i == j ? w[i] : 0.f;
    }
  Tensor W = rand_param("W", {R, C}, 9)->value;
  Tape tape;
  TapeScope scope(tape);
  Var fused = layernorm(x1, constant(w), constant(b));
  Var xc = linear(x2, constant(center), nullptr);
  Var composed = linear(scale(l2_normalize(xc), std::sqrt(float(C))), constant(diag_w), constant(b));
  REQUIRE(max_abs_diff(fused->value, composed->value) < 1e-3f);
  tape.backward(add(sum(mul(fused, constant(W))), sum(mul(composed, constant(W)))));
  REQUIRE(max_abs_diff(x1->grad, x2->grad) < 1e-3f);
}

TEST_CASE("fused scale + mask + softmax equals scale, add mask, plain softmax") {
  const float ninf = -std::numeric_limits<float>::infinity();
  Var x1 = rand_param("S", {1, 2, 3, 3}, 10), x2 = parameter("S2", x1->value.clone());
  Tensor mask({1, 3, 3}), mask4({1, 2, 3, 3});
  mask.at({0, 0, 1}) = mask.at({0, 0, 2}) = mask.at({0, 1, 2}) = ninf;
  for (int h = 0; h < 2; h++)
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) mask4.at({0, h, i, j}) = mask.at({0, i, j});
  Tensor W = rand_param("W", {1, 2, 3, 3}, 11)->value;
  Tape tape;
  TapeScope scope(tape);
  Var fused = softmax(x1, mask, 0.7f);
  Var composed = reshape(softmax(reshape(add(scale(x2, 0.7f), constant(mask4)), {6, 3}), Tensor()), {1, 2, 3, 3});
  REQUIRE(max_abs_diff(fused->value, composed->value) < 1e-6f);
  tape.backward(add(sum(mul(fused, constant(W))), sum(mul(composed, constant(W)))));
  REQUIRE(max_abs_diff(x1->grad, x2->grad) < 1e-5f);
}

TEST_CASE("linear equals matmul followed by a broadcast bias") {
  Var x = rand_param("x", {2, 3, 4}, 12), w = rand_param("w", {4, 5}, 13), b = rand_param("b", {5}, 14);
  NoGradScope ng;
  Var fused = linear(x, w, b);
  Var composed = add_rows(reshape(matmul(reshape(x, {6, 4}), w, false, false), {2, 3, 5}), b);
  REQUIRE(max_abs_diff(fused->value, composed->value) < 1e-5f);
}

TEST_CASE("the tape: creation order, names, dump, dot, find, no-grad") {
  Var w = parameter("w", Tensor::from({2}, {1.f, 2.f}));
  Tape tape;
  {
    TapeScope scope(tape);
    Var y = mul(w, w, "w_squared");
    Var loss = sum(y, "loss");
    REQUIRE(tape.entries.size() == 2);
    REQUIRE(tape.entries[0].op == "mul");
    REQUIRE(tape.entries[0].inputs[0] == w);
    REQUIRE(tape.entries[0].inputs[1] == w);
    tape.backward(loss);
    REQUIRE(w->grad[0] == 2.f);
    REQUIRE(w->grad[1] == 4.f);
    tape.backward(loss);  // gradients accumulate until zeroed explicitly
    REQUIRE(w->grad[1] == 8.f);
    std::string dump = tape.dump();
    REQUIRE_THAT(dump, Catch::Contains("w_squared") && Catch::Contains("w, w") && Catch::Contains("#0"));
    std::string dot = tape.to_dot();
    REQUIRE_THAT(dot, Catch::Contains("digraph") && Catch::Contains("-> n0") && Catch::Contains("n0 -> n1"));
    // SVG: w feeds the product twice, as two red arrows labelled by operand; the sum's one input is grey
    std::string svg = tape.to_svg();
    auto count = [&](const std::string& what) {
      size_t n = 0;
      for (size_t at = svg.find(what); at != std::string::npos; at = svg.find(what, at + 1)) n++;
      return n;
    };
    REQUIRE(svg.rfind("<svg ", 0) == 0);
    REQUIRE(count("stroke=\"#d62728\"") == 2);
    REQUIRE(count("stroke=\"#555555\"") == 1);
    REQUIRE_THAT(svg, Catch::Contains(">operand 1<") && Catch::Contains(">operand 2<") && Catch::Contains(">#0 mul<") &&
                          Catch::Contains(">w_squared (2,)<"));
    REQUIRE_THAT(svg, Catch::Contains("height=\"132\""));  // room above and below the row for the bent arrows' labels
    REQUIRE(tape.find("w_squared")->grad.defined());
    REQUIRE(tape.find("nope") == nullptr);
    REQUIRE_THROWS_WITH(tape.backward(y), Catch::Contains("scalar"));
  }
  {
    Tape t2;
    TapeScope scope(t2);
    NoGradScope ng;
    Var y = mul(w, w);
    REQUIRE(t2.entries.empty());
    REQUIRE_FALSE(y->requires_grad);
  }
}

TEST_CASE("anomaly mode names the op, the node and the tape index of an injected NaN") {
  Var x = parameter("x", Tensor::from({3}, {1.f, 2.f, 3.f}));
  Tape tape;
  tape.anomaly = true;
  TapeScope scope(tape);
  Var a = scale(x, 2.f, "doubled");
  a->value[1] = std::numeric_limits<float>::quiet_NaN();  // inject
  REQUIRE_THROWS_WITH(mul(a, x, "product"), Catch::Contains("op 'mul'") && Catch::Contains("node 'product'") &&
                                                 Catch::Contains("tape #1") && Catch::Contains("forward"));
  Tape t2;
  t2.anomaly = true;
  TapeScope s2(t2);
  Var b = mul(x, x, "sq");
  Var l = sum(b, "L");
  b->value[0] = std::numeric_limits<float>::infinity();  // corrupt the saved input of sum's consumer
  x->value[2] = std::numeric_limits<float>::quiet_NaN();  // mul backward multiplies by x
  REQUIRE_THROWS_WITH(t2.backward(l), Catch::Contains("backward of op 'mul'") && Catch::Contains("tape #0"));
}

TEST_CASE("a small MLP learns XOR") {
  ParamStore ps;
  Rng rng(3);
  Linear l1(ps, "l1", 2, 16, rng), l2(ps, "l2", 16, 2, rng);
  Adam opt(ps.params, AdamConfig{0.02f, 0.9f, 0.999f, 1e-8f, 0.f});
  Var x = constant(Tensor::from({4, 2}, {0, 0, 0, 1, 1, 0, 1, 1}), "x");
  std::vector<int32_t> y = {0, 1, 1, 0};
  float loss_v = 0;
  for (int step = 0; step < 300; step++) {
    ps.zero_grad();
    Tape tape;
    TapeScope scope(tape);
    Var loss = cross_entropy(l2(relu(l1(x, "h")), "logits"), y, 0.f, -1, "loss");
    tape.backward(loss);
    opt.step(0.02f);
    loss_v = loss->value.item();
  }
  REQUIRE(loss_v < 0.05f);
  NoGradScope ng;
  Var logits = l2(relu(l1(x, "h")), "logits");
  for (int i = 0; i < 4; i++) {
    const bool predicts_one = logits->value.at({i, 1}) > logits->value.at({i, 0});
    REQUIRE(predicts_one == (y[i] == 1));
  }
}

TEST_CASE("ops refuse shapes and arguments that do not fit, naming the op and the node") {
  Tape tape;
  TapeScope scope(tape);
  Var a = parameter("a", Tensor::zeros({2, 3}));
  Var b = parameter("b", Tensor::zeros({3, 2}));
  REQUIRE_THROWS_WITH(add(a, b, "sum_ab"), Catch::Contains("add 'sum_ab'") && Catch::Contains("differ"));
  REQUIRE_THROWS_WITH(matmul(a, a, false, false, 1.f, "aa"), Catch::Contains("matmul 'aa'") && Catch::Contains("do not fit"));
  Rng rng(1);
  for (float p : {-0.1f, 1.f, std::numeric_limits<float>::quiet_NaN()})
    REQUIRE_THROWS_WITH(dropout(a, p, rng, "drop"), Catch::Contains("dropout 'drop': p must be in [0, 1)"));
  REQUIRE_THROWS_WITH(cross_entropy(a, {0, 7}, 0.f, -1, "ce"), Catch::Contains("cross_entropy 'ce': target 7 outside vocabulary of 3"));
}
