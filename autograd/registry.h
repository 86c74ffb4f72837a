// autograd/registry.h — the names of every differentiable op, below the tape.
//
// The tape refuses to record an op whose name is not here (always, not only in debug builds),
// and tests/test_autograd.cpp requires a gradcheck entry (autograd/gradcheck.cpp) for each: an
// op cannot exist without being checked against finite differences.
//   if (!is_registered_op("gram")) ...
#pragma once
#include <array>
#include <string_view>

namespace attn {

inline constexpr std::array<std::string_view, 25> kOps = {
    "matmul",      "linear",       "gram",      "head_scores",   "head_gram", "head_context", "add",
    "mul",         "scale",        "relu",      "gelu",          "softmax",   "log_softmax",  "layernorm",
    "embedding",   "cross_entropy", "dropout",  "reshape",       "transpose12", "sum",        "l2_normalize",
    "add_rows",    "logits_cross_entropy", "relu_dropout", "dropout_add"};

constexpr bool is_registered_op(std::string_view op) {
  for (auto k : kOps)
    if (k == op) return true;
  return false;
}

}  // namespace attn
