// tests/test_data.cpp — .mo catalogs (good and malformed), corpus readers and extraction,
// tokenizers, batching, synthetic tasks.
#include <catch2/catch.hpp>

#include <filesystem>
#include <algorithm>
#include <set>
#include <sstream>

#include <attnlab/core/fileio.h>
#include <attnlab/core/rng.h>
#include <attnlab/data/batching.h>
#include <attnlab/data/corpus.h>
#include <attnlab/data/mo.h>
#include <attnlab/data/synthetic.h>
#include <attnlab/data/tokenizer.h>
#include <attnlab/data/utf8.h>

using namespace attn;
namespace fs = std::filesystem;

static fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("attnlab-data-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// Builds a .mo file as msgfmt lays it out: header, original table, translation table, strings.
static std::string make_mo(const std::vector<std::pair<std::string, std::string>>& entries, bool big_endian) {
  std::string out;
  auto put = [&](uint32_t v) {
    for (int i = 0; i < 4; i++) out += char(big_endian ? (v >> (24 - 8 * i)) & 0xff : (v >> (8 * i)) & 0xff);
  };
  const uint32_t n = uint32_t(entries.size());
  const uint32_t orig = 28, trans = 28 + 8 * n, strings = 28 + 16 * n;
  put(0x950412de);
  put(0);
  put(n);
  put(orig);
  put(trans);
  put(0);
  put(0);
  std::string blob;
  std::vector<std::pair<uint32_t, uint32_t>> o, t;
  for (auto& [id, str] : entries) {
    o.push_back({uint32_t(id.size()), strings + uint32_t(blob.size())});
    blob += id + '\0';
  }
  for (auto& [id, str] : entries) {
    t.push_back({uint32_t(str.size()), strings + uint32_t(blob.size())});
    blob += str + '\0';
  }
  for (auto& [len, off] : o) put(len), put(off);
  for (auto& [len, off] : t) put(len), put(off);
  return out + blob;
}

static const std::vector<std::pair<std::string, std::string>> kEntries = {
    {"", "Content-Type: text/plain; charset=UTF-8\n"},
    {"File not found", "Datei nicht gefunden"},
    {"menu\x04Open the file", "Datei öffnen"},
    {std::string("one file was removed\0%d files were removed", 42), std::string("eine Datei\0%d Dateien", 21)},
    {"Could not open the file", "Konnte die Datei nicht öffnen"},
};

TEST_CASE(".mo reader: both byte orders, context and plural entries flagged") {
  for (bool big : {false, true}) {
    auto e = read_mo(make_mo(kEntries, big), "x.mo");
    REQUIRE(e.size() == 5);
    REQUIRE(e[1].msgid == "File not found");
    REQUIRE(e[1].msgstr == "Datei nicht gefunden");
    REQUIRE(e[2].context);
    REQUIRE(e[2].msgid == "Open the file");
    REQUIRE(e[3].plural);
    REQUIRE(e[3].msgid == "one file was removed");
  }
}

TEST_CASE(".mo reader rejects malformed files with the file name and the reason") {
  std::string good = make_mo(kEntries, false);
  REQUIRE_THROWS_WITH(read_mo(good.substr(0, 20), "short.mo"), Catch::StartsWith("short.mo: not a valid .mo file") && Catch::Contains("28-byte header"));
  std::string bad_magic = good;
  bad_magic[0] = 'X';
  REQUIRE_THROWS_WITH(read_mo(bad_magic, "m.mo"), Catch::Contains("bad magic"));
  std::string big_n = good;
  big_n[8] = char(0xff);  // N = 255 entries: tables run past the end
  REQUIRE_THROWS_WITH(read_mo(big_n, "n.mo"), Catch::Contains("run past the end"));
  std::string bad_off = good;
  bad_off[28 + 8 + 4] = char(0xff);  // offset of the 2nd original string
  bad_off[28 + 8 + 5] = char(0xff);
  REQUIRE_THROWS_WITH(read_mo(bad_off, "o.mo"), Catch::Contains("original string 1"));
  for (size_t len = 0; len < good.size() - 60; len += 7) REQUIRE_THROWS(read_mo(good.substr(0, len), "t.mo"));
  // the last string without its terminating NUL: GNU msgunfmt calls the file truncated
  REQUIRE_THROWS_WITH(read_mo(good.substr(0, good.size() - 1), "nul.mo"),
                      Catch::Equals("nul.mo: not a valid .mo file: translated string 4 (offset " +
                                    std::to_string(good.size() - 1 - kEntries[4].second.size()) + ", length " +
                                    std::to_string(kEntries[4].second.size()) + ") lacks its terminating NUL"));
  std::string no_nul = good;
  no_nul.back() = 'x';  // the same length, the NUL overwritten
  REQUIRE_THROWS_WITH(read_mo(no_nul, "x.mo"), Catch::EndsWith("lacks its terminating NUL"));
}

TEST_CASE("gettext extraction filters, deduplicates and splits deterministically") {
  fs::path d = temp_dir("extract");
  fs::create_directories(d / "de/LC_MESSAGES");
  write_file_atomic((d / "de/LC_MESSAGES/a.mo").string(), make_mo(kEntries, false));
  auto more = kEntries;
  more.push_back({"Too short", "Zu kurz"});
  more.push_back({"Has a\nnewline in it", "Hat einen\nZeilenumbruch"});
  more.push_back({"Target is empty here", ""});
  write_file_atomic((d / "de/LC_MESSAGES/b.mo").string(), make_mo(more, true));
  write_file_atomic((d / "de/LC_MESSAGES/broken.mo").string(), "not a catalog at all, but long enough to read");
  ExtractStats s = extract_gettext_corpus(d.string(), "de", (d / "out").string());
  REQUIRE(s.files == 3);
  REQUIRE(s.bad_files == 1);
  REQUIRE(s.kept == 2);        // "File not found", "Could not open the file"
  REQUIRE(s.duplicates == 2);  // the same two again in b.mo
  REQUIRE(s.train + s.valid + s.test == 2);
  CorpusSplits c = load_corpus_dir((d / "out").string(), "en", "de");
  std::set<std::string> all(c.train.src.begin(), c.train.src.end());
  all.insert(c.valid.src.begin(), c.valid.src.end());
  all.insert(c.test.src.begin(), c.test.src.end());
  REQUIRE(all == std::set<std::string>{"File not found", "Could not open the file"});
  REQUIRE(split_of("File not found") == split_of("File not found"));
  REQUIRE_FALSE(keep_pair("Two words", "Zwei Wörter"));
  REQUIRE(keep_pair("Three words here", "Drei Wörter hier"));
  REQUIRE_FALSE(keep_pair("Has a\ttab in it", "x"));
  REQUIRE_THROWS_WITH(extract_gettext_corpus(d.string(), "xx", (d / "o2").string()), Catch::Contains("xx/LC_MESSAGES: no such directory"));
  fs::remove_all(d);
}

TEST_CASE("the split is about 94/3/3") {
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 20000; i++) counts[split_of("sentence number " + std::to_string(i))]++;
  REQUIRE(counts[0] > 18400);
  REQUIRE(counts[0] < 19200);
  REQUIRE(counts[1] > 450);
  REQUIRE(counts[2] > 450);
}

