// core/json_file.h — JSON files read with errors that name the file.
//
//   nlohmann::json j = read_json("run/config.json");       // "run/config.json: not valid JSON (...)"
//   int seed = with_json_file("run/config.json", [](const nlohmann::json& j) { return j.at("seed").get<int>(); });
//   // a missing key: "run/config.json: key 'seed' not found", not nlohmann's bare message
#pragma once
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include <attnlab/core/usage_error.h>

namespace attn {

// A JSON file's content; a file that is not JSON raises "PATH: not valid JSON (...)".
nlohmann::json read_json(const std::string& path);
// "PATH: key 'x' not found" from nlohmann's "[json.exception.out_of_range.403] key 'x' not found".
std::string json_error(const std::string& path, const nlohmann::json::exception& e);
// f(the file's JSON), with a missing key, a wrong type or a value f refuses (a UsageError, as the
// flag's check would: "run/config.json: --lr: expected a number > 0") named with the file.
template <class F>
auto with_json_file(const std::string& path, F&& f) {
  const nlohmann::json j = read_json(path);
  try {
    return f(j);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(json_error(path, e));
  } catch (const UsageError& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace attn
