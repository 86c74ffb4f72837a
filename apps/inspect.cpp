// apps/inspect.cpp — `attnlab inspect grad` and `attnlab inspect attention`.
#include "apps/inspect.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "apps/commands.h"
#include <attnlab/autograd/ops.h>
#include <attnlab/core/fileio.h>
#include <attnlab/core/kernels.h>
#include <attnlab/core/threads.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/core/words.h>
#include <attnlab/data/utf8.h>
#include <attnlab/models/decode.h>
#include <attnlab/train/loaded_run.h>
#include <attnlab/train/plot.h>

namespace attn {
namespace fs = std::filesystem;

std::vector<double> symmetric_eigenvalues(const Tensor& s) {
  const int n = int(s.dim(0));
  std::vector<double> a(size_t(n) * n);
  for (int i = 0; i < n * n; i++) a[size_t(i)] = s[i];
  auto A = [&](int i, int j) -> double& { return a[size_t(i) * n + j]; };
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0;
    for (int i = 0; i < n; i++)
      for (int j = i + 1; j < n; j++) off += A(i, j) * A(i, j);
    if (off < 1e-24) break;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        if (std::fabs(A(p, q)) < 1e-300) continue;
        const double theta = (A(q, q) - A(p, p)) / (2 * A(p, q));
        const double t = (theta >= 0 ? 1 : -1) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), sn = t * c;
        for (int k = 0; k < n; k++) {  // A ← Jᵀ A J
          const double akp = A(k, p), akq = A(k, q);
          A(k, p) = c * akp - sn * akq;
          A(k, q) = sn * akp + c * akq;
        }
        for (int k = 0; k < n; k++) {
          const double apk = A(p, k), aqk = A(q, k);
          A(p, k) = c * apk - sn * aqk;
          A(q, k) = sn * apk + c * aqk;
        }
      }
  }
  std::vector<double> ev;
  for (int i = 0; i < n; i++) ev.push_back(A(i, i));
  std::sort(ev.begin(), ev.end());
  return ev;
}

// One head's scores S = α Q Kᵀ and attention P = softmax(S) (masked causally when asked; for
// qq-noself each token's own score hidden unless nothing else is visible), as the worked example
// and your own matrices both record them on the tape.
static std::pair<Var, Var> scores_and_probs(const Var& Q, const Var& K, float alpha, bool causal, bool noself) {
  const int N = int(Q->value.dim(0));
  Var S = matmul(Q, K, false, true, alpha, "S");
  Tensor mask = causal ? causal_mask(1, N) : noself ? Tensor({1, N, N}) : Tensor();
  if (noself) apply_noself(mask);
  Var P = reshape(softmax(reshape(S, {1, 1, N, N}, "S4"), mask, 1.f, "P4"), {N, N}, "P");
  return {S, P};
}

static bool shares_q(const std::string& variant) { return variant != "qk"; }

// The two paths into Q when K is Q: as the query (dQ = G Q/√d) and as the key (Gᵀ Q/√d); the tape
// adds them. And each token's attention to itself, P_ii.
static void paths_and_diagonal(GradInspection& r, const Var& S, const Var& Q, const Var& P, float inv) {
  const int N = int(Q->value.dim(0)), D = int(Q->value.dim(1));
  if (shares_q(r.variant)) {
    Tensor as_query({N, D}), as_key({N, D});
    matmul_reference(as_query.data(), S->grad.data(), Q->value.data(), N, D, N, false, false, inv);  // G Q/√d
    matmul_reference(as_key.data(), S->grad.data(), Q->value.data(), N, D, N, true, false, inv);     // Gᵀ Q/√d
    r.tensors["dQ as query"] = as_query;
    r.tensors["dQ as key"] = as_key;
  }
  r.diagonal_share.clear();
  for (int i = 0; i < N; i++) r.diagonal_share.push_back(P->value.at({i, i}));
}

// Central differences of L = loss() with respect to the leaves' entries (at most 2048 of them,
// evenly spread), against the gradients the tape left in the leaves.
static void finite_differences(GradInspection& r, const std::vector<Var>& leaves, const std::function<float()>& loss) {
  NoGradScope ng;
  const float h = 5e-3f;  // the step actually taken is (keep + h) − (keep − h) in float
  int64_t total = 0;
  for (const Var& v : leaves) total += v->value.numel();
  const int64_t stride = std::max<int64_t>(1, (total + 2047) / 2048);
  r.fd_step = 5e-3;
  r.fd_total = int(total);
  r.fd_entries = 0;
  r.fd_error = 0;
  int64_t k = 0;
  for (const Var& v : leaves)
    for (int64_t i = 0; i < v->value.numel(); i++, k++) {
      if (k % stride) continue;
      const float keep = v->value[i], hi = keep + h, lo = keep - h;
      v->value[i] = hi;
      const double up = loss();
      v->value[i] = lo;
      const double down = loss();
      v->value[i] = keep;
      const double numeric = (up - down) / (double(hi) - double(lo)), tape = v->grad[i];
      r.fd_error = std::max(r.fd_error, std::fabs(tape - numeric) / std::max({1.0, std::fabs(tape), std::fabs(numeric)}));
      r.fd_entries++;
    }
}

