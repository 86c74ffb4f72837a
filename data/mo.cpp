// data/mo.cpp — .mo layout: magic, revision, N, offset of original table O, offset of
// translation table T, hash size, hash offset; each table holds N (length, offset) pairs.
#include <attnlab/data/mo.h>

#include <cstdint>
#include <stdexcept>

#include <fmt/format.h>

namespace attn {

std::vector<MoEntry> read_mo(const std::string& bytes, const std::string& what) {
  auto fail = [&](const std::string& why) { return std::runtime_error(what + ": not a valid .mo file: " + why); };
  if (bytes.size() < 28) throw fail(fmt::format("{} bytes, shorter than the 28-byte header", bytes.size()));
  auto u32 = [&](uint64_t off, bool big) -> uint32_t {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + off);
    return big ? (uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3])
               : (uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]);
  };
  bool big;
  if (u32(0, false) == 0x950412de) big = false;
  else if (u32(0, true) == 0x950412de) big = true;
  else throw fail(fmt::format("bad magic number 0x{:08x}", u32(0, false)));
  const uint32_t revision = u32(4, big);
  if ((revision >> 16) > 1) throw fail(fmt::format("unsupported major revision {}", revision >> 16));
  const uint64_t n = u32(8, big), orig = u32(12, big), trans = u32(16, big);
  const uint64_t size = bytes.size();
  if (orig + 8 * n > size || trans + 8 * n > size)
    throw fail(fmt::format("string tables ({} entries at {} and {}) run past the end of the {}-byte file", n, orig, trans, size));
  auto str = [&](uint64_t table, uint64_t i, const char* which) {
    const uint64_t len = u32(table + 8 * i, big), off = u32(table + 8 * i + 4, big);
    if (off + len > size)
      throw fail(fmt::format("{} string {} (offset {}, length {}) runs past the end of the file", which, i, off, len));
    if (off + len == size || bytes[off + len] != '\0')  // GNU msgunfmt: "file is truncated"
      throw fail(fmt::format("{} string {} (offset {}, length {}) lacks its terminating NUL", which, i, off, len));
    return bytes.substr(off, len);
  };
  std::vector<MoEntry> out;
  out.reserve(n);
  for (uint64_t i = 0; i < n; i++) {
    MoEntry e;
    e.msgid = str(orig, i, "original");
    e.msgstr = str(trans, i, "translated");
    const size_t ctx = e.msgid.find('\x04');
    if (ctx != std::string::npos) {
      e.context = true;
      e.msgid = e.msgid.substr(ctx + 1);
    }
    const size_t nul = e.msgid.find('\0');
    if (nul != std::string::npos) {
      e.plural = true;
      e.msgid = e.msgid.substr(0, nul);
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace attn
