// tests/torch_parity.h — hands a model, its loss and gradients to tests/torch_parity.py, which
// rebuilds the model in PyTorch, and requires every gradient within 1e-4 (relative).
//   TEST_CASE("PyTorch parity: ...", "[torch]") { skip_unless_torch(); ... check_torch_parity(dir, model, cfg, loss, batch_json); }
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <attnlab/core/fileio.h>
#include <attnlab/core/safetensors.h>
#include <attnlab/models/checkpoint.h>
#include "tests/skip.h"

// The [torch] cases' requirement: the system Python (not a virtualenv's) imports torch and numpy.
inline void skip_unless_torch() {
  skip_unless(std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0,
              "python3-torch and python3-numpy not installed (make test installs them)");
}

// Writes the weights, attnlab's loss and gradients, the config and the batch into dir, runs the
// PyTorch rebuild there, and removes dir.
inline void check_torch_parity(const std::filesystem::path& d, const attn::Model& m, const attn::ModelConfig& cfg,
                               const attn::Var& loss, const nlohmann::json& batch) {
  using namespace attn;
  save_model(m, (d / "model.safetensors").string());
  std::vector<std::pair<std::string, Tensor>> grads = {{"loss", loss->value.reshape({1})}};
  for (auto& p : m.params.params) grads.push_back({"grad/" + p->name, p->grad.defined() ? p->grad : Tensor::zeros(p->value.shape())});
  save_safetensors((d / "attnlab.safetensors").string(), grads);
  write_file_atomic((d / "config.json").string(), cfg.to_json().dump());
  write_file_atomic((d / "batch.json").string(), batch.dump());
  const std::string cmd = std::string("/usr/bin/python3 ") + ATTNLAB_TEST_DIR + "/torch_parity.py " + d.string() + " > " +
                          (d / "out.json").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string out = read_file((d / "out.json").string());
  INFO(out);
  REQUIRE(rc == 0);
  auto j = nlohmann::json::parse(out);
  REQUIRE(j["params"].get<size_t>() == m.params.params.size());
  REQUIRE(j["max_rel_err"].get<double>() <= 1e-4);
  std::filesystem::remove_all(d);
}