// The identities the printout states, each as the largest difference between the tape's
// gradient and the formula computed here from the printed G, Q, K: qq dQ = (G + Gᵀ) Q/√d and
// S_ii = |q_i|²/√d; qk dQ = G K/√d, dK = Gᵀ Q/√d. Also S's symmetry, P's, S's eigenvalues.
static void check_identities(GradInspection& r, const Var& S, const Var& Q, const Var& K, float inv) {
  const Tensor& G = S->grad;
  const int N = int(Q->value.dim(0)), D = int(Q->value.dim(1));
  Tensor expect({N, D});
  if (!K) {
    Tensor sym({N, N});
    for (int i = 0; i < N; i++)
      for (int j = 0; j < N; j++) sym.at({i, j}) = G.at({i, j}) + G.at({j, i});
    matmul_reference(expect.data(), sym.data(), Q->value.data(), N, D, N, false, false, inv);  // (G + Gᵀ) Q/√d
    r.identity_error = max_abs_diff(expect, Q->grad);
    for (int i = 0; i < N; i++) {
      double qn = 0;
      for (int d = 0; d < D; d++) qn += double(Q->value.at({i, d})) * Q->value.at({i, d});
      r.diagonal_error = std::max(r.diagonal_error, std::fabs(S->value.at({i, i}) - qn * inv));
    }
  } else {
    Tensor expect_k({N, D});
    matmul_reference(expect.data(), G.data(), K->value.data(), N, D, N, false, false, inv);   // G K/√d
    matmul_reference(expect_k.data(), G.data(), Q->value.data(), N, D, N, true, false, inv);  // Gᵀ Q/√d
    r.identity_error = std::max(max_abs_diff(expect, Q->grad), max_abs_diff(expect_k, K->grad));
  }
  const Tensor& P = r.tensors.at("P");
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      r.symmetry_error = std::max(r.symmetry_error, double(std::fabs(S->value.at({i, j}) - S->value.at({j, i}))));
      r.masked_asymmetry = std::max(r.masked_asymmetry, double(std::fabs(P.at({i, j}) - P.at({j, i}))));
    }
  r.eigenvalues = symmetric_eigenvalues(S->value);
}

GradInspection inspect_grad(const std::string& variant, int N, int D, uint64_t seed, bool causal) {
  if (variant != "qk" && variant != "qq" && variant != "qq-noself")
    throw UsageError("--variant: expected qk, qq, qq-noself, both or all, got '" + variant + "'");
  if (N < 1 || N > 64) throw UsageError(fmt::format("--tokens: expected 1..64, got {}", N));
  if (D < 1 || D > 64) throw UsageError(fmt::format("--dim: expected 1..64, got {}", D));
  GradInspection r;
  r.variant = variant;
  r.tokens = N;
  r.dim = D;
  r.causal = causal;
  Rng rng(seed);
  auto randn = [&](Shape s, float sc) {
    Tensor t(s);
    for (int64_t i = 0; i < t.numel(); i++) t[i] = std::round(rng.normal() * sc * 100.f) / 100.f;  // readable numbers
    return t;
  };
  // The same X, W_q, upstream gradient for both variants (same seed); W_k only for qk.
  Var X = parameter("X", randn({N, D}, 1.f));
  Var Wq = parameter("W_q", randn({D, D}, 1.f));
  Tensor wk_init = randn({D, D}, 1.f);
  Tensor R = randn({N, N}, 1.f);  // the upstream gradient dL/dP: L = Σ P ⊙ R
  Var Wk = variant == "qk" ? parameter("W_k", wk_init) : nullptr;
  const float inv = 1.f / std::sqrt(float(D));
  auto forward = [&]() {
    Var Q = matmul(X, Wq, false, false, 1.f, "Q");  // Q = X W_q
    Var K = Wk ? matmul(X, Wk, false, false, 1.f, "K") : Q;  // qq: K is Q itself
    auto [S, P] = scores_and_probs(Q, K, inv, causal, variant == "qq-noself");  // S = Q Kᵀ/√d (qq: Q feeds it twice)
    Var L = sum(mul(P, constant(R, "dL/dP"), "P*R"), "L");
    return std::array<Var, 5>{Q, K, S, P, L};
  };
  Tape tape;
  TapeScope scope(tape);
  auto [Q, K, S, P, L] = forward();
  tape.backward(L);
  r.tape_dump = tape.dump();
  r.dot = tape.to_dot();
  r.svg = tape.to_svg();
  const Tensor& G = S->grad;
  r.tensors = {{"X", X->value}, {"W_q", Wq->value}, {"Q", Q->value}, {"S", S->value},     {"P", P->value},
               {"dL/dP", R},    {"G", G},           {"dQ", Q->grad},  {"dW_q", Wq->grad}, {"dX", X->grad}};
  if (Wk) {
    r.tensors["W_k"] = Wk->value;
    r.tensors["K"] = K->value;
    r.tensors["dK"] = K->grad;
    r.tensors["dW_k"] = Wk->grad;
  }
  // The identities, computed by hand from the printed G, Q, K; the two paths; finite differences.
  check_identities(r, S, Q, Wk ? K : nullptr, inv);
  paths_and_diagonal(r, S, Q, P, inv);
  std::vector<Var> leaves = {X, Wq};
  if (Wk) leaves.push_back(Wk);
  finite_differences(r, leaves, [&]() { return forward()[4]->value.item(); });
  return r;
}

// ---- your own matrices -----------------------------------------------------------------

