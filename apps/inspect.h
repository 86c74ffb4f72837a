// apps/inspect.h — one attention head at a size the mind can hold, QKᵀ next to QQᵀ.
//
//   GradInspection g = inspect_grad("qq", /*tokens=*/3, /*dim=*/2, /*seed=*/1, /*causal=*/false);
//   g.tensors["dQ"], g.identity_error   // ∂Q from the tape vs (G + Gᵀ) Q/√d computed by hand
#pragma once
#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <vector>

#include <attnlab/autograd/tape.h>

namespace attn {

struct GradInspection {
  std::string variant;  // "qk" | "qq" | "qq-noself" (qq whose tokens do not attend to themselves)
  int tokens = 0, dim = 0;
  bool causal = false;
  std::map<std::string, Tensor> tensors;  // X, Wq, Wk, Q, K, S, P, dL/dP, G, dQ, dK, dWq, dWk (all from the tape)
  // The identities, each as the largest absolute difference:
  double identity_error = 0;   // qq: |dQ − (G + Gᵀ)Q/√d|;  qk: max(|dQ − G K/√d|, |dK − Gᵀ Q/√d|)
  double symmetry_error = 0;   // |S − Sᵀ| (qq: 0 up to rounding)
  double diagonal_error = 0;   // qq: |S_ii − |q_i|²/√d|
  std::vector<double> eigenvalues;  // of S (qq: symmetric, ≥ 0 up to rounding)
  double masked_asymmetry = 0;  // with a causal mask: |P − Pᵀ| (no longer symmetric)
  std::vector<double> diagonal_share;  // P_ii: each token's attention to itself
  // Central differences of L against the tape's gradients of the leaves (X, W_q, W_k; or your
  // Q, K, V, W_o): the largest |tape − numeric| / max(1, |tape|, |numeric|) over fd_entries entries.
  double fd_error = 0, fd_step = 0;
  int fd_entries = 0, fd_total = 0;
  std::string tape_dump, dot, svg;  // the tape as text, Graphviz and SVG
};

GradInspection inspect_grad(const std::string& variant, int tokens, int dim, uint64_t seed, bool causal);
// Everything an inspection holds (matrices as rows of numbers, the checks) as JSON: what
// `inspect grad --json` prints, one object per variant.
nlohmann::json inspection_json(const GradInspection& r);

// Your own matrices, rows are tokens: Q (N,d) and, for qk, K (N,d); optionally V (N,dv) and
// W_o (dv,m), giving the output O = P V (W_o); and the gradient of the loss with respect to the
// last of P / O (default: R = dL/dP drawn from seed, as the worked example).
struct UserMatrices {
  Tensor q, k, v, wo, dout;  // undefined: not given
};
// "1 2; 3 4" (rows split by ';' or new lines, values by spaces or commas), or @FILE with that
// text. Errors name the flag: ragged rows, a value that is not a number, an empty matrix.
Tensor parse_matrix(const std::string& flag, const std::string& text);
// Checks the shapes fit together (naming the flags), then one head on them, gradients from the tape.
GradInspection inspect_matrices(const std::string& variant, const UserMatrices& m, uint64_t seed, bool causal);
std::vector<double> symmetric_eigenvalues(const Tensor& s);  // Jacobi rotations, ascending
// A matrix as an SVG heatmap (white 0 to dark blue 1, each cell's value written in it): P of a head.
std::string heatmap_svg(const Tensor& m, const std::string& title);

}  // namespace attn
