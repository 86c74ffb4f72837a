// core/csv.h — the CSV files attnlab writes and reads back, one rule both ways (RFC 4180): a
// cell holding a comma, a quote or a newline is quoted, its quotes doubled; anything else is
// written as it is.
//
//   out += csv_field("Intel Xeon, 2 cores") + "\n";      // "\"Intel Xeon, 2 cores\""
//   for (auto& row : read_csv("runs/qk/metrics.csv")) ...  // cells unquoted again
#pragma once
#include <string>
#include <vector>

namespace attn {

std::string csv_field(const std::string& s);

// The rows of a CSV text, each a list of unquoted cells. A last line without its newline is one
// a writer has not finished (a report read while a run trains) and is left out. A quote still
// open at the end after a newline throws naming `path` (rows are written whole, quotes closed).
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& path);
// parse_csv of the file at path; no rows when there is no file.
std::vector<std::vector<std::string>> read_csv(const std::string& path);

// A cell that must be a number ("nan" and "inf" are numbers here: the caller decides); anything
// else throws "path:LINE: expected a number, got '...'" (line: the 0-based row index).
double csv_number(const std::string& path, size_t line, const std::string& cell);

}  // namespace attn