// A matrix typed on the command line ("1 2; 3 4": rows split by ';', values by spaces or commas)
// or read from @FILE (a row per line; blank lines skipped; a byte-order mark skipped). Refused:
// an empty value, an empty row between two ';' ("1;;2"), a value that is not a number or is out
// of float range, rows of unequal length, more than 64 x 64, a file over 1 MiB.
Tensor parse_matrix(const std::string& flag, const std::string& given) {
  if (given.empty()) throw UsageError(fmt::format("{}: empty; give a matrix ({} \"1 2; 3 4\": one row per token) or @FILE", flag, flag));
  if (given == "@") throw UsageError(fmt::format("{} @: no file named after the @ (give @FILE)", flag));
  const bool from_file = given[0] == '@';
  std::string text = from_file ? read_file_limited(given.substr(1), int64_t(1) << 20, flag + " " + given) : given;
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text = text.substr(3);
  std::vector<std::vector<float>> rows;
  std::string row;
  std::istringstream lines(text);
  const char split = text.find(';') != std::string::npos ? ';' : '\n';
  int empty_row = 0;  // the first empty row between ';'s, refused once a row follows it
  while (std::getline(lines, row, split)) {
    for (char& c : row)
      if (c == ',' || c == '\t' || c == '\r' || c == '\n' || c == ';') c = ' ';
    std::istringstream in(row);
    std::vector<float> values;
    std::string word;
    while (in >> word) {
      float v = 0;
      auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
      if (ec == std::errc::result_out_of_range)
        throw UsageError(fmt::format("{}: '{}' in row {} is out of float range (a float32 holds magnitudes up to {:.4g})",
                                     flag, word, rows.size() + 1, double(std::numeric_limits<float>::max())));
      if (ec != std::errc() || end != word.data() + word.size() || !std::isfinite(v))
        throw UsageError(fmt::format("{}: '{}' in row {} is not a number", flag, word, rows.size() + 1));
      values.push_back(v);
    }
    if (values.empty()) {
      // a blank line of a file, or the end after a last ';', is nothing; "1;;2" is a row left out
      if (split == ';' && !from_file && !empty_row) empty_row = int(rows.size()) + 1;
      continue;
    }
    if (empty_row) throw UsageError(fmt::format("{}: row {} is empty (rows are split by ';': \"1 2; 3 4\")", flag, empty_row));
    if (!rows.empty() && values.size() != rows[0].size())
      throw UsageError(fmt::format("{}: row {} has {}, row 1 has {} (rows are tokens, split by ';')", flag,
                                   rows.size() + 1, counted(int64_t(values.size()), "value"), rows[0].size()));
    rows.push_back(values);
  }
  if (rows.empty()) throw UsageError(fmt::format("{}: no numbers (e.g. {} \"1 2; 3 4\": one row per token)", flag, flag));
  if (rows.size() > 64 || rows[0].size() > 64)
    throw UsageError(fmt::format("{}: {}x{}, larger than 64x64 (this is for matrices you read)", flag, rows.size(), rows[0].size()));
  Tensor t({int64_t(rows.size()), int64_t(rows[0].size())});
  for (size_t i = 0; i < rows.size(); i++)
    for (size_t j = 0; j < rows[0].size(); j++) t.at({int64_t(i), int64_t(j)}) = rows[i][j];
  return t;
}

GradInspection inspect_matrices(const std::string& variant, const UserMatrices& u, uint64_t seed, bool causal) {
  const int N = int(u.q.dim(0)), D = int(u.q.dim(1));
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
  };
  auto dims = [](const Tensor& t) { return fmt::format("{}x{}", t.dim(0), t.dim(1)); };
  need(variant != "qk" || u.k.defined(), "--k: qk needs K (rows are tokens, as --q's); give --k, or --variant qq");
  if (u.k.defined()) need(u.k.shape() == u.q.shape(), fmt::format("--k: {}, but --q is {}: K has Q's shape (tokens x d)", dims(u.k), dims(u.q)));
  if (u.v.defined()) need(u.v.dim(0) == N, fmt::format("--v: {} rows, but --q has {}: one row per token", u.v.dim(0), N));
  if (u.wo.defined()) {
    need(u.v.defined(), "--o: the output projection needs --v (O = P V W_o)");
    need(u.wo.dim(0) == u.v.dim(1), fmt::format("--o: {} rows, but --v has {} columns (O = P V W_o)", u.wo.dim(0), u.v.dim(1)));
  }
  const int64_t out_cols = u.wo.defined() ? u.wo.dim(1) : u.v.defined() ? u.v.dim(1) : N;
  const char* out_name = u.v.defined() ? "O" : "P";
  if (u.dout.defined())
    need(u.dout.dim(0) == N && u.dout.dim(1) == out_cols,
         fmt::format("--dout: {}, but {} is {}x{}: the gradient has the shape of what it is the gradient of", dims(u.dout),
                     out_name, N, out_cols));
  // Scores beyond float32 print as inf and their softmax as nan; the identities would then compare
  // nan with nan. Computed in double first, and refused with the largest a float holds.
  const Tensor& Km = variant == "qk" ? u.k : u.q;
  double largest = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      double dot = 0;
      for (int d = 0; d < D; d++) dot += double(u.q.at({i, d})) * double(Km.at({j, d}));
      largest = std::max(largest, std::abs(dot) / std::sqrt(double(D)));
    }
  const double fmax = double(std::numeric_limits<float>::max());
  need(largest <= fmax, fmt::format("--q{}: the scores Q {}ᵀ/√d reach {:.3g}, beyond float32's largest, {:.4g}; scale the "
                                    "matrices down", variant == "qk" ? ", --k" : "", variant == "qk" ? "K" : "Q", largest, fmax));
  GradInspection r;
  r.variant = variant;
  r.tokens = N;
  r.dim = D;
  r.causal = causal;
  Rng rng(seed);
  Tensor R = u.dout;
  if (!R.defined()) {  // the worked example's upstream gradient, drawn from the seed
    R = Tensor({N, out_cols});
    for (int64_t i = 0; i < R.numel(); i++) R[i] = std::round(rng.normal() * 100.f) / 100.f;
  }
  const float inv = 1.f / std::sqrt(float(D));
  Var Q = parameter("Q", u.q.clone());
  Var K = variant == "qk" ? parameter("K", u.k.clone()) : Q;  // qq: K is Q itself
  Var V = u.v.defined() ? parameter("V", u.v.clone()) : nullptr;
  Var Wo = u.wo.defined() ? parameter("W_o", u.wo.clone()) : nullptr;
  auto forward = [&]() {
    auto [S, P] = scores_and_probs(Q, K, inv, causal, variant == "qq-noself");
    Var O = V ? matmul(P, V, false, false, 1.f, "O") : P;
    if (Wo) O = matmul(O, Wo, false, false, 1.f, "O");
    Var L = sum(mul(O, constant(R, "dL/dout"), "out*R"), "L");
    return std::array<Var, 4>{S, P, O, L};
  };
  Tape tape;
  TapeScope scope(tape);
  auto [S, P, O, L] = forward();
  tape.backward(L);
  r.tape_dump = tape.dump();
  r.dot = tape.to_dot();
  r.svg = tape.to_svg();
  const Tensor& G = S->grad;
  r.tensors = {{"Q", Q->value}, {"S", S->value}, {"P", P->value}, {"G", G}, {"dQ", Q->grad}};
  r.tensors[V ? "dL/dO" : "dL/dP"] = R;
  if (variant == "qk") r.tensors["K"] = K->value, r.tensors["dK"] = K->grad;
  if (V) r.tensors["V"] = V->value, r.tensors["O"] = O->value, r.tensors["dV"] = V->grad;
  if (Wo) r.tensors["W_o"] = Wo->value, r.tensors["dW_o"] = Wo->grad;
  for (auto& [name, t] : r.tensors)  // finite scores can still overflow in the products after them
    need(all_finite(t), fmt::format("--q: {} overflows float32 with these matrices (largest {:.4g}); scale them down", name, fmax));
  check_identities(r, S, Q, variant == "qk" ? K : nullptr, inv);
  paths_and_diagonal(r, S, Q, P, inv);
  std::vector<Var> leaves = {Q};
  for (const Var& v : {variant == "qk" ? K : nullptr, V, Wo})
    if (v) leaves.push_back(v);
  finite_differences(r, leaves, [&]() { return forward()[3]->value.item(); });
  return r;
}

