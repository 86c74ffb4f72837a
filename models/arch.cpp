// models/arch.cpp — the architectures' table, and the one place their names are read.
#include <attnlab/models/arch.h>

#include <fmt/format.h>

#include <attnlab/core/usage_error.h>

namespace attn {

static const ArchTraits kArchs[] = {
    // arch         name       kind                    described                             shape              task            encoder decoder
    {Arch::seq2seq, "seq2seq", "a translation model",  "an encoder-decoder translation model", "encoder-decoder", "translation",  true,   true},
    {Arch::lm,      "lm",      "a language model",     "a decoder-only language model",     "decoder-only",    "next-token",   false,  true},
    {Arch::mlm,     "mlm",     "a masked-token model", "an encoder-only masked-token model", "encoder-only",    "masked-token", true,   false},
};

const ArchTraits& traits(Arch a) {
  for (const ArchTraits& t : kArchs)
    if (t.arch == a) return t;
  throw std::logic_error(fmt::format("traits: no architecture {}", int(a)));
}

const char* arch_name(Arch a) { return traits(a).name; }

std::vector<std::string> arch_names() {
  std::vector<std::string> names;
  for (const ArchTraits& t : kArchs) names.push_back(t.name);
  return names;
}

Arch parse_arch(std::string_view name, std::string_view flag) {
  for (const ArchTraits& t : kArchs)
    if (name == t.name) return t.arch;
  throw UsageError(fmt::format("{}: unknown architecture '{}' (expected one of: {})", flag, name, fmt::join(arch_names(), ", ")));
}

}  // namespace attn
