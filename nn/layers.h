// nn/layers.h — named parameters and the layers built from autograd ops.
//
// Every parameter lives in a ParamStore under a dotted name ("enc.0.ff.w1.weight"), which is
// also its safetensors name in checkpoints and its label in tape dumps and gdb.
//
//   ParamStore ps; Rng rng(1);
//   Linear l(ps, "proj", 256, 512, rng);      // proj.weight (256,512), proj.bias (512,)
//   Var y = l(x);                             // x (B,T,256) -> (B,T,512)
#pragma once
#include <map>
#include <string>
#include <vector>

#include <attnlab/autograd/ops.h>

namespace attn {

enum class Init { Zeros, Ones, XavierUniform, Normal };

struct ParamStore {
  std::vector<Var> params;
  Var add(const std::string& name, const Shape& shape, Init init, Rng& rng, float std = 0.02f);
  Var find(const std::string& name) const;  // null when absent
  int64_t count(const std::string& prefix = "") const;  // parameters whose name starts with prefix
  void zero_grad();
};

// Runtime switches shared by every layer in one forward pass.
struct Context {
  bool train = false;
  Rng* rng = nullptr;  // dropout draws; required when train and dropout > 0
  // When set, every attention site stores its probabilities P (B,H,Tq,Tk) here under its name
  // ("enc.0.self_attn"): how training's statistics and `inspect attention` observe them.
  std::map<std::string, Tensor>* attention_probs = nullptr;
};

struct Linear {
  Var weight, bias;  // (in, out), (out) — bias may be null
  Linear() = default;
  Linear(ParamStore& ps, const std::string& name, int in, int out, Rng& rng, bool with_bias = true);
  Var operator()(const Var& x, const std::string& node) const { return linear(x, weight, bias, node); }
};

struct LayerNorm {
  Var weight, bias;
  LayerNorm() = default;
  LayerNorm(ParamStore& ps, const std::string& name, int dim, Rng& rng);
  Var operator()(const Var& x, const std::string& node) const { return layernorm(x, weight, bias, node); }
};

struct FeedForward {  // w2(dropout(act(w1 x))); ReLU and dropout one op (relu_dropout) in training
  Linear w1, w2;
  bool use_gelu = false;
  float dropout_p = 0.f;
  std::string name;
  FeedForward() = default;
  FeedForward(ParamStore& ps, const std::string& name, int d_model, int d_ff, bool gelu, float dropout, Rng& rng);
  Var operator()(const Var& x, const Context& ctx) const;
};

// Sinusoidal position table (T, C) of positions from .. from+T-1:
// PE[t, 2i] = sin(t / 10000^(2i/C)), PE[t, 2i+1] = cos(...).
Tensor sinusoidal_positions(int T, int C, int from = 0);

}  // namespace attn
