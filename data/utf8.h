// data/utf8.h — UTF-8 validation and decoding to code points (for chrF and corpus checks).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attn {

bool valid_utf8(std::string_view s);
std::vector<char32_t> utf8_decode(std::string_view s);  // assumes valid input
std::string utf8_encode(const std::u32string& s);
bool is_unicode_space(char32_t c);  // as Python's str.isspace / str.split()

}  // namespace attn
