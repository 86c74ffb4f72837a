// models/checkpoint.h — model weights as safetensors named by parameter names.
//
//   save_model(model, "run/model.best.safetensors");
//   load_model_weights(model, "run/model.best.safetensors");   // names and shapes must fit
#pragma once
#include <map>
#include <string>

#include <attnlab/models/model.h>

namespace attn {

void save_model(const Model& model, const std::string& path, const std::map<std::string, std::string>& meta = {});
// Throws with a one-line message naming the file and the first missing/extra/misshapen tensor.
void load_model_weights(Model& model, const std::string& path);

}  // namespace attn
