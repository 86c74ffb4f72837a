// models/arch.h — the three architectures, as a type.
//
//   seq2seq  encoder–decoder translation (models/transformer.h): reads pairs, translates,
//            scored by BLEU and chrF on the test set
//   lm       decoder-only (models/lm.h): --dec-layers causal blocks, next-token prediction
//   mlm      encoder-only (models/lm.h): --enc-layers blocks, masked-token prediction
//
// The names are read in one place (parse_arch: --arch, config.json's "arch", results.json) and
// written in one (arch_name). Everything else asks what an architecture *has* — an encoder, a
// decoder, translations to score — through its traits, or asks the Model (models/model.h):
// never which one it is.
//
//   const ArchTraits& a = traits(Arch::lm);   // a.has_decoder, a.translates() ...
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace attn {

enum class Arch { seq2seq, lm, mlm };

struct ArchTraits {
  Arch arch;
  const char* name;         // "lm": the --arch value
  const char* kind;         // "a language model": how messages name one
  const char* described;    // "a decoder-only language model": how reports title one
  const char* shape;        // "decoder-only"
  const char* task;         // "next-token": what its loss and accuracy are of
  bool has_encoder;         // --enc-layers blocks of self-attention over a batch's src
  bool has_decoder;         // --dec-layers blocks of causal self-attention over its tgt_in
  // Both: an encoder–decoder, with cross-attention — it reads pairs, translates (--beam), and is
  // scored by BLEU/chrF. One stack: it reads sentences (--lm-text) and is scored by top-1 accuracy.
  bool translates() const { return has_encoder && has_decoder; }
  // A decoder alone continues a prompt (attnlab generate).
  bool generates() const { return has_decoder && !has_encoder; }
  // An encoder alone fills in masked tokens: its batches carry a mask (models/lm.h, mask_tokens).
  bool masks() const { return has_encoder && !has_decoder; }
};

const ArchTraits& traits(Arch a);
const char* arch_name(Arch a);
// "seq2seq", "lm" or "mlm"; anything else throws UsageError naming `flag` and the three names.
Arch parse_arch(std::string_view name, std::string_view flag = "--arch");
std::vector<std::string> arch_names();

}  // namespace attn