TEST_CASE("parallel corpora: mismatched lines, invalid UTF-8, bad TSV are errors; empty lines are counted skips") {
  fs::path d = temp_dir("readers");
  write_file_atomic((d / "a.en").string(), "one\ntwo\n\nfour\n");
  write_file_atomic((d / "a.de").string(), "eins\nzwei\ndrei\nvier\n");
  ParallelCorpus c = read_parallel((d / "a.en").string(), (d / "a.de").string());
  REQUIRE(c.size() == 3);
  REQUIRE(c.skipped_empty == 1);
  write_file_atomic((d / "b.de").string(), "eins\nzwei\n");
  REQUIRE_THROWS_WITH(read_parallel((d / "a.en").string(), (d / "b.de").string()),
                      Catch::Contains("a.en has 4 lines but") && Catch::Contains("b.de has 2"));
  write_file_atomic((d / "c.de").string(), "eins\nzw\xff" "ei\ndrei\nvier\n");
  REQUIRE_THROWS_WITH(read_parallel((d / "a.en").string(), (d / "c.de").string()), Catch::Contains("c.de:2: invalid UTF-8"));
  write_file_atomic((d / "t.tsv").string(), "hello\thallo\nno tab here\n");
  REQUIRE_THROWS_WITH(read_tsv((d / "t.tsv").string()), Catch::Contains("t.tsv:2: expected exactly one tab"));
  write_file_atomic((d / "u.tsv").string(), "hello\thallo\n\nworld\tWelt\n");
  REQUIRE(read_tsv((d / "u.tsv").string()).size() == 2);
  REQUIRE_THROWS_WITH(read_parallel((d / "missing.en").string(), (d / "a.de").string()), Catch::Contains("missing.en: cannot open"));
  REQUIRE_THROWS_WITH(load_corpus_dir((d / "nope").string(), "en", "de"), Catch::Contains("corpus directory not found"));
  fs::remove_all(d);
}