std::string heatmap_svg(const Tensor& m, const std::string& title) {
  const int R = int(m.dim(0)), C = int(m.dim(1)), cell = 56, left = 70, top = 46;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"18\" font-size=\"14\">{}</text>\n"
      "<text x=\"{}\" y=\"38\" text-anchor=\"middle\">key j</text>\n"
      "<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">query i</text>\n",
      std::max(left + C * cell + 16, 20 + 8 * int(title.size())), top + R * cell + 16, 14, title, left + C * cell / 2, top + R * cell / 2, top + R * cell / 2);
  for (int i = 0; i < R; i++) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", left - 8, top + i * cell + cell / 2 + 4, i + 1);
    for (int j = 0; j < C; j++) {
      const float v = std::clamp(m.at({i, j}), 0.f, 1.f);
      auto mix = [v](int dark) { return int(std::lround(255 - v * (255 - dark))); };  // white (0) to #08306b (1)
      svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"rgb({},{},{})\" stroke=\"#999999\"/>\n",
                         left + j * cell, top + i * cell, cell, cell, mix(8), mix(48), mix(107));
      svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">{:.2f}</text>\n", left + j * cell + cell / 2,
                         top + i * cell + cell / 2 + 4, v > 0.55 ? "white" : "black", m.at({i, j}));
    }
  }
  for (int j = 0; j < C; j++)
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + j * cell + cell / 2,
                       top + R * cell + 14, j + 1);
  return svg + "</svg>\n";
}

// ---- a request, from the command line or from `attnlab serve` -----------------------------

std::vector<GradInspection> inspect_request(const GradRequest& req) {
  if (std::find(kGradVariantChoices.begin(), kGradVariantChoices.end(), req.variant) == kGradVariantChoices.end())
    throw UsageError(fmt::format("--variant: '{}' is not one of qk, qq, qq-noself, both, all", req.variant));
  for (auto [flag, n] : {std::pair<const char*, int>{"--tokens", req.tokens}, {"--dim", req.dim}})
    if (n < 1 || n > req.max_size)  // as the command line's check says it (whole_number)
      throw UsageError(fmt::format("{}: expected a whole number from 1 to {}, got '{}'", flag, req.max_size, n));
  static const char* const kMatrixFlags[] = {"--q", "--k", "--v", "--o", "--dout"};  // the order they are checked in
  for (auto& [flag, value] : req.matrices)
    if (std::find_if(std::begin(kMatrixFlags), std::end(kMatrixFlags), [&](const char* f) { return flag == f; }) ==
        std::end(kMatrixFlags))
      throw UsageError(fmt::format("{}: not a matrix of inspect grad (--q, --k, --v, --o, --dout)", flag));
  for (const char* flag : kMatrixFlags) {
    if (!req.matrices.count(flag)) continue;
    const std::string& value = req.matrices.at(flag);
    if (value.empty())  // typed but empty (--q ""): not the random example
      throw UsageError(fmt::format("{}: empty; give a matrix ({} \"1 2; 3 4\": one row per token) or @FILE", flag, flag));
    if (!req.allow_files && value[0] == '@')
      throw UsageError(fmt::format("{}: a matrix as text (\"1 2; 3 4\"); @FILE is for the command line", flag));
  }
  const bool own = req.matrices.count("--q") > 0;
  auto given = [&](const char* flag) { return req.matrices.count(flag) ? req.matrices.at(flag) : std::string(); };
  if (own && !req.size_flag.empty())
    throw UsageError(fmt::format("{}: does not apply with --q (the tokens and d are --q's rows and columns)", req.size_flag));
  if (own && req.matrices.count("--k") && (req.variant == "qq" || req.variant == "qq-noself"))
    throw UsageError(fmt::format("--k: {} has no K (Q stands in for it); drop --k, or give --variant qk, both or all", req.variant));
  auto wanted = [&](const std::string& v) {
    return req.variant == v || req.variant == "all" || (req.variant == "both" && v != "qq-noself");
  };
  std::vector<GradInspection> rs;
  if (!own) {
    for (const char* flag : kMatrixFlags)
      if (req.matrices.count(flag))
        throw UsageError(fmt::format("{}: goes with --q (your own matrices); --k, --v, --o and --dout all do", flag));
    for (const std::string& v : kGradVariants)
      if (wanted(v)) rs.push_back(inspect_grad(v, req.tokens, req.dim, req.seed, req.causal));
    return rs;
  }
  UserMatrices m;
  auto parse = [&](const char* flag) {
    Tensor t = parse_matrix(flag, given(flag));
    if (t.dim(0) > req.max_size || t.dim(1) > req.max_size)
      throw UsageError(fmt::format("{}: {}x{}, larger than {}x{}", flag, t.dim(0), t.dim(1), req.max_size, req.max_size));
    return t;
  };
  m.q = parse("--q");
  if (req.matrices.count("--k")) m.k = parse("--k");
  if (req.matrices.count("--v")) m.v = parse("--v");
  if (req.matrices.count("--o")) m.wo = parse("--o");
  if (req.matrices.count("--dout")) m.dout = parse("--dout");
  for (const std::string& v : kGradVariants)
    if (wanted(v) && (v != "qk" || m.k.defined() || req.variant == "qk")) rs.push_back(inspect_matrices(v, m, req.seed, req.causal));
  return rs;
}

