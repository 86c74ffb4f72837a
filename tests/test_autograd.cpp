// tests/test_autograd.cpp — the tape, the gradcheck table, fused ops against their
// compositions, anomaly mode, and a small MLP that must learn XOR.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include <attnlab/autograd/gradcheck.h>
#include <attnlab/autograd/ops.h>
#include <attnlab/core/kernels.h>
#include <attnlab/core/threads.h>
#include <attnlab/nn/layers.h>
#include <attnlab/nn/optim.h>

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
      {"head_scores", "large", {{3, 24, 64}, {3, 20, 64}}, [](auto& in) { return head_scores(in[0], in[1], 4, 0.25f); }},
      {"head_gram", "large", {{3, 24, 64}}, [](auto& in) { return head_gram(in[0], 4, 0.25f); }},
      {"head_context", "large", {{3, 4, 24, 20}, {3, 20, 64}}, [](auto& in) { return head_context(in[0], in[1]); }},
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

// ---- every element of every gradient against a float64 reference, within a rounding bound ----
//
// The vjp check above compares one random direction at 1%, so one wrong element of thousands
// (a remainder loop that drops or skews its last lane) passes it. Here each op runs at last
// dimensions 1, 13, 37, 67 (no multiple of the 4/8/16-float vector widths, so every remainder
// loop runs) and once above 65536 elements with an odd count (the threaded loops), and EVERY
// element of every input's gradient of L = Σ out ⊙ W is compared with a backward written out in
// double by plain loops from the same float inputs:
//   |g − ref| ≤ K · u · m,   u = 2⁻²⁴,
// m = the reference formula with every term replaced by its absolute value (Higham's γ_n Σ|terms|
// bound, so cancellation cannot break it), K = the float32 rounding steps on the longest path
// from the inputs to the element (derived beside each op below, not fitted). A relative error of
// 1e-5 in one element is 168 u |g|: it fails where K m < 168 |g|. Checked by mutation: the last
// element of the last row of softmax_backward off by 1e-5 fails (75, 13), (75, 37) and (75, 67)
// (not (979, 67): ratio 61 < K 67; not the masked cases, whose last element has P = 0). Layer
// norm's dx bound (K = 4.5 D + 27, the forward's mean and rstd errors included) is too loose to
// see the same mutation there (ratio 37.6 < K 121.5).
namespace ulpcheck {

constexpr double kU = 1.0 / 16777216.0;  // 2⁻²⁴, unit roundoff of float32
// exp_fast: relative error below 3e-7 (core/kernels.h): 5.04 u.
constexpr double kExp = 3e-7 / kU;

// D(n): rounding steps on the longest path of an n-term `omp simd reduction(+)` (softmax,
// log-softmax, cross-entropy and layer-norm rows). With w lanes (4, 8, 16 floats; 32, 64 if the
// compiler also interleaves accumulators) a term meets floor(n/w) lane additions (the first, onto
// the zero identity, exact, counted anyway), log2(w) in the horizontal sum and at most n mod w in
// a scalar remainder loop; never more than a sequential sum's n − 1. The largest over w is used:
// which clone runs (vector_isa()) and how GCC splits it do not matter.
inline double reduction_depth(int64_t n) {
  if (n <= 1) return 0;
  double worst = 0;
  for (int lg = 2; lg <= 6; lg++) {
    const int64_t w = int64_t(1) << lg;
    worst = std::max(worst, double(n / w + lg + n % w));
  }
  return std::min(double(n - 1), worst);
}

struct Ref {                // one input's reference gradient
  std::vector<double> ref;  // closed-form backward, in double
  std::vector<double> mag;  // the same formula over absolute values
  double K;                 // rounding steps on the longest path (see the op's derivation)
};

struct Case {
  std::string op, size;
  std::vector<Tensor> inputs;
  std::function<Var(std::vector<Var>&)> build;
  // W: the upstream gradient (undefined for a scalar loss, whose upstream gradient is 1).
  std::function<std::vector<Ref>(const std::vector<Tensor>&, const Tensor& W)> reference;
  bool scalar_loss = false;
};

inline Tensor uniform(const Shape& s, uint64_t seed, float lo, float hi) {
  Rng rng(seed);
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); i++) t[i] = lo + (hi - lo) * rng.uniform();
  return t;
}

inline Ref zeros_ref(int64_t n, double K) { return Ref{std::vector<double>(size_t(n), 0.0), std::vector<double>(size_t(n), 0.0), K}; }

}  // namespace ulpcheck

