// train/plot.h — the one way attnlab draws: a gnuplot script and its data files, written in a
// directory with paths relative to it, then gnuplot run there. The reports (train/report.cpp,
// train/frontier.cpp) and `inspect attention` all draw through this file, so a text put into a
// script is quoted by one rule, a directory given to the shell by another, and a variant has the
// same colour and dashes in every plot.
//
//   std::string gp = plot::script_header("the report's plots", "plots.gp", 900, 520, 10, 1.5, false);
//   gp += fmt::format("set title {}\nplot 'plots/x.csv' using 1:2 lt 1 title {}\n", plot::quoted(title), plot::quoted(label));
//   write_file_atomic(dir + "/plots.gp", gp);
//   plot::Drawn d = plot::draw(dir, "plots.gp", "plots.log");
#pragma once
#include <string>
#include <string_view>

namespace attn::plot {

// Text for a gnuplot script, as a single-quoted string: gnuplot reads nothing in it as special
// but the quote itself, so an apostrophe becomes ’ (U+2019), which reads the same in a title.
std::string quoted(std::string_view text);
// A path for /bin/sh, single-quoted (a quote inside as '\'').
std::string shell_quoted(std::string_view path);

// Line types 1..kStyles: each a colour apart from the others with its own dash pattern, so no
// two series of a plot share a style (a plot with more series is split by its caller).
constexpr int kStyles = 12;
// A script's first lines: a comment saying what it draws and how to run it (`script`: its file
// name), the line types (with a marker each when `points`), the PNG terminal of that size and
// font, comma-separated data, the key outside on the right, a grid.
std::string script_header(const std::string& what, const std::string& script, int width, int height, int font_size,
                          double line_width, bool points);

// Runs gnuplot on `script` inside `dir`; its messages go to dir/`log` (nowhere when empty).
enum class Drawn { yes, no_gnuplot, failed };
Drawn draw(const std::string& dir, const std::string& script, const std::string& log);

}  // namespace attn::plot