nlohmann::json inspections_json(const std::vector<GradInspection>& rs, bool with_tape) {
  nlohmann::json out = nlohmann::json::array();
  for (auto& r : rs) {
    out.push_back(inspection_json(r));
    if (with_tape) out.back()["tape"] = r.tape_dump;
  }
  return out;
}

// ---- printing --------------------------------------------------------------------------

nlohmann::json inspection_json(const GradInspection& r) {
  using nlohmann::json;
  json matrices = json::object();
  for (auto& [name, t] : r.tensors) {
    json rows = json::array();
    for (int64_t i = 0; i < t.dim(0); i++) {
      json row = json::array();
      for (int64_t j = 0; j < t.dim(1); j++) {
        const float v = t.at({i, j});
        row.push_back(std::isfinite(v) ? json(v) : json(nullptr));
      }
      rows.push_back(row);
    }
    matrices[name] = rows;
  }
  json checks = {{"identity_error", r.identity_error},
                 {"symmetry_error", r.symmetry_error},
                 {"diagonal_share", r.diagonal_share},
                 {"finite_differences", {{"max_relative_error", r.fd_error}, {"step", r.fd_step},
                                         {"entries", r.fd_entries}, {"of", r.fd_total}}}};
  if (shares_q(r.variant)) {
    checks["diagonal_error"] = r.diagonal_error;
    checks["eigenvalues"] = r.eigenvalues;
  }
  if (r.causal) checks["masked_asymmetry"] = r.masked_asymmetry;
  return {{"variant", r.variant}, {"tokens", r.tokens}, {"dim", r.dim}, {"causal", r.causal},
          {"matrices", matrices}, {"checks", checks}};
}

static std::vector<std::string> matrix_lines(const std::string& title, const Tensor& t) {
  std::vector<std::string> lines = {title + " " + shape_str(t.shape())};
  const int R = int(t.dim(0)), C = int(t.dim(1));
  for (int i = 0; i < R; i++) {
    std::string l = i == 0 ? "[[" : " [";
    for (int j = 0; j < C; j++) {
      const float v = t.at({i, j});
      l += std::isinf(v) ? fmt::format("{:>8}", v < 0 ? "-inf" : "inf") : fmt::format("{:8.4f}", v);
      if (j + 1 < C) l += " ";
    }
    l += i + 1 == R ? "]]" : "]";
    lines.push_back(l);
  }
  return lines;
}

static void print_side_by_side(const std::vector<std::vector<std::string>>& cols) {
  std::vector<size_t> w(cols.size(), 0);
  size_t lines = 0;
  for (size_t c = 0; c < cols.size(); c++) {
    for (auto& l : cols[c]) w[c] = std::max(w[c], l.size());
    lines = std::max(lines, cols[c].size());
  }
  for (size_t i = 0; i < lines; i++) {
    std::string line = " ";
    for (size_t c = 0; c < cols.size(); c++) {
      const std::string cell = i < cols[c].size() ? cols[c][i] : "";
      line += " " + (c + 1 < cols.size() ? fmt::format("{:<{}}   ", cell, w[c]) : cell);
    }
    if (cols.size() == 1) line = fmt::format("  {:<{}}    ", i < cols[0].size() ? cols[0][i] : "", w[0]);  // as always printed
    fmt::print("{}\n", line);
  }
  fmt::print("\n");
}

