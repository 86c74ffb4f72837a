// apps/config_file.cpp — see config_file.h. The one file that includes toml++, header-only,
// so that the parser is compiled with attnlab's flags (sanitizers and fuzzer coverage included).
#include "apps/config_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string_view>

#include <attnlab/core/fileio.h>
#include <attnlab/core/usage_error.h>

#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 1
#define TOML_ENABLE_FORMATTERS 0
#if __has_include(<toml++/toml.hpp>)
#include <toml++/toml.hpp>
#else
#include <toml++/toml.h>  // Debian 12's libtomlplusplus-dev ships only this name
#endif

namespace attn {

// One scalar as the flag's text; an empty string with *why set when it is not one.
static std::string scalar_text(const toml::node& v, std::string* why) {
  if (auto s = v.value_exact<std::string>()) return *s;
  if (auto i = v.value_exact<int64_t>()) return std::to_string(*i);
  if (auto d = v.value_exact<double>()) return fmt::format("{}", *d);  // shortest text that reads back equal
  if (auto b = v.value_exact<bool>()) return *b ? "true" : "false";
  *why = v.is_array() || v.is_table() ? "an array of arrays or tables is not a setting"
                                      : "a date or time is not a setting";
  return "";
}

std::vector<ConfigSetting> parse_config_text(const std::string& text, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(file));
  } catch (const toml::parse_error& e) {
    throw UsageError(fmt::format("--config {}:{}: {}", file, e.source().begin.line, e.description()));
  }
  std::vector<ConfigSetting> out;
  for (auto&& [key, value] : root) {
    ConfigSetting s;
    s.key = std::string(key.str());
    s.line = int(key.source().begin.line ? key.source().begin.line : value.source().begin.line);
    if (value.is_table())
      throw UsageError(fmt::format("--config {}:{}: sections are not read: put every setting at the top level, "
                                   "as `name = value`", file, value.source().begin.line ? value.source().begin.line : s.line));
    if (value.is_array_of_tables())
      throw UsageError(fmt::format("--config {}:{}: sections are not read: put every setting at the top level, "
                                   "as `name = value`", file, s.line));
    std::string why;
    if (const toml::array* a = value.as_array()) {
      for (size_t k = 0; k < a->size(); k++) {
        const std::string item = scalar_text((*a)[k], &why);
        if (!why.empty()) break;
        s.value += (k ? "," : "") + item;
      }
    } else {
      s.value = scalar_text(value, &why);
      s.is_bool = value.is_boolean();
    }
    if (!why.empty()) throw UsageError(fmt::format("--config {}:{}: {}: {}", file, s.line, s.key, why));
    s.name = s.key;
    std::replace(s.name.begin(), s.name.end(), '_', '-');
    out.push_back(std::move(s));
  }
  // toml::table iterates in key order; errors and flags follow the file's order
  std::stable_sort(out.begin(), out.end(), [](const ConfigSetting& a, const ConfigSetting& b) { return a.line < b.line; });
  std::map<std::string, const ConfigSetting*> seen;
  for (const ConfigSetting& s : out) {
    auto [at, fresh] = seen.emplace(s.name, &s);
    if (!fresh)
      throw UsageError(fmt::format("--config {}:{}: {} sets the same option as {} on line {}", file, s.line, s.key,
                                   at->second->key, at->second->line));
  }
  return out;
}

std::vector<ConfigSetting> read_config_file(const std::string& file, int64_t max_bytes) {
  return parse_config_text(read_file_limited(file, max_bytes, "--config " + file), file);
}

}  // namespace attn
