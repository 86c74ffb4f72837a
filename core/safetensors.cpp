// core/safetensors.cpp — the format's encoder and its validating decoder.
#include <attnlab/core/safetensors.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include <attnlab/core/fileio.h>

namespace attn {

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

std::string encode_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (auto& [name, t] : tensors) {
    const uint64_t bytes = uint64_t(t.numel()) * 4;
    header[name] = {{"dtype", "F32"}, {"shape", t.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h += ' ';  // align the data to 8 bytes, as the reference writer does
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; i++) out[i] = char((n >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + offset);
  for (auto& [name, t] : tensors) out.append(reinterpret_cast<const char*>(t.data()), size_t(t.numel()) * 4);
  return out;
}

SafetensorsFile decode_safetensors(const std::string& bytes, const std::string& what) {
  auto fail = [&](const std::string& why) { return std::runtime_error(what + ": not a valid safetensors file: " + why); };
  if (bytes.size() < 8) throw fail(fmt::format("{} bytes, shorter than the 8-byte header length", bytes.size()));
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  if (n > kSafetensorsMaxHeader) throw fail(fmt::format("header length {} exceeds the {} byte limit", n, kSafetensorsMaxHeader));
  if (8 + n > bytes.size()) throw fail(fmt::format("header length {} runs past the end of the {}-byte file", n, bytes.size()));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + int64_t(n));
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("header is not well-formed JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw fail("header is not a JSON object");
  const uint64_t buffer_len = bytes.size() - 8 - n;
  SafetensorsFile file;
  struct Entry {
    uint64_t begin, end;
    std::string name;
    Shape shape;
  };
  std::vector<Entry> entries;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw fail("__metadata__ is not an object");
      for (auto& [k, v] : info.items()) {
        if (!v.is_string()) throw fail("__metadata__ value for '" + k + "' is not a string");
        file.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      throw fail("tensor '" + name + "' lacks dtype, shape or data_offsets");
    if (!info["dtype"].is_string()) throw fail("tensor '" + name + "' has a non-string dtype");
    const std::string dtype = info["dtype"];
    static const char* known[] = {"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64", "F8_E4M3", "F8_E5M2"};
    if (std::find(std::begin(known), std::end(known), dtype) == std::end(known))
      throw fail("tensor '" + name + "' has unknown dtype '" + dtype + "'");
    if (dtype != "F32") throw fail("tensor '" + name + "' has dtype " + dtype + "; attnlab reads F32 only");
    const auto& shape = info["shape"];
    const auto& off = info["data_offsets"];
    if (!shape.is_array() || shape.size() > 4) throw fail("tensor '" + name + "' shape is not an array of rank <= 4");
    Entry e{0, 0, name, {}};
    uint64_t numel = 1;
    for (auto& d : shape) {
      if (!d.is_number_unsigned()) throw fail("tensor '" + name + "' has a non-integer or negative dimension");
      const uint64_t dv = d.get<uint64_t>();
      if (dv != 0 && numel > (uint64_t(1) << 40) / dv) throw fail("tensor '" + name + "' shape overflows");
      numel *= dv;
      e.shape.push_back(int64_t(dv));
    }
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw fail("tensor '" + name + "' data_offsets is not [begin, end]");
    e.begin = off[0];
    e.end = off[1];
    if (e.end < e.begin) throw fail("tensor '" + name + "' data_offsets end before they begin");
    if (e.end - e.begin != numel * 4)
      throw fail(fmt::format("tensor '{}' has {} bytes but shape {} x F32 needs {}", name, e.end - e.begin,
                             shape_str(e.shape), numel * 4));
    entries.push_back(e);
  }
  std::sort(entries.begin(), entries.end(), [](auto& a, auto& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  uint64_t expect = 0;
  for (auto& e : entries) {
    if (e.begin != expect)
      throw fail(fmt::format("tensor '{}' starts at byte {} but the previous tensor ends at {} (gap or overlap)", e.name,
                             e.begin, expect));
    expect = e.end;
  }
  if (expect != buffer_len)
    throw fail(fmt::format("tensors cover {} bytes but the data buffer holds {} (truncated or trailing bytes)", expect, buffer_len));
  const char* data = bytes.data() + 8 + n;
  for (auto& e : entries) {
    std::vector<float> v(size_t(e.end - e.begin) / 4);
    if (!v.empty()) std::memcpy(v.data(), data + e.begin, e.end - e.begin);
    file.tensors.push_back({e.name, Tensor::from(e.shape, std::move(v))});
  }
  return file;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, encode_safetensors(tensors, metadata));
}

SafetensorsFile load_safetensors(const std::string& path) { return decode_safetensors(read_file(path), path); }

}  // namespace attn