static void print_inspection(const std::vector<GradInspection>& rs) {
  const GradInspection& f = rs[0];
  const bool user = !f.tensors.count("X");  // --q: your own matrices
  const char* out = f.tensors.count("O") ? "O" : "P";
  fmt::print("One attention head: {} tokens, d = {}{}. L = Σ {} ⊙ R with a fixed upstream gradient R = dL/d{}.\n"
             "Every gradient below is read from the tape after backward(L).\n\n",
             f.tokens, f.dim, f.causal ? ", causal mask" : "", out, out);
  if (rs.size() >= 2)
    fmt::print("Left: qk, S = Q Kᵀ/√d{}.  Right: qq, S = Q Qᵀ/√d (W_k = W_q, K = Q){}.\n\n", user ? "" : " with K = X W_k",
               rs.size() == 3 ? "; then qq-noself, qq with each token's own score masked" : "");
  const std::vector<std::pair<std::string, std::string>> rows =
      user ? std::vector<std::pair<std::string, std::string>>{
                 {"Q", "Q"}, {"K", "K"}, {"V", "V"}, {"W_o", "W_o"}, {"S", "S = Q Kᵀ/√d"}, {"P", "P = softmax(S)"},
                 {"O", f.tensors.count("W_o") ? "O = P V W_o" : "O = P V"}, {"dL/dP", "dL/dP (upstream)"},
                 {"dL/dO", "dL/dO (upstream)"}, {"G", "G = dL/dS"}, {"dQ as query", "dQ as query = G Q/√d"},
                 {"dQ as key", "dQ as key = Gᵀ Q/√d"}, {"dQ", "dQ"}, {"dK", "dK"}, {"dV", "dV"}, {"dW_o", "dW_o"}}
           : std::vector<std::pair<std::string, std::string>>{
                 {"X", "X"}, {"W_q", "W_q"}, {"W_k", "W_k"}, {"Q", "Q = X W_q"}, {"K", "K = X W_k"}, {"S", "S"},
                 {"P", "P = softmax(S)"}, {"dL/dP", "dL/dP (upstream)"}, {"G", "G = dL/dS"},
                 {"dQ as query", "dQ as query = G Q/√d"}, {"dQ as key", "dQ as key = Gᵀ Q/√d"}, {"dQ", "dQ"}, {"dK", "dK"},
                 {"dW_q", "dW_q"}, {"dW_k", "dW_k"}};
  for (auto& [key, label] : rows) {
    bool any = false;  // your own matrices: only what this head has (no V given: no O, no dV)
    for (auto& r : rs) any = any || r.tensors.count(key);
    if (user && !any && key != "K" && key != "dK") continue;
    std::vector<std::vector<std::string>> cols;
    for (auto& r : rs) {
      auto it = r.tensors.find(key);
      const std::string title = "[" + r.variant + "] " + (user && key == "S" && shares_q(r.variant) ? "S = Q Qᵀ/√d" : label);
      if (it != r.tensors.end()) cols.push_back(matrix_lines(title, it->second));
      else if (key.rfind("dQ as", 0) == 0) cols.push_back({title + ": none (Q is used once: dQ = G K/√d)"});
      else cols.push_back({title + ": none (qq has no separate key)"});
    }
    print_side_by_side(cols);
  }
  for (auto& r : rs) {
    fmt::print("{}:\n", r.variant);
    if (shares_q(r.variant)) {
      fmt::print("  dQ from the tape vs (G + Gᵀ) Q/√d by hand: max |difference| = {:.2e}  (Q is used twice; the tape adds both paths)\n",
                 r.identity_error);
      fmt::print("  S symmetric: max |S − Sᵀ| = {:.2e};  diagonal S_ii vs |q_i|²/√d: max |difference| = {:.2e}\n",
                 r.symmetry_error, r.diagonal_error);
      std::string ev;
      for (double e : r.eigenvalues) ev += fmt::format(" {:.4f}", e);
      fmt::print("  eigenvalues of S:{}  (all ≥ 0 up to rounding: S = Q Qᵀ/√d is positive semi-definite)\n", ev);
    } else {
      fmt::print("  dQ vs G K/√d and dK vs Gᵀ Q/√d by hand: max |difference| = {:.2e}\n", r.identity_error);
      fmt::print("  S symmetric? max |S − Sᵀ| = {:.4f} (a general bilinear form X W_q W_kᵀ Xᵀ is not)\n", r.symmetry_error);
    }
    if (r.causal)
      fmt::print("  causal mask: S + mask has -inf above the diagonal, so the masked scores are not symmetric{}; "
                 "max |P − Pᵀ| = {:.4f}\n", shares_q(r.variant) ? " even though Q Qᵀ is" : "", r.masked_asymmetry);
    if (shares_q(r.variant))
      fmt::print("  the two paths into Q: dQ as query (G Q/√d) + dQ as key (Gᵀ Q/√d) = dQ, each printed above\n");
    std::string diag;
    double mean = 0;
    for (double p : r.diagonal_share) diag += fmt::format(" {:.3f}", p), mean += p / double(r.diagonal_share.size());
    fmt::print("  diagonal of P (each token's attention to itself):{}  (mean {:.3f}{})\n", diag, mean,
               r.variant == "qq-noself" ? "; 0 wherever another token is visible" : "");
    fmt::print("  finite differences (h = {:g}, {} of {} entries of the inputs): max |tape − numeric| / max(1, |·|) = {:.2e}\n",
               r.fd_step, r.fd_entries, r.fd_total, r.fd_error);
  }
}

// ---- inspect attention -----------------------------------------------------------------

AttentionMaps attention_maps(const LoadedRun& run, const std::string& text) {
  const Model& m = *run.model;
  const ArchTraits& arch = m.arch();
  if (!valid_utf8(text)) throw UsageError("--text: invalid UTF-8 (give the sentence as UTF-8 text)");
  if (text.find_first_not_of(" \t") == std::string::npos)
    throw UsageError(fmt::format("--text: empty; give a {}", arch.translates() ? "source sentence" : "sentence"));
  std::vector<int32_t> ids = run.tok->encode(text);
  if (int(ids.size()) > m.cfg.max_len - 1)
    throw UsageError(fmt::format("--text: {} tokens, more than this model reads ({})", ids.size(), m.cfg.max_len - 1));
  AttentionMaps maps;
  maps.text = text;
  maps.translates = arch.translates();
  maps.generates = arch.generates();
  // The attention of one forward pass: the source and its greedy translation (seq2seq), the
  // sentence after bos (lm), the sentence unmasked (mlm).
  std::map<std::string, Tensor> probs;
  Batch b;
  {
    NoGradScope ng;
    Context ctx;
    ctx.attention_probs = &probs;
    b = m.read_sentence(ids, ctx);
    if (arch.translates())
      maps.translation = run.tok->decode(std::vector<int32_t>(b.tgt_out.begin(), b.tgt_out.end() - 1));
  }
  auto piece = [&](int32_t id) {
    std::string s = run.tok->decode({id});
    return s.empty() ? (id == Tokenizer::kEos ? "</s>" : id == Tokenizer::kBos ? "<s>" : "?") : s;
  };
  std::vector<std::string> src_tok, tgt_tok;
  for (auto id : b.src) src_tok.push_back(piece(id));
  for (auto id : b.tgt_in) tgt_tok.push_back(piece(id));
  for (auto& [name, mha] : m.sites()) {
    const Tensor& P = probs.at(name);  // (1,H,Tq,Tk)
    AttentionMaps::Site site;
    site.name = name;
    site.variant = mha->variant.str();
    const bool enc = name.rfind("enc.", 0) == 0;
    site.cross = name.find("cross") != std::string::npos;
    site.queries = enc ? src_tok : tgt_tok;
    site.keys = (enc || site.cross) ? src_tok : tgt_tok;
    const bool causal = !enc && !site.cross;
    site.note = !mha->variant.shared_qk ? fmt::format("W_q W_kᵀ asymmetry |A−Aᵀ|/|A| = {:.3f}", wqk_asymmetry(*mha))
                : causal ? "scores QQᵀ/√d symmetric by construction (qq); the causal mask keeps j <= i only, so the "
                           "masked scores are not"
                         : "scores QQᵀ/√d symmetric by construction (qq)";
    const int64_t H = P.dim(1), Tq = P.dim(2), Tk = P.dim(3);
    for (int64_t h = 0; h < H; h++) {
      Tensor head({Tq, Tk});
      std::copy(P.data() + h * Tq * Tk, P.data() + (h + 1) * Tq * Tk, head.data());
      site.heads.push_back(head);
    }
    maps.sites.push_back(std::move(site));
  }
  return maps;
}

