// data/tokenizer.cpp — the SentencePiece and symbol tokenizers.
#include <attnlab/data/tokenizer.h>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>

#include <attnlab/core/fileio.h>
#include <attnlab/core/threads.h>
#include <attnlab/core/usage_error.h>

namespace attn {

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& model_path) {
    auto st = sp_.Load(model_path);
    if (!st.ok()) throw std::runtime_error(model_path + ": cannot load SentencePiece model: " + st.ToString());
  }
  std::vector<int32_t> encode(const std::string& text) const override {
    std::vector<int> ids;
    sp_.Encode(text, &ids);
    return std::vector<int32_t>(ids.begin(), ids.end());
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::vector<int> keep;
    for (int32_t i : ids)
      if (i > kUnk || i == kUnk) keep.push_back(i);
    std::string out;
    sp_.Decode(keep, &out);
    return out;
  }
  int vocab_size() const override { return sp_.GetPieceSize(); }
  std::string kind() const override { return "sentencepiece"; }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

class SymbolTokenizer : public Tokenizer {
 public:
  explicit SymbolTokenizer(std::vector<std::string> symbols) : symbols_(std::move(symbols)) {
    for (size_t i = 0; i < symbols_.size(); i++) index_[symbols_[i]] = int32_t(i) + 4;
  }
  std::vector<int32_t> encode(const std::string& text) const override {
    std::istringstream in(text);
    std::string w;
    std::vector<int32_t> ids;
    while (in >> w) {
      auto it = index_.find(w);
      ids.push_back(it == index_.end() ? kUnk : it->second);
    }
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    for (int32_t i : ids) {
      if (i < kUnk) continue;
      if (!out.empty()) out += ' ';
      out += i == kUnk || i - 4 >= int32_t(symbols_.size()) ? "<unk>" : symbols_[size_t(i - 4)];
    }
    return out;
  }
  int vocab_size() const override { return int(symbols_.size()) + 4; }
  std::string kind() const override { return "symbols"; }
  const std::vector<std::string>& symbols() const { return symbols_; }

 private:
  std::vector<std::string> symbols_;
  std::map<std::string, int32_t> index_;
};

// SentencePiece reads the training lines from memory: no temporary input file (whose name, with
// the process id in it, used to end up in the model), and no "Running command" log line (the
// string-argument Train logs one before it has read --minloglevel).
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(const std::vector<std::string>& lines) : lines_(lines) {}
  bool done() const override { return i_ >= lines_.size(); }
  void Next() override { i_++; }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& lines_;
  size_t i_ = 0;
};

std::unique_ptr<Tokenizer> Tokenizer::train_sentencepiece(const std::vector<std::string>& lines, int vocab_size,
                                                          const std::string& prefix, uint32_t seed) {
  if (vocab_size < 8) throw UsageError(fmt::format("--vocab: must be at least 8, got {}", vocab_size));
  sentencepiece::SetRandomGeneratorSeed(seed);
  // SentencePiece writes its files under a name no run loads (the name is recorded in the
  // model); they are then written to their own names as every other file is (a temp file,
  // fsync, rename), so a full disk or a kill never leaves a torn tokenizer.model.
  const std::string partial = prefix + ".partial";
  auto remove_partial = [&] {
    std::error_code ec;
    for (const char* ext : {".model", ".vocab"}) std::filesystem::remove(partial + ext, ec);
  };
  const std::unordered_map<std::string, std::string> args = {
      {"model_prefix", partial},         {"vocab_size", std::to_string(vocab_size)},
      {"model_type", "unigram"},         {"character_coverage", "1.0"},
      {"pad_id", "0"},                   {"bos_id", "1"},
      {"eos_id", "2"},                   {"unk_id", "3"},
      {"hard_vocab_limit", "false"},     {"minloglevel", "2"},
      {"num_threads", std::to_string(num_threads())},
      {"input_sentence_size", "0"},      {"shuffle_input_sentence", "false"}};
  LineIterator it(lines);
  auto st = sentencepiece::SentencePieceTrainer::Train(args, &it);
  if (!st.ok()) {
    remove_partial();
    throw std::runtime_error(prefix + ": SentencePiece training failed: " + st.ToString());
  }
  try {
    const std::string vocab = read_file(partial + ".vocab"), model = read_file(partial + ".model");
    sentencepiece::SentencePieceProcessor check;  // SentencePiece does not see a write that fails at close
    if (!check.LoadFromSerializedProto(model).ok())
      throw std::runtime_error(prefix + ".model: SentencePiece's output is damaged (is the disk full?)");
    write_file_atomic(prefix + ".vocab", vocab);
    write_file_atomic(prefix + ".model", model);
  } catch (...) {
    remove_partial();
    throw;
  }
  remove_partial();
  return std::make_unique<SentencePieceTokenizer>(prefix + ".model");
}

std::unique_ptr<Tokenizer> Tokenizer::build_symbols(const std::vector<std::string>& lines, const std::string& prefix) {
  std::set<std::string> syms;
  for (auto& l : lines) {
    std::istringstream in(l);
    std::string w;
    while (in >> w) syms.insert(w);
  }
  std::string out;
  for (auto& s : syms) out += s + "\n";
  write_file_atomic(prefix + ".symbols", out);
  return std::make_unique<SymbolTokenizer>(std::vector<std::string>(syms.begin(), syms.end()));
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& prefix) {
  if (std::filesystem::exists(prefix + ".model")) return std::make_unique<SentencePieceTokenizer>(prefix + ".model");
  if (std::filesystem::exists(prefix + ".symbols")) {
    std::istringstream in(read_file(prefix + ".symbols"));
    std::vector<std::string> syms;
    std::string s;
    while (std::getline(in, s))
      if (!s.empty()) syms.push_back(s);
    return std::make_unique<SymbolTokenizer>(syms);
  }
  throw std::runtime_error(prefix + ".model: no tokenizer found (expected " + prefix + ".model or " + prefix + ".symbols)");
}

}  // namespace attn