TEST_CASE("utf8 validation rejects overlongs, surrogates and truncation") {
  REQUIRE(valid_utf8("Grüße €"));
  REQUIRE_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  REQUIRE_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  REQUIRE_FALSE(valid_utf8("\xe2\x82"));          // truncated
  REQUIRE(utf8_decode("aü€").size() == 3);
}

TEST_CASE("SentencePiece tokenizer: fixed special ids, round trip, saved and reloaded") {
  fs::path d = temp_dir("sp");
  std::vector<std::string> lines;
  for (int i = 0; i < 300; i++) lines.push_back("Datei " + std::to_string(i) + " nicht gefunden, file not found");
  auto tok = Tokenizer::train_sentencepiece(lines, 60, (d / "tok").string());
  auto ids = tok->encode("Datei 17 nicht gefunden");
  for (int32_t id : ids) REQUIRE(id >= Tokenizer::kUnk);
  REQUIRE(tok->decode(ids) == "Datei 17 nicht gefunden");
  auto again = Tokenizer::load((d / "tok").string());
  REQUIRE(again->encode("file not found") == tok->encode("file not found"));
  REQUIRE(again->vocab_size() == tok->vocab_size());
  REQUIRE_THROWS_WITH(Tokenizer::load((d / "none").string()), Catch::Contains("no tokenizer found"));
  // Nothing but the model and its vocabulary is left behind, and training is deterministic:
  // the same lines give the same model, byte for byte.
  std::set<std::string> files;
  for (auto& f : fs::directory_iterator(d)) files.insert(f.path().filename().string());
  REQUIRE(files == std::set<std::string>{"tok.model", "tok.vocab"});
  const std::string first = read_file((d / "tok.model").string());
  fs::remove(d / "tok.model");
  Tokenizer::train_sentencepiece(lines, 60, (d / "tok").string());
  REQUIRE(read_file((d / "tok.model").string()) == first);
  fs::remove_all(d);
}

