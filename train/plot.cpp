// train/plot.cpp — gnuplot scripts: quoting, line styles, and running gnuplot.
#include <attnlab/train/plot.h>

#include <cstdlib>

#include <fmt/format.h>

namespace attn::plot {

std::string quoted(std::string_view text) {
  std::string s = "'";
  for (char c : text) s += c == '\'' ? std::string("\u2019") : std::string(1, c);
  return s + "'";
}

std::string shell_quoted(std::string_view path) {
  std::string s = "'";
  for (char c : path) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return s + "'";
}

std::string script_header(const std::string& what, const std::string& script, int width, int height, int font_size,
                          double line_width, bool points) {
  // Dark2's eight, then four more that stay apart from them; gnuplot's dash types 1-5, then patterns.
  static const char* colours[kStyles] = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                                         "#a6761d", "#666666", "#1f78b4", "#b2182b", "#000000", "#80cdc1"};
  static const char* dashes[kStyles] = {"1", "2", "3", "4", "5", "(8,4,2,4)", "(2,6)", "(12,4)", "(6,3,6,3,1,3)",
                                        "(16,4,4,4)", "(1,2)", "(10,2,2,2,2,2)"};
  std::string gp = fmt::format("# gnuplot script for {}: gnuplot {} (run inside its directory)\n", what, script);
  for (int i = 0; i < kStyles; i++)
    gp += fmt::format("set linetype {} lc rgb '{}' lw {} dt {}{}\n", i + 1, colours[i], line_width, dashes[i],
                      points ? fmt::format(" pt {} ps 1.1", i % 7 + 1) : "");
  gp += fmt::format("set terminal pngcairo noenhanced size {},{} font 'sans,{}'\nset datafile separator ','\n"
                    "set key outside right\nset grid\n", width, height, font_size);
  return gp;
}

Drawn draw(const std::string& dir, const std::string& script, const std::string& log) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) return Drawn::no_gnuplot;
  const std::string cmd = fmt::format("cd {} && gnuplot {} 2>{}", shell_quoted(dir), shell_quoted(script),
                                      log.empty() ? std::string("/dev/null") : shell_quoted(log));
  return std::system(cmd.c_str()) == 0 ? Drawn::yes : Drawn::failed;
}

}  // namespace attn::plot
