// fuzz/fuzz_mo.cpp — libFuzzer target: the .mo catalog reader must reject or read, never crash.
#include <cstdint>
#include <stdexcept>
#include <string>

#include <attnlab/data/mo.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto entries = attn::read_mo(std::string(reinterpret_cast<const char*>(data), size), "fuzz.mo");
    for (auto& e : entries) (void)e.msgid.size();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
