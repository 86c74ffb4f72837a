// models/checkpoint.cpp — weights in, weights out, with name and shape checks.
#include <attnlab/models/checkpoint.h>

#include <stdexcept>

#include <attnlab/core/safetensors.h>

namespace attn {

void save_model(const Model& model, const std::string& path, const std::map<std::string, std::string>& meta) {
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const Var& p : model.params.params) ts.push_back({p->name, p->value});
  auto m = meta;
  m["format"] = "attnlab";
  m["preset"] = model.cfg.preset;
  save_safetensors(path, ts, m);
}

void load_model_weights(Model& model, const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  for (const Var& p : model.params.params) {
    const Tensor* t = f.find(p->name);
    if (!t)
      throw std::runtime_error(fmt::format("{}: has no tensor '{}' — checkpoint of another variant or model ({} {})?", path,
                                           p->name, "model preset", model.cfg.preset));
    if (t->shape() != p->value.shape())
      throw std::runtime_error(fmt::format("{}: tensor '{}' has shape {} but the model expects {}", path, p->name,
                                           shape_str(t->shape()), shape_str(p->value.shape())));
    if (!all_finite(*t))  // a diverged or damaged checkpoint would translate garbage with exit 0
      throw std::runtime_error(fmt::format("{}: tensor '{}' holds NaN or Inf", path, p->name));
  }
  if (f.tensors.size() != model.params.params.size()) {
    for (auto& [name, t] : f.tensors)
      if (!model.params.find(name))
        throw std::runtime_error(fmt::format("{}: tensor '{}' does not belong to this model (preset {})", path, name,
                                             model.cfg.preset));
  }
  for (const Var& p : model.params.params) {
    const Tensor* t = f.find(p->name);
    std::copy(t->data(), t->data() + t->numel(), p->value.data());
  }
}

}  // namespace attn
