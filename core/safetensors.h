// core/safetensors.h — read and write the safetensors format (F32 tensors only).
//
// Layout: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the raw little-endian data. The reader validates what the reference parser does:
// header size limit, well-formed JSON, known dtype, offsets contiguous (no gaps or overlaps),
// sizes equal to shape × dtype, and the buffer length equal to the file's.
//
//   save_safetensors("m.safetensors", {{"w", w}}, {{"step", "10"}});
//   auto file = load_safetensors("m.safetensors");   // file.tensors["w"], file.metadata["step"]
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <attnlab/core/tensor.h>

namespace attn {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;
  const Tensor* find(const std::string& name) const;
};

std::string encode_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata = {});
// `what` names the source in errors (a path).
SafetensorsFile decode_safetensors(const std::string& bytes, const std::string& what);

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});  // atomic
SafetensorsFile load_safetensors(const std::string& path);

inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

}  // namespace attn
