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
#include <attnlab/train/loaded_run.h>

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
// What `inspect grad` is asked, as its flags: from the command line, or from `attnlab serve`'s
// POST /api/grad. Checked here, so both refuse the same input with the same one-line errors.
// The heads inspect grad works, in the order it prints them; --variant also takes "both" (qk and
// qq) and "all" (the three).
inline const std::vector<std::string> kGradVariants = {"qk", "qq", "qq-noself"};
inline const std::vector<std::string> kGradVariantChoices = {"qk", "qq", "qq-noself", "both", "all"};

struct GradRequest {
  std::string variant = "both";  // qk, qq, qq-noself, both (qk and qq) or all
  int tokens = 3, dim = 2;       // the random example's size
  std::string size_flag;         // "--tokens" or "--dim" when one was given (refused with --q)
  uint64_t seed = 1;
  bool causal = false;
  std::map<std::string, std::string> matrices;  // the given ones of --q, --k, --v, --o, --dout, as typed
  int max_size = 64;             // tokens, dim and every matrix's rows and columns at most
  bool allow_files = true;       // a matrix may be @FILE (not from the server)
};
std::vector<GradInspection> inspect_request(const GradRequest& req);
// What `inspect grad --json` prints: inspection_json of each, with the tape when asked.
nlohmann::json inspections_json(const std::vector<GradInspection>& rs, bool with_tape);

std::vector<double> symmetric_eigenvalues(const Tensor& s);  // Jacobi rotations, ascending
// A matrix as an SVG heatmap (white 0 to dark blue 1, each cell's value written in it): P of a head.
std::string heatmap_svg(const Tensor& m, const std::string& title);

// A trained run's attention for one sentence, in memory: what `inspect attention` prints and
// draws, and what `attnlab serve` shows.
struct AttentionMaps {
  std::string text, translation;  // translation: the greedy one (seq2seq runs)
  bool translates = false, generates = false;
  struct Site {
    std::string name, variant, note;  // note: the scores' symmetry (qq) or W_q W_kᵀ's asymmetry (qk)
    bool cross = false;
    std::vector<std::string> queries, keys;  // the tokens of P's rows and columns
    std::vector<Tensor> heads;               // P of each head, (Tq, Tk)
  };
  std::vector<Site> sites;
};
AttentionMaps attention_maps(const LoadedRun& run, const std::string& text);
nlohmann::json attention_json(const AttentionMaps& maps);

}  // namespace attn
