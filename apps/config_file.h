// apps/config_file.h — a TOML file of command-line settings (`attnlab train --config FILE`).
//
//   for (const ConfigSetting& s : read_config_file("configs/base.toml"))
//     ... "--" + s.name, s.value ...   // name with dashes; value as it would be typed
//
// The file is read by a real TOML parser (toml++): `3_2`, `"""qk"""`, comments and a leading
// BOM are TOML. What a settings file may not hold is refused with the file and line:
//   - a TOML error (the same key twice among them)
//   - a [section] or a dotted key (`a.b = 1`): every setting is at the top level
//   - `d-model` and `d_model` both (one option spelt two ways)
//   - a value that is not a flag's text: a date or time, an array of arrays or tables
// Which names are options, and which values they take, is the caller's to check (the file's
// setting names `line` for that). The file is read up to max_bytes (docs/reliability.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attn {

struct ConfigSetting {
  std::string key;    // as written in the file: "d_model"
  std::string name;   // the flag's name without its dashes: "d-model"
  std::string value;  // as typed after the flag: "256", "7e-4", "qk", "1,2" for an array
  bool is_bool = false;  // true / false in the file (a switch takes only these)
  int line = 0;          // 1-based, the key's line
};

// The settings in file order. Throws UsageError("--config FILE:LINE: ...") for a file that is
// not a settings file, and a runtime_error naming the file when it cannot be read.
std::vector<ConfigSetting> read_config_file(const std::string& file, int64_t max_bytes);

// The same over text already read (the fuzz target, and tests); `file` names it in errors.
std::vector<ConfigSetting> parse_config_text(const std::string& text, const std::string& file);

}  // namespace attn