// One head's summary: entropy in nats per row; for self-attention the mean diagonal mass and
// |P − Pᵀ|/|P| (QQᵀ scores are symmetric, but softmax normalises rows and a causal mask keeps
// only j <= i, so P is not: 0 only if P were symmetric).
struct HeadSummary {
  double entropy = 0, diagonal = 0, asymmetry = 0;
};
static HeadSummary summarise(const Tensor& P, bool cross) {
  const int Tq = int(P.dim(0)), Tk = int(P.dim(1));
  HeadSummary s;
  double asym = 0, norm = 0;
  for (int i = 0; i < Tq; i++)
    for (int j = 0; j < Tk; j++) {
      const float p = P[int64_t(i) * Tk + j];
      if (p > 0) s.entropy -= p * std::log(p);
      if (!cross && i == j) s.diagonal += p;
      if (!cross) {
        const double pt = P[int64_t(j) * Tk + i];
        asym += (double(p) - pt) * (double(p) - pt);
        norm += double(p) * p;
      }
    }
  s.entropy /= Tq;
  s.diagonal /= Tq;
  s.asymmetry = norm > 0 ? std::sqrt(asym / norm) : 0;
  return s;
}

nlohmann::json attention_json(const AttentionMaps& maps) {
  using nlohmann::json;
  json sites = json::array();
  for (const auto& site : maps.sites) {
    json heads = json::array();
    for (const Tensor& P : site.heads) {
      const HeadSummary s = summarise(P, site.cross);
      json rows = json::array();
      for (int64_t i = 0; i < P.dim(0); i++) {
        json row = json::array();
        for (int64_t j = 0; j < P.dim(1); j++) row.push_back(P[i * P.dim(1) + j]);
        rows.push_back(row);
      }
      heads.push_back({{"probs", rows}, {"entropy", s.entropy},
                       {"diagonal_mass", site.cross ? json(nullptr) : json(s.diagonal)},
                       {"asymmetry", site.cross ? json(nullptr) : json(s.asymmetry)}});
    }
    sites.push_back({{"name", site.name}, {"variant", site.variant}, {"note", site.note}, {"cross", site.cross},
                     {"queries", site.queries}, {"keys", site.keys}, {"heads", heads}});
  }
  return {{"text", maps.text}, {"translation", maps.translates ? json(maps.translation) : json(nullptr)},
          {"sites", sites}};
}

static void inspect_attention(const std::string& run_dir, const std::string& text, const std::string& out_dir) {
  LoadedRun run = load_run(run_dir);
  const AttentionMaps maps = attention_maps(run, text);
  if (maps.translates)
    fmt::print("source:      {}\ntranslation: {}\n\n", text, maps.translation);
  else
    fmt::print("{}: {}\n\n", maps.generates ? "text (after <s>)" : "text (no token masked)", text);
  fs::create_directories(out_dir);
  std::string gp = plot::script_header("the attention maps", "attention.gp", 520, 440, 9, 1.5, false) +
                   "unset key\nunset grid\nset palette defined (0 'white', 1 '#08306b')\nset cbrange [0:1]\nset yrange [] reverse\n";
  for (const auto& site : maps.sites) {
    const auto& qt = site.queries;
    const auto& kt = site.keys;
    fmt::print("== {} ({}; {})\n", site.name, site.variant, site.note);
    for (size_t h = 0; h < site.heads.size(); h++) {
      const Tensor& P = site.heads[h];
      const int Tq = int(P.dim(0)), Tk = int(P.dim(1));
      std::string data;
      for (int i = 0; i < Tq; i++) {
        for (int j = 0; j < Tk; j++) data += fmt::format("{}{:.4f}", j ? "," : "", P[int64_t(i) * Tk + j]);
        data += "\n";
      }
      const HeadSummary s = summarise(P, site.cross);
      fmt::print("  head {}: entropy {:.3f} nats/row{}\n", h, s.entropy,
                 site.cross ? "" : fmt::format(", diagonal mass {:.3f}, |P−Pᵀ|/|P| = {:.3f}", s.diagonal, s.asymmetry));
      // compact text view: the strongest key per query
      for (int i = 0; i < Tq; i++) {
        int best = 0;
        for (int j = 1; j < Tk; j++)
          if (P[int64_t(i) * Tk + j] > P[int64_t(i) * Tk + best]) best = j;
        fmt::print("    {:>12} -> {:<12} {:.2f}\n", qt[size_t(i)], kt[size_t(best)], P[int64_t(i) * Tk + best]);
      }
      const std::string file = fmt::format("{}_h{}", site.name, h);
      write_file_atomic(out_dir + "/" + file + ".csv", data);
      std::string xt, yt;
      for (int j = 0; j < Tk; j++) xt += fmt::format("{}{} {}", j ? ", " : "", plot::quoted(kt[size_t(j)]), j);
      for (int i = 0; i < Tq; i++) yt += fmt::format("{}{} {}", i ? ", " : "", plot::quoted(qt[size_t(i)]), i);
      gp += fmt::format("set output {}\nset title {}\nset xtics ({}) rotate by 60 right\nset ytics ({})\n"
                        "plot {} matrix with image\n", plot::quoted(file + ".png"), plot::quoted(fmt::format("{} head {}", site.name, h)),
                        xt, yt, plot::quoted(file + ".csv"));
    }
  }
  write_file_atomic(out_dir + "/attention.gp", gp);
  if (plot::draw(out_dir, "attention.gp", "") == plot::Drawn::yes)
    fmt::print("\nheatmaps: {}/*.png\n", out_dir);
  else
    fmt::print("\ngnuplot not available: heatmap data in {}/*.csv, script {}/attention.gp\n", out_dir, out_dir);
}

