// core/words.h — numbers in messages as people write them.
//
//   counted(1, "step")            "1 step"          counted(3, "step")   "3 steps"
//   counted(2, "entry", "entries")                  "2 entries"
//   human(0.003f)                 "0.003"           (not 0.003000000026077032: a float's
//                                                    shortest spelling that reads back the same)
//   human(json(0.0030000000260770321))  "0.003"     config.json holds floats widened to double
//   human(json("qq"))             "qq"              strings without their JSON quotes
//
// Only for what is printed: files keep their exact values.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace attn {

std::string counted(int64_t n, std::string_view one, std::string_view many = {});
std::string human(double x);
std::string human(const nlohmann::json& v);

}  // namespace attn
