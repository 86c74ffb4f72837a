// data/tokenizer.h — text <-> token ids. SentencePiece for real text; a symbol tokenizer for the
// synthetic tasks. Both fix pad=0, bos=1, eos=2, unk=3.
//
//   auto tok = Tokenizer::train_sentencepiece(lines, 8000, "run/tokenizer");  // writes run/tokenizer.model
//   auto tok = Tokenizer::load("run/tokenizer");    // whichever kind was saved there
//   std::vector<int32_t> ids = tok->encode("Datei nicht gefunden");
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace attn {

class Tokenizer {
 public:
  static constexpr int kPad = 0, kBos = 1, kEos = 2, kUnk = 3;
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;  // no bos/eos
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;   // skips special ids
  virtual int vocab_size() const = 0;
  virtual std::string kind() const = 0;

  // Trains a joint unigram SentencePiece model on `lines`; saves <prefix>.model and <prefix>.vocab.
  static std::unique_ptr<Tokenizer> train_sentencepiece(const std::vector<std::string>& lines, int vocab_size,
                                                         const std::string& prefix, uint32_t seed = 1);
  // Whitespace-separated symbols, vocabulary = the sorted distinct symbols; saves <prefix>.symbols.
  static std::unique_ptr<Tokenizer> build_symbols(const std::vector<std::string>& lines, const std::string& prefix);
  static std::unique_ptr<Tokenizer> load(const std::string& prefix);
};

}  // namespace attn
