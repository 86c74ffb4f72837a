// core/fileio.h — whole-file reads and crash-safe (atomic) writes.
//
// write_file_atomic() writes a temp file in the destination's directory, fsyncs it, renames
// it over the destination and fsyncs the directory: a crash at any point leaves either the old
// complete file or the new complete file, never a torn one.
//   write_file_atomic("run/model.safetensors", bytes);
//   std::string s = read_file("corpus/train.en");   // throws "corpus/train.en: No such file..."
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace attn {

std::string read_file(const std::string& path);
void write_file_atomic(const std::string& path, std::string_view bytes);
// Fault injection for tests: the next writes fail with ENOSPC once `bytes` have been written
// in total (negative: off). Used to check that a full disk loses no earlier data.
void set_write_fault_after(int64_t bytes);

}  // namespace attn