TEST_CASE("every element of every input gradient is within K ulps of a float64 backward, remainders and threads included") {
  using namespace ulpcheck;
  const std::vector<int> dims = {1, 13, 37, 67};  // last dimensions: none a multiple of 4, 8 or 16
  const int R = 75;                               // rows: 75 x 67 = 5025 elements
  const int RB = 979, CB = 67;                    // 979 x 67 = 65593 > 65536, odd: the threaded loops
  std::vector<Case> cases;
  auto sz = [](const Shape& s) { return shape_str(s); };

  // ---- matmul: out = α A Bᵀ, A (M,k), B (N,k). dA = α W B (N terms), dB = α Wᵀ A (M terms).
  // K = n + 1: a BLAS dot of n products takes at most n roundings on a term's path (a product, or
  // the FMA, then the n − 1 additions after it, in whatever blocking order), + 1 for α.
  // 259 x 257 x 67 (M N K above 4 · 65536): matmul_forward splits the product and its two
  // backward products over the threads, at odd row and column counts.
  for (auto [M, N, k] : std::vector<std::array<int, 3>>{{13, 37, 67}, {67, 1, 13}, {37, 67, 1}, {1, 13, 37}, {259, 257, 67}}) {
    const float alpha = 0.3f;
    cases.push_back({"matmul", sz({M, N, k}),
                     {uniform({M, k}, 100 + M, -1, 1), uniform({N, k}, 200 + N, -1, 1)},
                     [alpha](auto& in) { return matmul(in[0], in[1], false, true, alpha); },
                     [=](const std::vector<Tensor>& in, const Tensor& W) {
                       Ref da = zeros_ref(int64_t(M) * k, N + 1.0), db = zeros_ref(int64_t(N) * k, M + 1.0);
                       for (int i = 0; i < M; i++)
                         for (int j = 0; j < N; j++)
                           for (int d = 0; d < k; d++) {
                             const double w = W[int64_t(i) * N + j], a = in[0][int64_t(i) * k + d], b = in[1][int64_t(j) * k + d];
                             da.ref[size_t(i) * k + d] += alpha * w * b, da.mag[size_t(i) * k + d] += std::abs(alpha * w * b);
                             db.ref[size_t(j) * k + d] += alpha * w * a, db.mag[size_t(j) * k + d] += std::abs(alpha * w * a);
                           }
                       return std::vector<Ref>{da, db};
                     }});
  }
  // ---- gram: S = α Q Qᵀ per batch, dQ = α (W + Wᵀ) Q. K = N + 2: W + Wᵀ (1), the N-term BLAS
  // product (N, as for matmul), α (1).
  // 2 x 183 x 67: each entry's (W + Wᵀ) Q (183 x 67 x 183, above 4 · 65536) is split over the
  // threads by matmul_forward; the small cases run one entry per thread instead.
  for (auto [Bt, N, k] : std::vector<std::array<int, 3>>{{2, 13, 37}, {1, 67, 13}, {3, 37, 1}, {2, 1, 67}, {2, 183, 67}}) {
    const float alpha = 0.25f;
    cases.push_back({"gram", sz({Bt, N, k}), {uniform({Bt, N, k}, 300 + N, -1, 1)},
                     [alpha](auto& in) { return gram(in[0], alpha); },
                     [=](const std::vector<Tensor>& in, const Tensor& W) {
                       Ref dq = zeros_ref(int64_t(Bt) * N * k, N + 2.0);
                       for (int b = 0; b < Bt; b++)
                         for (int i = 0; i < N; i++)
                           for (int j = 0; j < N; j++) {
                             const double wij = W[(int64_t(b) * N + i) * N + j], wji = W[(int64_t(b) * N + j) * N + i];
                             for (int d = 0; d < k; d++) {
                               const double q = in[0][(int64_t(b) * N + j) * k + d];
                               const size_t o = (size_t(b) * N + i) * k + d;
                               dq.ref[o] += alpha * (wij + wji) * q;
                               dq.mag[o] += alpha * (std::abs(wij) + std::abs(wji)) * std::abs(q);
                             }
                           }
                       return std::vector<Ref>{dq};
                     }});
  }

  // ---- softmax rows: P = softmax(s x + mask), dx_j = s P_j (W_j − Σ_k W_k P_k),
  // m_j = |s| P_j (|W_j| + Σ_k |W_k| P_k). With x in [−2, 2] and s = 0.7 (|s x| ≤ 1.4, |t − max| ≤ 2.8):
  //  forward P_j: s x (≤ 1.4 u absolute in the exponent), + mask (exact for 0; -inf and -1e9 give
  //  P = 0 exactly on both sides), − max (≤ 2.8 u; the max itself is a common shift that the
  //  normalisation cancels) = 4.2 u relative in e_j, and the same again through Σ e (8.4); exp_fast
  //  in e_j and in Σ e (2 × 5.04); the Tk-term sum (D); 1 / sum and × inv (2): K_P = D + 20.5.
  //  backward: W_k P_k (1), the dot (D), W_j − dot (1), × P_j (1), × s (1): D + 4, and P's own
  //  K_P u relative error reaches dx_j at most K_P u m_j (through P_j and through the dot).
  //  K = 2 D + 24.5 → 2 D + 25.
  auto softmax_ref = [](const Tensor& x, const float* mask, int B, int H, int Tq, int Tk, float s, const Tensor& W) {
    Ref dx = zeros_ref(x.numel(), 2 * reduction_depth(Tk) + 25);
    std::vector<double> p(static_cast<size_t>(Tk));
    for (int64_t r = 0; r < int64_t(B) * H * Tq; r++) {
      const int b = int(r / (int64_t(H) * Tq)), i = int(r % Tq);
      double mx = -std::numeric_limits<double>::infinity();
      for (int j = 0; j < Tk; j++) {
        p[j] = double(s) * x[r * Tk + j] + (mask ? double(mask[(int64_t(b) * Tq + i) * Tk + j]) : 0.0);
        mx = std::max(mx, p[j]);
      }
      if (mx == -std::numeric_limits<double>::infinity()) continue;  // fully masked: P = 0, no gradient
      double z = 0, dot = 0, adot = 0;
      for (int j = 0; j < Tk; j++) z += (p[j] = std::exp(p[j] - mx));
      for (int j = 0; j < Tk; j++) {
        p[j] /= z;
        dot += W[r * Tk + j] * p[j];
        adot += std::abs(W[r * Tk + j]) * p[j];
      }
      for (int j = 0; j < Tk; j++) {
        dx.ref[size_t(r * Tk + j)] = s * p[j] * (W[r * Tk + j] - dot);
        dx.mag[size_t(r * Tk + j)] = std::abs(s) * p[j] * (std::abs(W[r * Tk + j]) + adot);
      }
    }
    return dx;
  };
  for (int C : dims)
    cases.push_back({"softmax", sz({R, C}), {uniform({R, C}, 400 + C, -2, 2)},
                     [](auto& in) { return softmax(in[0], Tensor(), 0.7f); },
                     [=](const std::vector<Tensor>& in, const Tensor& W) {
                       return std::vector<Ref>{softmax_ref(in[0], nullptr, 1, 1, R, C, 0.7f, W)};
                     }});
  cases.push_back({"softmax", sz({RB, CB}), {uniform({RB, CB}, 499, -2, 2)},
                   [](auto& in) { return softmax(in[0], Tensor(), 0.7f); },
                   [=](const std::vector<Tensor>& in, const Tensor& W) {
                     return std::vector<Ref>{softmax_ref(in[0], nullptr, 1, 1, RB, CB, 0.7f, W)};
                   }});
  // Rank 4 (B, H, Tq, Tk) with an additive mask (B, Tq, Tk) broadcast over heads, built as
  // models/blocks.cpp builds them: -inf above the (end-aligned) causal diagonal; batch 1 also
  // has its last 3 keys padded with a large finite negative (-1e9) and query row 0 fully masked.
  for (auto [B, H, Tq, Tk] : std::vector<std::array<int, 4>>{{2, 3, 13, 37}, {2, 2, 37, 67}, {2, 3, 13, 13}}) {
    Tensor mask({B, Tq, Tk});
    const float ninf = -std::numeric_limits<float>::infinity();
    for (int b = 0; b < B; b++)
      for (int i = 0; i < Tq; i++)
        for (int j = 0; j < Tk; j++) {
          float v = j > i + (Tk - Tq) ? ninf : 0.f;
          if (b == 1 && j >= Tk - 3 && v == 0.f) v = -1e9f;
          if (b == 1 && i == 0) v = ninf;
          mask.at({b, i, j}) = v;
        }
    cases.push_back({"softmax", sz({B, H, Tq, Tk}) + " masked", {uniform({B, H, Tq, Tk}, 500 + Tk, -2, 2)},
                     [mask](auto& in) { return softmax(in[0], mask, 0.7f); },
                     [=](const std::vector<Tensor>& in, const Tensor& W) {
                       return std::vector<Ref>{softmax_ref(in[0], mask.data(), B, H, Tq, Tk, 0.7f, W)};
                     }});
  }

  // ---- log_softmax: dx_j = W_j − P_j Σ_k W_k, P = exp(out); m_j = |W_j| + P_j Σ_k |W_k|.
  // x in [−2, 2], C ≤ 67: the float out_j = x_j − lse carries, absolutely, exp_fast's 5.04 u in the
  // double Σ e (→ log), float(log S) (u |log S| ≤ 4.21 u), max + log (u |lse| ≤ 6.21 u), x − lse
  // (u |out| ≤ 8.21 u): 23.7 u; exp_fast(out) turns that into relative error and adds 5.04:
  // 28.7. Then Σ W (D), × Σ (1), W_j − (1). K = D + 30.7 → D + 31.
  auto log_softmax_ref = [](const Tensor& x, int64_t Rr, int C, const Tensor& W) {
    Ref dx = zeros_ref(x.numel(), reduction_depth(C) + 31);
    for (int64_t r = 0; r < Rr; r++) {
      double mx = -1e300, z = 0, sw = 0, asw = 0;
      for (int c = 0; c < C; c++) mx = std::max(mx, double(x[r * C + c]));
      for (int c = 0; c < C; c++) z += std::exp(x[r * C + c] - mx);
      for (int c = 0; c < C; c++) sw += W[r * C + c], asw += std::abs(W[r * C + c]);
      for (int c = 0; c < C; c++) {
        const double p = std::exp(x[r * C + c] - mx) / z;
        dx.ref[size_t(r * C + c)] = W[r * C + c] - p * sw;
        dx.mag[size_t(r * C + c)] = std::abs(W[r * C + c]) + p * asw;
      }
    }
    return dx;
  };
  for (auto [Rr, C] : std::vector<std::array<int, 2>>{{R, 1}, {R, 13}, {R, 37}, {R, 67}, {RB, CB}})
    cases.push_back({"log_softmax", sz({Rr, C}), {uniform({Rr, C}, 600 + C + Rr, -2, 2)},
                     [](auto& in) { return log_softmax(in[0]); },
                     [=](const std::vector<Tensor>& in, const Tensor& W) {
                       return std::vector<Ref>{log_softmax_ref(in[0], Rr, C, W)};
                     }});

  // ---- layernorm: xhat = (x − μ) s, s = 1/√(var + eps), y = xhat w + b. With G = W, n = G w:
  //   dx_c = s (n_c − mean(n) − xhat_c mean(n xhat)),  dw_c = Σ_r G xhat,  db_c = Σ_r G.
  // The backward reads the μ and s its forward saved, so the reference takes the same floats
  // (layernorm_forward, this build's own kernel) and checks the backward alone: the forward's
  // rounding of μ and s is not in the bound, which keeps it tight enough that one wrong element
  // fails it. Rounding steps, relative to the magnitudes (|x − μ| s for xhat):
  //  xhat = (x − μ) s: 2. n = G w: 1. mean(n): D + 1 over n's 1 → D + 2. mean(n xhat): the product
  //  (1 + 2 + 1), D, / C (1) → D + 5; × xhat_c: 2 + 1 → D + 8; the two subtractions (2) and × s
  //  (1): K = D + 11 for dx. dw: xhat (2) × G (1), the rows in sequence into a thread's partial
  //  (R − 1), the T partials in thread order (T − 1): K = R + T + 1. db: K = R + T − 2.
  auto layernorm_ref = [](const std::vector<Tensor>& in, int64_t Rr, int C, const Tensor& W) {
    const Tensor &x = in[0], &w = in[1], &b = in[2];
    const double D = reduction_depth(C);
    const int T = Rr * C > 65536 ? std::max(1, num_threads()) : 1;
    std::vector<float> y(static_cast<size_t>(Rr * C)), mean(static_cast<size_t>(Rr)), rstd(static_cast<size_t>(Rr));
    layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), Rr, C);
    Ref dx = zeros_ref(x.numel(), D + 11), dw = zeros_ref(C, double(Rr + T + 1)), db = zeros_ref(C, double(Rr - 1) + double(T - 1));
    std::vector<double> xh(static_cast<size_t>(C)), xa(static_cast<size_t>(C));
    for (int64_t r = 0; r < Rr; r++) {
      const float* xr = x.data() + r * C;
      const double mu = mean[size_t(r)], s = rstd[size_t(r)];
      double mn = 0, amn = 0, mnx = 0, amnx = 0;
      for (int c = 0; c < C; c++) {
        xh[c] = (xr[c] - mu) * s, xa[c] = std::abs(xh[c]);
        const double n = double(W[r * C + c]) * w[c];
        mn += n, amn += std::abs(n), mnx += n * xh[c], amnx += std::abs(n) * xa[c];
      }
      mn /= C, amn /= C, mnx /= C, amnx /= C;
      for (int c = 0; c < C; c++) {
        const double g = W[r * C + c], n = g * w[c];
        dx.ref[size_t(r * C + c)] = s * (n - mn - xh[c] * mnx);
        dx.mag[size_t(r * C + c)] = s * (std::abs(n) + amn + xa[c] * amnx);
        dw.ref[size_t(c)] += g * xh[c], dw.mag[size_t(c)] += std::abs(g) * xa[c];
        db.ref[size_t(c)] += g, db.mag[size_t(c)] += std::abs(g);
      }
    }
    return std::vector<Ref>{dx, dw, db};
  };
  for (auto [Rr, C] : std::vector<std::array<int, 2>>{{R, 1}, {R, 13}, {R, 37}, {R, 67}, {RB, CB}})
    cases.push_back({"layernorm", sz({Rr, C}),
                     {uniform({Rr, C}, 700 + C + Rr, -1.5f, 2.5f), uniform({C}, 701 + C, 0.5f, 1.5f), uniform({C}, 702 + C, -1, 1)},
                     [](auto& in) { return layernorm(in[0], in[1], in[2]); },
                     [=](const std::vector<Tensor>& in, const Tensor& W) { return layernorm_ref(in, Rr, C, W); }});

  // ---- elementwise, on (R, C) for each C and on (979, 67).
  std::vector<std::array<int, 2>> ew = {{R, 1}, {R, 13}, {R, 37}, {R, 67}, {RB, CB}};
  for (auto [Rr, C] : ew) {
    const Shape s{Rr, C};
    const int64_t n = int64_t(Rr) * C;
    // gelu (tanh form), a = √(2/π), c = 0.044715, v = a (x + c x³), t = tanh v, v' = a (1 + 3 c x²):
    //   dx = G (½ (1 + t) + ½ x (1 − t²) v').
    // Float path: v' takes 7 roundings (c, 3c, × x, × x, 1 +, a, × a), ½ x (1 − t²) v' 2 more
    // products (½ x exact) and 1 − t·t 2, + ½ (1 + t) 1, × G 1: 11 on the longest path, over
    // mA = |G| (½ (1 + |t|) + ½ |x| (1 + t²) |v'|). t itself: v's 7 roundings (c, c x x x's 3, x +,
    // a, × a) scaled by tanh' = 1 − t², and tanhf's ≤ 2 ulp (4 u |t|): ≤ 7 u ((1 − t²) |v|a + |t|),
    // which reaches dx through ½ (1 + t) and ½ x v' (−2 t) dt: mB = |G| (½ + |x t v'|) ((1 − t²) |v|a + |t|),
    // |v|a = a (|x| + c |x|³). m = mA + mB, K = 11 + 1 for the second-order (u²) terms = 12.
    cases.push_back({"gelu", sz(s), {uniform(s, 800 + n, -3, 3)}, [](auto& in) { return gelu(in[0]); },
                     [n](const std::vector<Tensor>& in, const Tensor& W) {
                       Ref dx = zeros_ref(n, 12);
                       const double a = std::sqrt(2.0 / M_PI), c = 0.044715;
                       for (int64_t i = 0; i < n; i++) {
                         const double x = in[0][i], g = W[i], v = a * (x + c * x * x * x), t = std::tanh(v);
                         const double dv = a * (1 + 3 * c * x * x), va = a * (std::abs(x) + c * std::abs(x * x * x));
                         dx.ref[size_t(i)] = g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dv);
                         const double mA = 0.5 * (1 + std::abs(t)) + 0.5 * std::abs(x) * (1 + t * t) * dv;
                         const double mB = (0.5 + std::abs(x * t) * dv) * ((1 - t * t) * va + std::abs(t));
                         dx.mag[size_t(i)] = std::abs(g) * (mA + mB);
                       }
                       return std::vector<Ref>{dx};
                     }});
    // relu: dx = G [x > 0], a copy: K = 0 (must be exact).
    cases.push_back({"relu", sz(s), {uniform(s, 900 + n, -1, 1)}, [](auto& in) { return relu(in[0]); },
                     [n](const std::vector<Tensor>& in, const Tensor& W) {
                       Ref dx = zeros_ref(n, 0);
                       for (int64_t i = 0; i < n; i++) {
                         dx.ref[size_t(i)] = in[0][i] > 0.f ? double(W[i]) : 0.0;
                         dx.mag[size_t(i)] = std::abs(dx.ref[size_t(i)]);
                       }
                       return std::vector<Ref>{dx};
                     }});
    // mul: da = G b, db = G a: one product each (added onto zeros, exact): K = 1.
    cases.push_back({"mul", sz(s), {uniform(s, 1000 + n, -2, 2), uniform(s, 1001 + n, -2, 2)},
                     [](auto& in) { return mul(in[0], in[1]); },
                     [n](const std::vector<Tensor>& in, const Tensor& W) {
                       Ref da = zeros_ref(n, 1), db = zeros_ref(n, 1);
                       for (int64_t i = 0; i < n; i++) {
                         da.ref[size_t(i)] = double(W[i]) * in[1][i], da.mag[size_t(i)] = std::abs(da.ref[size_t(i)]);
                         db.ref[size_t(i)] = double(W[i]) * in[0][i], db.mag[size_t(i)] = std::abs(db.ref[size_t(i)]);
                       }
                       return std::vector<Ref>{da, db};
                     }});
    // add: da = db = G, copies: K = 0.
    cases.push_back({"add", sz(s), {uniform(s, 1100 + n, -2, 2), uniform(s, 1101 + n, -2, 2)},
                     [](auto& in) { return add(in[0], in[1]); },
                     [n](const std::vector<Tensor>&, const Tensor& W) {
                       Ref da = zeros_ref(n, 0);
                       for (int64_t i = 0; i < n; i++) da.ref[size_t(i)] = W[i], da.mag[size_t(i)] = std::abs(W[i]);
                       return std::vector<Ref>{da, da};
                     }});
    // scale: dx = s G, one product: K = 1.
    cases.push_back({"scale", sz(s), {uniform(s, 1200 + n, -2, 2)}, [](auto& in) { return scale(in[0], -0.37f); },
                     [n](const std::vector<Tensor>&, const Tensor& W) {
                       Ref dx = zeros_ref(n, 1);
                       for (int64_t i = 0; i < n; i++)
                         dx.ref[size_t(i)] = double(-0.37f) * W[i], dx.mag[size_t(i)] = std::abs(dx.ref[size_t(i)]);
                       return std::vector<Ref>{dx};
                     }});
  }

  // ---- cross_entropy (smoothing ε = 0.1, one ignored row), the loss itself is L (upstream 1):
  //   dx_v = (P_v − ε/V − (1 − ε) [v = y]) / count, 0 on the ignored row;
  //   m_v = (P_v + ε/V + (1 − ε) [v = y]) / count.
  // x in [−2, 2]: x − max (≤ 4 u absolute, twice through the normalisation: 8), exp_fast in e_v and
  // Σ e (2 × 5.04), the V-term sum (D), 1 / sum and × inv (2): P carries D + 20.1. Backward:
  // 1/count (1), ε / V (1), P − ε/V (1), × scale (1), and at v = y: 1 − ε (1), × scale (1), −= (1):
  // the longest path, P's, is D + 20.1 + 1 (−) + 2 (× an inexact scale) + 1 (−=) → K = D + 25.
  for (auto [Rr, V] : std::vector<std::array<int, 2>>{{R, 1}, {R, 13}, {R, 37}, {R, 67}, {RB, CB}}) {
    std::vector<int32_t> targets(static_cast<size_t>(Rr));
    Rng rng(1300 + V);
    const int ignore = -1;
    for (auto& t : targets) t = int32_t(rng.below(uint32_t(V)));
    targets[size_t(Rr / 2)] = ignore;
    const float eps = 0.1f;
    cases.push_back({"cross_entropy", sz({Rr, V}), {uniform({Rr, V}, 1400 + V + Rr, -2, 2)},
                     [=](auto& in) { return cross_entropy(in[0], targets, eps, ignore); },
                     [=](const std::vector<Tensor>& in, const Tensor&) {
                       Ref dx = zeros_ref(int64_t(Rr) * V, reduction_depth(V) + 25);
                       int count = 0;
                       for (int32_t t : targets) count += t != ignore;
                       for (int64_t r = 0; r < Rr; r++) {
                         if (targets[size_t(r)] == ignore) continue;
                         double mx = -1e300, z = 0;
                         for (int v = 0; v < V; v++) mx = std::max(mx, double(in[0][r * V + v]));
                         for (int v = 0; v < V; v++) z += std::exp(in[0][r * V + v] - mx);
                         for (int v = 0; v < V; v++) {
                           const double p = std::exp(in[0][r * V + v] - mx) / z, q1 = v == targets[size_t(r)] ? 1.0 - eps : 0.0;
                           dx.ref[size_t(r * V + v)] = (p - double(eps) / V - q1) / count;
                           dx.mag[size_t(r * V + v)] = (p + double(eps) / V + q1) / count;
                         }
                       }
                       return std::vector<Ref>{dx};
                     },
                     true});
  }

  // ---- run every case; record the worst |g − ref| / (u m) per op.
  std::map<std::string, std::pair<double, std::string>> worst;  // op -> (ratio, where)
  std::map<std::string, std::string> ks;                        // op -> the K values used
  int64_t checked = 0;
  for (auto& c : cases) {
    std::vector<Var> ins;
    for (size_t i = 0; i < c.inputs.size(); i++) ins.push_back(parameter(fmt::format("in{}", i), c.inputs[i].clone()));
    Tape tape;
    TapeScope scope(tape);
    Var out = c.build(ins);
    Tensor W;
    if (c.scalar_loss) {
      tape.backward(out);
    } else {
      W = uniform(out->value.shape(), 7 + out->value.numel(), -1, 1);
      tape.backward(sum(mul(out, constant(W, "W")), "L"));
    }
    const std::vector<Ref> refs = c.reference(c.inputs, W);
    REQUIRE(refs.size() == ins.size());
    for (size_t i = 0; i < ins.size(); i++) {
      const Ref& rf = refs[i];
      const Tensor g = ins[i]->grad.defined() ? ins[i]->grad : Tensor::zeros(ins[i]->value.shape());
      REQUIRE(int64_t(rf.ref.size()) == g.numel());
      std::string& kk = ks[c.op];
      const std::string kstr = fmt::format("{:g}", rf.K);
      if (kk.find(kstr) == std::string::npos) kk += (kk.empty() ? "" : ",") + kstr;
      int bad = 0;
      for (int64_t k = 0; k < g.numel(); k++) {
        checked++;
        const double err = std::abs(double(g[k]) - rf.ref[size_t(k)]);
        const double bound = rf.K * kU * rf.mag[size_t(k)];
        // The bound: K rounding steps of relative size u on the longest path, each over the
        // magnitude m of what it rounds (see the op's derivation above).
        if (!(err <= bound)) {
          if (bad++ < 3) {
            INFO(c.op << " " << c.size << " input " << i << " element " << k << ": got " << fmt::format("{:.9g}", g[k])
                      << " ref " << fmt::format("{:.9g}", rf.ref[size_t(k)]) << " |diff| " << err << " bound " << bound
                      << " (K " << rf.K << ", m " << rf.mag[size_t(k)] << ")");
            CHECK(err <= bound);
          }
          continue;
        }
        const double ratio = rf.mag[size_t(k)] > 0 ? err / (kU * rf.mag[size_t(k)]) : 0.0;
        auto& w = worst[c.op];  // (0, "") until an inexact element
        if (ratio > w.first) w = {ratio, fmt::format("{} input {} element {}", c.size, i, k)};
      }
      INFO(c.op << " " << c.size << " input " << i << ": " << bad << " elements outside the bound");
      CHECK(bad == 0);  // CHECK: every case runs, and each failing one is named
    }
  }
  const std::map<std::string, std::string> formula = {  // D = reduction_depth(last dim), n the product's inner size
      {"matmul", "n+1"}, {"gram", "N+2"}, {"softmax", "2D+25"}, {"log_softmax", "D+31"},
      {"layernorm", "dx D+11, dw R+T+1, db R+T-2"}, {"gelu", "12"}, {"relu", "0"},
      {"mul", "1"}, {"add", "0"}, {"scale", "1"}, {"cross_entropy", "D+25"}};
  for (auto& [op, w] : worst)
    fmt::print("ulp check {:>13}: K = {} = {}; worst |g-ref|/(u m) {:.3f}{}\n", op, formula.at(op), ks[op], w.first,
               w.second.empty() ? " (every element exact)" : " at " + w.second);
  fmt::print("ulp check: {} gradient elements in {} cases\n", checked, cases.size());
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