TEST_CASE("a full disk while the tokenizer is written leaves no tokenizer, whole or torn, and no temp files") {
  fs::path d = temp_dir("sp-full");
  std::vector<std::string> lines;
  for (int i = 0; i < 300; i++) lines.push_back("Datei " + std::to_string(i) + " nicht gefunden, file not found");
  attn::set_write_fault_after(4000);  // the vocabulary (under 4000 bytes) is written, the model (~240 kB) is not
  REQUIRE_THROWS_WITH(Tokenizer::train_sentencepiece(lines, 60, (d / "tok").string()),
                      (d / "tok.model").string() + ": write failed: No space left on device (nothing was written)");
  attn::set_write_fault_after(-1);
  std::set<std::string> files;
  for (auto& f : fs::directory_iterator(d)) files.insert(f.path().filename().string());
  REQUIRE(files == std::set<std::string>{"tok.vocab"});  // no tok.model, no .partial, no temp file
  REQUIRE_THROWS_WITH(Tokenizer::load((d / "tok").string()), Catch::Contains("no tokenizer found"));
  Tokenizer::train_sentencepiece(lines, 60, (d / "tok").string());  // with room again, it trains and loads
  REQUIRE(Tokenizer::load((d / "tok").string())->vocab_size() > 8);
  fs::remove_all(d);
}

TEST_CASE("batches respect the token budget, cover every example once per epoch, and resume exactly") {
  std::vector<Example> data;
  Rng rng(1);
  for (int i = 0; i < 200; i++) {
    Example e;
    int n = 1 + int(rng.below(20));
    for (int k = 0; k < n; k++) e.src.push_back(4 + k);
    e.src.push_back(2);
    for (int k = 0; k < n / 2 + 1; k++) e.tgt.push_back(5 + k);
    data.push_back(e);
  }
  Batcher b(data, 64, 7);
  size_t seen = 0;
  for (size_t i = 0; i < b.batches_per_epoch(); i++) {
    Batch x = b.next();
    REQUIRE(int64_t(x.B) * std::max(x.S, x.T) <= 64);
    seen += size_t(x.B);
    // layout: tgt_in = bos y, tgt_out = y eos
    REQUIRE(x.tgt_in[0] == 1);
    REQUIRE(x.tgt_in[1] == x.tgt_out[0]);
  }
  REQUIRE(seen == data.size());
  b.next();
  b.next();
  auto pos = b.position();
  Batch expect = b.next();
  Batcher c(data, 64, 7);
  c.restore(pos);
  Batch got = c.next();
  REQUIRE(got.src == expect.src);
  REQUIRE(got.tgt_out == expect.tgt_out);
  // a position from a damaged checkpoint or another corpus is refused, not indexed
  REQUIRE_THROWS_WITH(c.restore({0, -1}), Catch::Contains("cannot resume at batch -1"));
  REQUIRE_THROWS_WITH(c.restore({0, int64_t(c.batches_per_epoch()) + 1}), Catch::Contains("a different corpus?"));
  REQUIRE_THROWS_WITH(c.restore({-2, 0}), Catch::Contains("cannot resume at epoch -2"));
  c.restore({1, int64_t(c.batches_per_epoch())});  // the end of an epoch is a valid place to stop
}

TEST_CASE("synthetic tasks are seeded and correct") {
  ParallelCorpus r = synthetic_task("reverse", 5, 3), r2 = synthetic_task("reverse", 5, 3);
  REQUIRE(r.src == r2.src);
  auto toks = [](const std::string& s) {
    std::vector<std::string> v;
    std::istringstream in(s);
    std::string w;
    while (in >> w) v.push_back(w);
    return v;
  };
  for (size_t i = 0; i < r.size(); i++) {
    auto a = toks(r.src[i]), b = toks(r.tgt[i]);
    std::reverse(a.begin(), a.end());
    REQUIRE(a == b);
  }
  ParallelCorpus s = synthetic_task("sort", 5, 3);
  for (auto& t : s.tgt) {
    auto v = toks(t);
    std::vector<int> n;
    for (auto& w : v) n.push_back(std::stoi(w.substr(1)));
    REQUIRE(std::is_sorted(n.begin(), n.end()));
  }
  REQUIRE_THROWS_WITH(synthetic_task("shuffle", 1, 1), Catch::Contains("unknown synthetic task 'shuffle'"));
}
