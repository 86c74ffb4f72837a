// data/mo.h — a validating reader of GNU gettext .mo catalogs (both byte orders).
//
//   auto entries = read_mo(read_file("/usr/share/locale/de/LC_MESSAGES/grep.mo"), "grep.mo");
//   for (auto& e : entries) if (!e.context && !e.plural) use(e.msgid, e.msgstr);
#pragma once
#include <string>
#include <vector>

namespace attn {

struct MoEntry {
  std::string msgid, msgstr;
  bool context = false;  // msgid had "ctxt\x04" prefix (msgctxt)
  bool plural = false;   // msgid had a plural form ("sing\0plural")
};

// Throws std::runtime_error "<what>: not a valid .mo file: <reason>" on any malformed offset.
std::vector<MoEntry> read_mo(const std::string& bytes, const std::string& what);

}  // namespace attn