TEST_CASE("keep_grads = false frees intermediate gradients and values and leaves parameter gradients unchanged") {
  // A two-layer net where an intermediate (h) feeds two consumers: freeing must wait for both.
  // relu and mul read their inputs' values in backward, so a value let go too early fails here.
  auto run = [](bool keep, std::vector<Tensor>* grads, int* values_alive = nullptr) {
    Var w1 = rand_param("w1", {5, 6}, 11), w2 = rand_param("w2", {6, 3}, 12), x = rand_param("x", {4, 5}, 13);
    Tape tape;
    tape.keep_grads = keep;
    TapeScope scope(tape);
    Var h = relu(linear(x, w1, nullptr, "l1"), "h");
    Var y = add(linear(h, w2, nullptr, "l2"), linear(h, w2, nullptr, "l2b"), "y");
    tape.backward(sum(mul(y, y, "sq"), "L"));
    *grads = {w1->grad.clone(), w2->grad.clone(), x->grad.clone()};
    int alive = 0, values = 0;
    for (auto& e : tape.entries) {
      alive += e.out->grad.defined();
      values += e.out->value.defined();
      CHECK(e.out->value.numel() > 0);  // shapes stay
    }
    if (values_alive) *values_alive = values;
    if (!keep) {  // a released value is refused when read, not a crash
      CHECK_THROWS_WITH(h->value.to_vector(), Catch::Contains("released"));
      CHECK_THROWS_WITH(h->value.at({0, 0}), Catch::Contains("released"));
    }
    CHECK(w1->value.defined());  // leaves are not the tape's to free
    return alive;
  };
  std::vector<Tensor> kept, freed;
  int values_kept = 0, values_freed = 0;
  const int alive_kept = run(true, &kept, &values_kept), alive_freed = run(false, &freed, &values_freed);
  CHECK(alive_kept == 7);   // l1, h, l2, l2b, y, sq, L: every output gradient is still readable
  CHECK(alive_freed == 0);  // none is, once the walk has passed it
  CHECK(values_kept == 7);
  CHECK(values_freed == 1);  // the loss backward() was called on keeps its value
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
    for (int64_t k = 0; k < 24; k++) {  // dL/dx = Wa + Wc + 2h + Wd (1 + 2u) where x > 0 (h = u = x there)
      const float xk = x->value[k];       // (h's and u's values are let go when the tape frees)
      const float expect = xk > 0 ? Wa[k] + Wc[k] + 2 * xk + Wd[k] * (1 + 2 * xk) : 0.f;
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

TEST_CASE("logits_cross_entropy equals cross_entropy of matmul(h, w, false, true): loss and both gradients") {
  // The two ops in one, chunk by chunk: in one chunk it runs the same kernels in the same order
  // as the two ops, so (dL/dloss = 1, fresh gradients) the loss and gradients are the same bits;
  // in smaller chunks dL/dw is summed chunk by chunk, so it agrees to rounding. Upstream
  // gradients other than 1 and gradients that add to earlier ones go through its backward's scaling.
  const int R = 7, C = 5, V = 11, pad = 0;
  std::vector<int32_t> targets = {3, 0, 10, 1, 2, 0, 9};
  for (int chunk : {0, 1, 2, 3, 7, 100})
    for (float upstream : {1.f, 0.25f})
      for (bool shared : {false, true}) {  // h also feeds a second term: its gradient adds
        INFO("chunk " << chunk << " upstream " << upstream << " shared " << shared);
        Var h1 = rand_param("h", {R, C}, 11), w1 = rand_param("w", {V, C}, 12);
        Var h2 = parameter("h2", h1->value.clone()), w2 = parameter("w2", w1->value.clone());
        Tape tape;
        TapeScope scope(tape);
        Var fused = logits_cross_entropy(h1, w1, targets, 0.1f, pad, "fused", chunk);
        Var composed = cross_entropy(matmul(h2, w2, false, true, 1.f, "logits"), targets, 0.1f, pad, "composed");
        const bool same_kernels = chunk == 0 || chunk >= R;
        if (same_kernels) REQUIRE(fused->value.item() == composed->value.item());
        REQUIRE(fused->value.item() == Approx(composed->value.item()).epsilon(1e-6));
        auto loss = [&](const Var& l, const Var& h, const std::string& n) {
          Var s = upstream == 1.f ? l : scale(l, upstream, n + ".scaled");
          return shared ? add(s, sum(mul(h, h)), n + ".total") : s;
        };
        tape.backward(add(loss(fused, h1, "f"), loss(composed, h2, "c")));
        if (same_kernels && upstream == 1.f) {
          REQUIRE(h1->grad.to_vector() == h2->grad.to_vector());
          REQUIRE(w1->grad.to_vector() == w2->grad.to_vector());
        }
        REQUIRE(max_abs_diff(h1->grad, h2->grad) < 1e-6f);
        REQUIRE(max_abs_diff(w1->grad, w2->grad) < 1e-6f);
        REQUIRE(max_abs_diff(w1->grad, Tensor::zeros(w1->value.shape())) > 1e-3f);  // not vacuous
      }
}

TEST_CASE("logits_cross_entropy hands its gradients over in a training backward (keep_grads off), the same values") {
  // keep_grads off and parameters with no gradient yet: the forward's dL/dh and dL/dw become the
  // gradients themselves (grad_take) instead of being copied.
  const std::vector<int32_t> targets = {4, 0, 2, 7, 0, 1};
  std::vector<float> got[2][2];
  for (int keep : {0, 1}) {
    Var h = rand_param("h", {6, 4}, 41), w = rand_param("w", {8, 4}, 42);
    Tape tape;
    tape.keep_grads = keep;
    TapeScope scope(tape);
    Var x = scale(h, 1.f, "h.scaled");  // an intermediate: its gradient is the one handed over
    tape.backward(logits_cross_entropy(x, w, targets, 0.1f, 0, "loss", 4));
    got[keep][0] = h->grad.to_vector();
    got[keep][1] = w->grad.to_vector();
  }
  REQUIRE(got[0][0] == got[1][0]);
  REQUIRE(got[0][1] == got[1][1]);
  REQUIRE(std::any_of(got[0][1].begin(), got[0][1].end(), [](float v) { return v != 0.f; }));
}

TEST_CASE("logits_cross_entropy records nothing when nothing needs a gradient, and gives the same loss") {
  Var h = constant(ulpcheck::uniform({6, 4}, 31, -1, 1)), w = constant(ulpcheck::uniform({9, 4}, 32, -1, 1));
  Tape tape;
  TapeScope scope(tape);
  Var l2 = logits_cross_entropy(h, w, {1, 2, 3, 4, 5, 6}, 0.f, -1, "loss", 2);
  REQUIRE(tape.entries.empty());
  Var l1 = cross_entropy(matmul(h, w, false, true), {1, 2, 3, 4, 5, 6}, 0.f, -1);
  REQUIRE(l2->value.item() == Approx(l1->value.item()).epsilon(1e-6));
}

TEST_CASE("logits_cross_entropy of no rows is 0 with zero gradients, as cross_entropy of matmul") {
  Var h = parameter("h", Tensor::zeros({0, 3})), w = rand_param("w", {5, 3}, 33);
  Tape tape;
  TapeScope scope(tape);
  Var loss = logits_cross_entropy(h, w, {}, 0.1f, -1, "loss");
  REQUIRE(loss->value.item() == 0.f);
  tape.backward(loss);
  REQUIRE(w->grad.to_vector() == std::vector<float>(15, 0.f));
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

TEST_CASE("relu_dropout is dropout(relu(x)): the same output, gradient and draws, on one node") {
  // The feed-forward layer in training uses the one op; a run must not change by it.
  Tensor x0 = Tensor::empty({40, 30});
  Rng init(3);
  for (int64_t i = 0; i < x0.numel(); i++) x0[i] = init.normal();
  Tensor g0 = Tensor::empty({40, 30});
  for (int64_t i = 0; i < g0.numel(); i++) g0[i] = init.normal();
  auto run = [&](bool fused, Rng& rng, int64_t& nodes) {
    Tape tape;
    TapeScope scope(tape);
    Var x = parameter("x", x0.clone());
    Var y = fused ? relu_dropout(x, 0.25f, rng, "ff.act") : dropout(relu(x, "ff.act"), 0.25f, rng, "ff.drop");
    tape.backward(sum(mul(y, constant(g0, "g")), "L"));  // dL/dy = g0
    nodes = int64_t(tape.entries.size());
    return std::make_pair(y->value.clone(), x->grad.clone());
  };
  Rng r1(11), r2(11);
  int64_t fused_nodes = 0, plain_nodes = 0;
  auto [y1, dx1] = run(true, r1, fused_nodes);
  auto [y2, dx2] = run(false, r2, plain_nodes);
  REQUIRE(std::memcmp(y1.data(), y2.data(), sizeof(float) * size_t(y1.numel())) == 0);
  REQUIRE(std::memcmp(dx1.data(), dx2.data(), sizeof(float) * size_t(dx1.numel())) == 0);
  REQUIRE(r1.next() == r2.next());  // the same draws: what follows in a model sees the same stream
  REQUIRE(fused_nodes == plain_nodes - 1);
  int64_t zeros = 0;
  for (int64_t i = 0; i < y1.numel(); i++) zeros += y1[i] == 0.f;
  REQUIRE(zeros > y1.numel() / 2);  // ReLU's half and dropout's quarter of the rest: it did drop
  Rng r3(11);
  Tape tape;
  TapeScope scope(tape);
  Var x = parameter("x", x0.clone());
  REQUIRE(relu_dropout(x, 0.f, r3, "act")->value.at({0, 0}) == std::max(0.f, x0.at({0, 0})));  // p = 0: relu
  REQUIRE(tape.entries.back().op == "relu");
  Rng untouched(11);
  REQUIRE(r3.next() == untouched.next());  // and no draw, as dropout with p = 0 makes none
}

TEST_CASE("dropout_add is add(x, dropout(y)): the same output, gradients and draws, on one node") {
  // The residual sub-layers in training use the one op; a run must not change by it. Every way
  // its backward can go: x and y apart or one variable, x already holding a gradient from a later
  // consumer, one input a constant, gradients kept or handed over (keep_grads).
  Rng init(4);
  const auto randn = [&](Shape s) {
    Tensor t = Tensor::empty(s);
    for (int64_t i = 0; i < t.numel(); i++) t[i] = init.normal();
    return t;
  };
  const Tensor x0 = randn({40, 30}), y0 = randn({40, 30}), g0 = randn({40, 30}), g1 = randn({40, 30});
  enum Inputs { kApart, kSame, kConstantX, kConstantY };
  struct Out {
    Tensor s, dx, dy;
    int64_t nodes;
  };
  auto run = [&](bool fused, Inputs inputs, bool later_use, bool keep_grads, Rng& rng) {
    Tape tape;
    tape.keep_grads = keep_grads;
    TapeScope scope(tape);
    Var x = inputs == kConstantX ? constant(x0.clone(), "x") : parameter("x", x0.clone());
    Var y = inputs == kSame ? x : inputs == kConstantY ? constant(y0.clone(), "y") : parameter("y", y0.clone());
    Var s = fused ? dropout_add(x, y, 0.25f, rng, "sa.res") : add(x, dropout(y, 0.25f, rng, "sa.drop"), "sa.res");
    Var loss = sum(mul(s, constant(g0, "g")), "L");  // dL/ds = g0
    if (later_use) loss = add(loss, sum(mul(x, constant(g1, "g1")), "L1"), "L+L1");  // x's gradient starts at g1
    tape.backward(loss);
    const auto grad = [](const Var& v) { return v->grad.defined() ? v->grad.clone() : Tensor(); };
    return Out{s->value.clone(), grad(x), grad(y), int64_t(tape.entries.size())};
  };
  const auto same_bits = [](const Tensor& a, const Tensor& b) {
    if (a.defined() != b.defined()) return false;
    return !a.defined() || (a.numel() == b.numel() && std::memcmp(a.data(), b.data(), sizeof(float) * size_t(a.numel())) == 0);
  };
  for (Inputs inputs : {kApart, kSame, kConstantX, kConstantY})
    for (bool later_use : {false, true})
      for (bool keep_grads : {true, false}) {
        INFO("inputs " << int(inputs) << ", x used later " << later_use << ", keep_grads " << keep_grads);
        Rng r1(11), r2(11);
        const Out a = run(true, inputs, later_use, keep_grads, r1), b = run(false, inputs, later_use, keep_grads, r2);
        REQUIRE(same_bits(a.s, b.s));
        REQUIRE(same_bits(a.dx, b.dx));
        REQUIRE(same_bits(a.dy, b.dy));
        REQUIRE(r1.next() == r2.next());  // the same draws: what follows in a model sees the same stream
        // one node for two; a constant y's dropout is not recorded at all (nothing to differentiate)
        REQUIRE(a.nodes == b.nodes - (inputs == kConstantY ? 0 : 1));
        if (inputs == kApart && !later_use) {
          int64_t dropped = 0;
          for (int64_t i = 0; i < a.dy.numel(); i++) dropped += a.dy[i] == 0.f;
          REQUIRE(double(dropped) / double(a.dy.numel()) == Approx(0.25).margin(0.05));  // it did drop
          REQUIRE(same_bits(a.dx, g0));  // dL/dx = G
        }
      }
  Rng r3(11);
  Tape tape;
  TapeScope scope(tape);
  Var x = parameter("x", x0.clone()), y = parameter("y", y0.clone());
  REQUIRE(dropout_add(x, y, 0.f, r3, "res")->value.at({0, 0}) == x0.at({0, 0}) + y0.at({0, 0}));  // p = 0: add
  REQUIRE(tape.entries.back().op == "add");
  Rng untouched(11);
  REQUIRE(r3.next() == untouched.next());  // and no draw, as dropout with p = 0 makes none
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
  for (float p : {-0.1f, 1.f, std::numeric_limits<float>::quiet_NaN()})
    REQUIRE_THROWS_WITH(relu_dropout(a, p, rng, "act"), Catch::Contains("relu_dropout 'act': p must be in [0, 1)"));
  for (float p : {-0.1f, 1.f, std::numeric_limits<float>::quiet_NaN()})
    REQUIRE_THROWS_WITH(dropout_add(a, a, p, rng, "res"), Catch::Contains("dropout_add 'res': p must be in [0, 1)"));
  REQUIRE_THROWS_WITH(dropout_add(a, b, 0.1f, rng, "res"), Catch::Contains("dropout_add 'res': shapes (2, 3) and (3, 2) differ"));
  REQUIRE_THROWS_WITH(cross_entropy(a, {0, 7}, 0.f, -1, "ce"), Catch::Contains("cross_entropy 'ce': target 7 outside vocabulary of 3"));
  Var w = rand_param("w", {5, 3}, 3), w4 = rand_param("w4", {5, 4}, 4);
  REQUIRE_THROWS_WITH(logits_cross_entropy(a, w4, {0, 1}, 0.f, -1, "lce"),
                      Catch::Contains("logits_cross_entropy 'lce': hidden (2, 3) (rows, C) and weight (5, 4) (V, C) do not fit"));
  REQUIRE_THROWS_WITH(logits_cross_entropy(a, w, {0, 1}, 0.f, -1, "lce", -1),
                      Catch::Contains("logits_cross_entropy 'lce': chunks of -1 rows"));
  REQUIRE_THROWS_WITH(logits_cross_entropy(a, w, {0, 5}, 0.f, -1, "lce"),
                      Catch::Contains("logits_cross_entropy 'lce': target 5 outside vocabulary of 5"));
  REQUIRE_THROWS_WITH(logits_cross_entropy(a, w, {0}, 0.f, -1, "lce"),
                      Catch::Contains("logits_cross_entropy 'lce': 1 targets for 2 rows of logits"));
}

TEST_CASE("the per-head products on heads side by side count the flops of the same products on split heads") {
  // The frontier report's cost axis comes from these counts: the layout must not change them.
  const int B = 2, T = 5, S = 7, H = 3, D = 4;
  Var q = rand_param("q", {B, T, H * D}, 1), k = rand_param("k", {B, S, H * D}, 2), p = rand_param("p", {B, H, T, S}, 3);
  auto flops = [](auto build) {
    Tape tape;
    TapeScope scope(tape);
    build();
    return tape.product_flops();
  };
  const double scores = flops([&] { head_scores(q, k, H, 0.5f); });
  const double scores_split = flops([&] { matmul(split_heads(q, H), split_heads(k, H), false, true, 0.5f); });
  CHECK(scores == scores_split);
  CHECK(scores == 3 * 2.0 * B * H * T * S * D);  // forward and both gradients
  const double context = flops([&] { head_context(p, k); });
  const double context_split = flops([&] { matmul(p, split_heads(k, H), false, false); });
  CHECK(context == context_split);
  Var qs = rand_param("qs", {B, T, H * D}, 4);
  const double g = flops([&] { head_gram(qs, H, 0.5f); });
  const double g_split = flops([&] { gram(split_heads(qs, H), 0.5f); });
  CHECK(g == g_split);
}
