// core/csv.cpp — CSV cells quoted on writing and unquoted on reading by the same rule.
#include <attnlab/core/csv.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include <attnlab/core/fileio.h>

namespace attn {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false;  // inside a quoted cell, where commas and newlines are the cell's own
  size_t quote_start = 0;
  for (size_t i = 0; i < text.size(); i++) {
    const char c = text[i];
    if (quoted) {
      if (c != '"') cell += c;
      else if (i + 1 < text.size() && text[i + 1] == '"') cell += '"', i++;  // a doubled quote
      else quoted = false;
    } else if (c == '"' && cell.empty()) {
      quoted = true;
      quote_start = i;
    } else if (c == ',') {
      row.push_back(std::move(cell));
      cell.clear();
    } else if (c == '\n') {
      row.push_back(std::move(cell));
      cell.clear();
      rows.push_back(std::move(row));
      row.clear();
    } else {
      cell += c;
    }
  }
  // A quote open at the end: the writer's unfinished last line, unless a line has ended since it
  // opened (attnlab's writers end a row's line only after closing its quotes).
  if (quoted && text.find('\n', quote_start) != std::string::npos)
    throw std::runtime_error(fmt::format("{}:{}: a quoted cell is not closed", path, rows.size() + 1));
  return rows;  // (an unfinished last line is dropped)
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  if (!std::filesystem::exists(path)) return {};
  return parse_csv(read_file(path), path);
}

double csv_number(const std::string& path, size_t line, const std::string& cell) {
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  if (cell.empty() || end != cell.c_str() + cell.size())
    throw std::runtime_error(fmt::format("{}:{}: expected a number, got '{}'", path, line + 1, cell));
  return v;
}

}  // namespace attn