void add_inspect_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("inspect", "look inside: one head's gradients, or a trained model's attention");
  cmd->require_subcommand(1);
  struct GradOpts {
    std::string variant = "both", dot;
    int tokens = 3, dim = 2;
    uint64_t seed = 1;
    bool causal = false, dump_tape = false, json = false;
    std::string q, k, v, o, dout;  // your own matrices
    std::string svg;                // a directory for the figures
  };
  auto g = std::make_shared<GradOpts>();
  CLI::App* grad = cmd->add_subcommand("grad", "one attention head at readable size: QKᵀ next to QQᵀ, gradients from the tape");
  grad->add_option("--variant", g->variant, "qk, qq, qq-noself (qq, each token's own score masked), both (qk and qq) or all")
      ->check(CLI::IsMember(kGradVariantChoices));
  grad->add_option("--tokens", g->tokens, "sequence length")->check(whole_number(1, 64));
  grad->add_option("--dim", g->dim, "head dimension d")->check(whole_number(1, 64));
  grad->add_option("--seed", g->seed, "random seed for X, W and the upstream gradient")->check(whole_number(0));
  grad->add_flag("--causal", g->causal, "apply a causal mask (decoder self-attention)");
  grad->add_flag("--dump-tape", g->dump_tape, "print the tape after backward");
  grad->add_flag("--json", g->json, "print everything as JSON instead (matrices as rows, the checks; with --dump-tape the tape too)");
  grad->add_option("--dot", g->dot, "write the tape as Graphviz to this file");
  grad->add_option("--svg", g->svg, "write DIR/tape-<variant>.svg (the tape: Q feeding the score product twice for qq) "
                                    "and DIR/attention-<variant>.svg (P as a heatmap)");
  grad->add_option("--q", g->q, "your own Q instead of X W_q: rows are tokens, \"1 2; 3 4\" (or @FILE, a row per line)");
  grad->add_option("--k", g->k, "with --q: K for qk (Q's shape; without it only qq is shown)");
  grad->add_option("--v", g->v, "with --q: V (a row per token): the head's output O = P V");
  grad->add_option("--o", g->o, "with --v: the output projection W_o: O = P V W_o");
  grad->add_option("--dout", g->dout, "with --q: the upstream gradient dL/dO (dL/dP without --v) instead of one drawn from --seed");
  grad->callback([g, grad]() {
    GradRequest req;
    req.variant = g->variant;
    req.tokens = g->tokens;
    req.dim = g->dim;
    req.size_flag = grad->count("--tokens") > 0 ? "--tokens" : grad->count("--dim") > 0 ? "--dim" : "";
    req.seed = g->seed;
    req.causal = g->causal;
    const std::pair<const char*, const std::string*> matrices[] = {
        {"--q", &g->q}, {"--k", &g->k}, {"--v", &g->v}, {"--o", &g->o}, {"--dout", &g->dout}};
    for (auto [flag, value] : matrices)
      if (grad->count(flag) > 0) req.matrices[flag] = *value;
    std::vector<GradInspection> rs = inspect_request(req);
    if (g->json) {
      fmt::print("{}\n", inspections_json(rs, g->dump_tape).dump(1));
    } else {
      print_inspection(rs);
    }
    for (auto& r : rs) {
      if (g->dump_tape && !g->json) fmt::print("\ntape ({}):\n{}", r.variant, r.tape_dump);
      if (!g->dot.empty()) {
        const std::string path = rs.size() > 1 ? g->dot + "." + r.variant + ".dot" : g->dot;
        write_file_atomic(path, r.dot);
        fmt::print(g->json ? stderr : stdout, "wrote {}\n", path);
      }
      if (!g->svg.empty()) {
        std::error_code ec;
        fs::create_directories(g->svg, ec);
        if (ec) throw std::runtime_error(fmt::format("--svg {}: cannot create the directory: {}", g->svg, ec.message()));
        write_file_atomic(g->svg + "/tape-" + r.variant + ".svg", r.svg);
        write_file_atomic(g->svg + "/attention-" + r.variant + ".svg",
                          heatmap_svg(r.tensors.at("P"), fmt::format("{}: P = softmax(S), {} tokens", r.variant, r.tokens)));
        fmt::print(g->json ? stderr : stdout, "wrote {0}/tape-{1}.svg and {0}/attention-{1}.svg\n", g->svg, r.variant);
      }
    }
  });
  struct AttOpts {
    std::string run, text, out;
    int threads = 0;
  };
  auto a = std::make_shared<AttOpts>();
  CLI::App* att = cmd->add_subcommand("attention", "attention maps of a trained run for one sentence");
  att->add_option("--run", a->run, "run directory")->required();
  att->add_option("--text", a->text, "source sentence (a translation run), or the sentence an lm or mlm reads")->required();
  att->add_option("--out", a->out, "directory for heatmaps (default: RUN/attention)");
  att->add_option("--threads", a->threads, "threads (default: ATTNLAB_THREADS or all cores)")->check(whole_number(0, 1024));
  att->callback([a]() {
    set_threads(a->threads);
    inspect_attention(a->run, a->text, a->out.empty() ? a->run + "/attention" : a->out);
  });
}

}  // namespace attn
