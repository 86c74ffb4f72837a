// fuzz/fuzz_corpus.cpp — libFuzzer target: TSV and line-aligned corpus readers.
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include <attnlab/core/fileio.h>
#include <attnlab/data/corpus.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = "/tmp/attnlab-fuzz-corpus-" + std::to_string(getpid());
  static bool made = (std::system(("mkdir -p " + dir).c_str()), true);
  (void)made;
  const std::string text(reinterpret_cast<const char*>(data), size);
  attn::write_file_atomic(dir + "/x.tsv", text);
  const size_t half = text.find('\x01');
  attn::write_file_atomic(dir + "/a.en", text.substr(0, half));
  attn::write_file_atomic(dir + "/a.de", half == std::string::npos ? "" : text.substr(half + 1));
  try {
    attn::read_tsv(dir + "/x.tsv");
  } catch (const std::runtime_error&) {
  }
  try {
    attn::read_parallel(dir + "/a.en", dir + "/a.de");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
