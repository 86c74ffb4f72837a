// core/words.cpp — numbers in messages as people write them.
#include <attnlab/core/words.h>

#include <cmath>

#include <fmt/format.h>

namespace attn {

std::string counted(int64_t n, std::string_view one, std::string_view many) {
  if (n == 1) return fmt::format("1 {}", one);
  return many.empty() ? fmt::format("{} {}s", n, one) : fmt::format("{} {}", n, many);
}

// A value that is a float widened to double is printed as the float's shortest spelling
// (fmt prints the shortest digits that read back to the same value).
std::string human(double x) {
  if (std::isfinite(x) && x == std::trunc(x) && std::fabs(x) < 1e15) return fmt::format("{}", int64_t(x));
  const float f = float(x);
  if (double(f) == x) return fmt::format("{}", f);
  return fmt::format("{}", x);
}

std::string human(const nlohmann::json& v) {
  if (v.is_number_float()) return human(v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "(unset)";
  return v.dump();
}

}  // namespace attn
