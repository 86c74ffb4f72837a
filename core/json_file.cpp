// core/json_file.cpp — JSON files read with errors that name the file.
#include <attnlab/core/json_file.h>

#include <attnlab/core/fileio.h>

namespace attn {

std::string json_error(const std::string& path, const nlohmann::json::exception& e) {
  std::string what = e.what();  // "[json.exception.out_of_range.403] key 'x' not found"
  if (!what.empty() && what[0] == '[' && what.find("] ") != std::string::npos) what = what.substr(what.find("] ") + 2);
  return path + ": " + what;
}

nlohmann::json read_json(const std::string& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace attn
