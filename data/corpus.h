// data/corpus.h — parallel corpora: the gettext extraction, the readers, the deterministic split.
//
//   auto stats = extract_gettext_corpus("/usr/share/locale", "de", "out/");   // writes train/valid/test
//   CorpusSplits c = load_corpus_dir("data/corpora/gettext-en-de", "en", "de");
//   ParallelCorpus p = read_parallel("train.en", "train.de");   // throws on mismatched line counts
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace attn {

struct ParallelCorpus {
  std::vector<std::string> src, tgt;
  int64_t skipped_empty = 0;  // line pairs with an empty side, skipped and counted
  size_t size() const { return src.size(); }
};

struct CorpusSplits {
  ParallelCorpus train, valid, test;
  std::string dir;
};

// Line-aligned pair of files. Mismatched line counts or invalid UTF-8: an error naming the file
// and line. Empty lines (either side): skipped and counted in skipped_empty.
ParallelCorpus read_parallel(const std::string& src_path, const std::string& tgt_path);
// One "source<TAB>target" pair per line; a line without exactly one tab is an error.
ParallelCorpus read_tsv(const std::string& path);
// DIR/{train,valid,test}.{src,tgt}, or DIR/{train,valid,test}.tsv. A train split with no usable
// pair is refused (require_usable); the other splits may be empty.
CorpusSplits load_corpus_dir(const std::string& dir, const std::string& src_lang, const std::string& tgt_lang);
// Throws "DIR: the NAME split has no usable pair (N lines blank: ...)" when split holds no pair.
void require_usable(const ParallelCorpus& split, const std::string& dir, const std::string& name);

struct ExtractStats {
  int64_t files = 0, bad_files = 0, entries = 0, kept = 0, duplicates = 0, train = 0, valid = 0, test = 0;
  std::vector<std::string> bad;  // "path: reason"
};
// Reads every <locale_dir>/<lang>/LC_MESSAGES/*.mo, pairs msgid (English) with msgstr, filters
// (no context/plural, single line, no control chars, 3–40 source words, non-empty target),
// deduplicates by source, splits by a hash of the source (~94/3/3) and writes
// out_dir/{train,valid,test}.{en,<lang>}.
ExtractStats extract_gettext_corpus(const std::string& locale_dir, const std::string& lang, const std::string& out_dir);

// Bringing your own corpus: one parallel corpus into out_dir/{train,valid,test}.{src,tgt} (the
// names `attnlab train --corpus out_dir --src-lang src --tgt-lang tgt` reads). Exact duplicate
// pairs are kept once; every pair of one source sentence goes to one split, so that no source
// sentence of valid or test is also in train. valid and test get `valid` and `test` pairs, drawn
// by a shuffle with `seed` (a source with many targets that would overfill them stays in train);
// train gets the rest. Refused: an out_dir that holds any of the six files already, and sizes that
// leave train no pair. The six files are replaced together (StagedDir): a failure writes none.
struct SplitStats {
  int64_t read = 0, blank = 0, duplicates = 0, shared_sources = 0, train = 0, valid = 0, test = 0;
};
SplitStats split_corpus(const ParallelCorpus& all, const std::string& out_dir, const std::string& src_lang,
                        const std::string& tgt_lang, int64_t valid, int64_t test, uint64_t seed);

// Which split a source sentence belongs to, from its FNV-1a hash: 0 train, 1 valid, 2 test.
int split_of(const std::string& src);
bool keep_pair(const std::string& src, const std::string& tgt);  // the extraction filter

}  // namespace attn
