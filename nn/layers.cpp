// nn/layers.cpp — parameter initialisation and the small layers.
#include <attnlab/nn/layers.h>

#include <cmath>
#include <stdexcept>

namespace attn {

Var ParamStore::add(const std::string& name, const Shape& shape, Init init, Rng& rng, float std) {
  if (find(name)) throw std::logic_error("duplicate parameter name " + name);
  for (int64_t d : shape)
    if (d <= 0) throw std::invalid_argument(fmt::format("parameter {}: size must be positive, got {}", name, shape_str(shape)));
  Tensor t(shape);
  switch (init) {
    case Init::Zeros: break;
    case Init::Ones: t.fill(1.f); break;
    case Init::XavierUniform: {
      const float fan_in = float(shape[0]), fan_out = float(shape.size() > 1 ? shape[1] : shape[0]);
      const float a = std::sqrt(6.f / (fan_in + fan_out));
      for (int64_t i = 0; i < t.numel(); i++) t[i] = (rng.uniform() * 2.f - 1.f) * a;
      break;
    }
    case Init::Normal:
      for (int64_t i = 0; i < t.numel(); i++) t[i] = rng.normal() * std;
      break;
  }
  Var v = parameter(name, t);
  params.push_back(v);
  return v;
}

Var ParamStore::find(const std::string& name) const {
  for (const Var& p : params)
    if (p->name == name) return p;
  return nullptr;
}

int64_t ParamStore::count(const std::string& prefix) const {
  int64_t n = 0;
  for (const Var& p : params)
    if (p->name.rfind(prefix, 0) == 0) n += p->value.numel();
  return n;
}

void ParamStore::zero_grad() {
  for (const Var& p : params)
    if (p->grad.defined()) p->grad.zero();
}

Linear::Linear(ParamStore& ps, const std::string& name, int in, int out, Rng& rng, bool with_bias) {
  weight = ps.add(name + ".weight", {in, out}, Init::XavierUniform, rng);
  if (with_bias) bias = ps.add(name + ".bias", {out}, Init::Zeros, rng);
}

LayerNorm::LayerNorm(ParamStore& ps, const std::string& name, int dim, Rng& rng) {
  weight = ps.add(name + ".weight", {dim}, Init::Ones, rng);
  bias = ps.add(name + ".bias", {dim}, Init::Zeros, rng);
}

FeedForward::FeedForward(ParamStore& ps, const std::string& name_, int d_model, int d_ff, bool gelu, float dropout,
                         Rng& rng)
    : w1(ps, name_ + ".w1", d_model, d_ff, rng), w2(ps, name_ + ".w2", d_ff, d_model, rng), use_gelu(gelu),
      dropout_p(dropout), name(name_) {}

Var FeedForward::operator()(const Var& x, const Context& ctx) const {
  Var h = w1(x, name + ".w1");
  if (ctx.train && !use_gelu && dropout_p > 0.f) {
    // One op for ReLU and its dropout in training: one pass each way and no ReLU output kept
    // (docs/benchmarks.md). The same numbers as the two ops below.
    h = relu_dropout(h, dropout_p, *ctx.rng, name + ".act");
  } else {
    h = use_gelu ? gelu(h, name + ".act") : relu(h, name + ".act");
    if (ctx.train) h = dropout(h, dropout_p, *ctx.rng, name + ".drop");
  }
  return w2(h, name + ".w2");
}

Tensor sinusoidal_positions(int T, int C, int from) {
  Tensor pe({T, C});
  for (int r = 0; r < T; r++) {
    const int t = from + r;
    for (int i = 0; i < C; i += 2) {
      const double freq = std::pow(10000.0, -double(i) / C);
      pe.at({r, i}) = float(std::sin(t * freq));
      if (i + 1 < C) pe.at({r, i + 1}) = float(std::cos(t * freq));
    }
  }
  return pe;
}

}  // namespace attn
