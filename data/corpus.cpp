// data/corpus.cpp — corpus readers and the gettext extraction.
#include <attnlab/data/corpus.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include <fmt/format.h>

#include <attnlab/core/fileio.h>
#include <attnlab/core/words.h>
#include <attnlab/data/mo.h>
#include <attnlab/data/utf8.h>

namespace attn {
namespace fs = std::filesystem;

static std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string cur;
  // A byte-order mark starting the file (Windows editors write one) is not part of line 1.
  std::istringstream in(text.rfind("\xEF\xBB\xBF", 0) == 0 ? text.substr(3) : text);
  while (std::getline(in, cur)) {
    if (!cur.empty() && cur.back() == '\r') cur.pop_back();
    lines.push_back(cur);
  }
  return lines;
}

static void check_utf8(const std::vector<std::string>& lines, const std::string& path) {
  for (size_t i = 0; i < lines.size(); i++)
    if (!valid_utf8(lines[i])) throw std::runtime_error(fmt::format("{}:{}: invalid UTF-8", path, i + 1));
}

// Blank: nothing a tokenizer could use — only spaces (any Unicode space, U+00A0 and U+3000
// included), tabs, zero-width characters (U+200B-U+200D, U+2060) and byte-order marks (U+FEFF).
// SentencePiece's normaliser removes or folds all of these, and a corpus of nothing else made it
// abort the process. (Called after the UTF-8 check: invalid input never reaches here.)
static bool blank(const std::string& s) {
  if (s.find_first_not_of(" \t") == std::string::npos) return true;
  for (char32_t c : utf8_decode(s))
    if (!(is_unicode_space(c) || (c >= 0x200B && c <= 0x200D) || c == 0x2060 || c == 0xFEFF)) return false;
  return true;
}

ParallelCorpus read_parallel(const std::string& src_path, const std::string& tgt_path) {
  auto s = split_lines(read_file(src_path));
  auto t = split_lines(read_file(tgt_path));
  if (s.size() != t.size())
    throw std::runtime_error(fmt::format("{} has {} but {} has {}: the files must be line-aligned", src_path,
                                         counted(int64_t(s.size()), "line"), tgt_path, t.size()));
  check_utf8(s, src_path);
  check_utf8(t, tgt_path);
  ParallelCorpus c;
  for (size_t i = 0; i < s.size(); i++) {
    if (blank(s[i]) || blank(t[i])) {
      c.skipped_empty++;
      continue;
    }
    c.src.push_back(s[i]);
    c.tgt.push_back(t[i]);
  }
  return c;
}

ParallelCorpus read_tsv(const std::string& path) {
  auto lines = split_lines(read_file(path));
  check_utf8(lines, path);
  ParallelCorpus c;
  for (size_t i = 0; i < lines.size(); i++) {
    const std::string& l = lines[i];
    if (blank(l)) {
      c.skipped_empty++;
      continue;
    }
    const size_t tab = l.find('\t');
    if (tab == std::string::npos || l.find('\t', tab + 1) != std::string::npos)
      throw std::runtime_error(fmt::format("{}:{}: expected exactly one tab between source and target", path, i + 1));
    std::string a = l.substr(0, tab), b = l.substr(tab + 1);
    if (blank(a) || blank(b)) {
      c.skipped_empty++;
      continue;
    }
    c.src.push_back(a);
    c.tgt.push_back(b);
  }
  return c;
}

void require_usable(const ParallelCorpus& split, const std::string& dir, const std::string& name) {
  if (split.size() > 0) return;
  throw std::runtime_error(fmt::format("{}: the {} split has no usable pair ({} blank: empty, or only spaces, "
                                       "zero-width characters or byte-order marks)", dir, name,
                                       counted(split.skipped_empty, "line")));
}

CorpusSplits load_corpus_dir(const std::string& dir, const std::string& src_lang, const std::string& tgt_lang) {
  CorpusSplits c;
  c.dir = dir;
  if (!fs::is_directory(dir)) throw std::runtime_error(dir + ": corpus directory not found");
  auto load = [&](const std::string& split) {
    const std::string a = fmt::format("{}/{}.{}", dir, split, src_lang), b = fmt::format("{}/{}.{}", dir, split, tgt_lang);
    const std::string tsv = fmt::format("{}/{}.tsv", dir, split);
    if (fs::exists(a) && fs::exists(b)) return read_parallel(a, b);
    if (fs::exists(tsv)) return read_tsv(tsv);
    throw std::runtime_error(fmt::format("{}: expected {}.{} and {}.{} (or {}.tsv)", dir, split, src_lang, split, tgt_lang, split));
  };
  c.train = load("train");
  c.valid = load("valid");
  c.test = load("test");
  // Refused here, before a tokenizer is trained on it (SentencePiece aborts on an empty input).
  // An empty valid split is the trainer's to refuse: a corpus without one still loads.
  require_usable(c.train, dir, "train");
  return c;
}

int split_of(const std::string& src) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (unsigned char ch : src) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  const uint64_t bucket = h % 100;
  return bucket < 94 ? 0 : bucket < 97 ? 1 : 2;
}

static int count_words(const std::string& s) {
  std::istringstream in(s);
  std::string w;
  int n = 0;
  while (in >> w) n++;
  return n;
}

bool keep_pair(const std::string& src, const std::string& tgt) {
  if (src.empty() || blank(tgt)) return false;
  for (const std::string* s : {&src, &tgt})
    for (unsigned char ch : *s)
      if (ch < 0x20 || ch == 0x7f) return false;  // also excludes newlines: single-line pairs only
  if (!valid_utf8(src) || !valid_utf8(tgt)) return false;
  const int words = count_words(src);
  return words >= 3 && words <= 40;
}

ExtractStats extract_gettext_corpus(const std::string& locale_dir, const std::string& lang, const std::string& out_dir) {
  ExtractStats st;
  const fs::path msgdir = fs::path(locale_dir) / lang / "LC_MESSAGES";
  if (!fs::is_directory(msgdir)) throw std::runtime_error(msgdir.string() + ": no such directory (--locale-dir/--lang)");
  std::vector<fs::path> files;
  for (auto& e : fs::directory_iterator(msgdir))
    if (e.path().extension() == ".mo") files.push_back(e.path());
  std::sort(files.begin(), files.end());  // deterministic: first occurrence of a source wins
  std::unordered_set<std::string> seen;
  ParallelCorpus split[3];
  for (auto& f : files) {
    st.files++;
    std::vector<MoEntry> entries;
    try {
      entries = read_mo(read_file(f.string()), f.string());
    } catch (const std::exception& e) {
      st.bad_files++;
      st.bad.push_back(e.what());
      continue;
    }
    for (auto& e : entries) {
      st.entries++;
      if (e.context || e.plural || !keep_pair(e.msgid, e.msgstr)) continue;
      if (!seen.insert(e.msgid).second) {
        st.duplicates++;
        continue;
      }
      st.kept++;
      const int s = split_of(e.msgid);
      split[s].src.push_back(e.msgid);
      split[s].tgt.push_back(e.msgstr);
    }
  }
  st.train = int64_t(split[0].size());
  st.valid = int64_t(split[1].size());
  st.test = int64_t(split[2].size());
  fs::create_directories(out_dir);
  const char* names[3] = {"train", "valid", "test"};
  for (int s = 0; s < 3; s++) {
    std::string a, b;
    for (size_t i = 0; i < split[s].size(); i++) {
      a += split[s].src[i] + "\n";
      b += split[s].tgt[i] + "\n";
    }
    write_file_atomic(fmt::format("{}/{}.en", out_dir, names[s]), a);
    write_file_atomic(fmt::format("{}/{}.{}", out_dir, names[s], lang), b);
  }
  return st;
}

SplitStats split_corpus(const ParallelCorpus& all, const std::string& out_dir, const std::string& src_lang,
                        const std::string& tgt_lang, int64_t valid, int64_t test, uint64_t seed) {
  SplitStats st;
  st.read = int64_t(all.size());
  st.blank = all.skipped_empty;
  for (const char* split : {"train", "valid", "test"})
    for (const std::string& lang : {src_lang, tgt_lang})
      if (const fs::path f = fs::path(out_dir) / fmt::format("{}.{}", split, lang); fs::exists(f))
        throw std::runtime_error(fmt::format("--out {}: holds {} already; give a new folder (nothing was written)", out_dir,
                                             f.filename().string()));
  // the pairs of each source sentence, in first-seen order; exact duplicates once
  std::map<std::string, size_t> group_of;
  std::vector<std::vector<std::string>> targets;  // by group
  std::vector<std::string> sources;
  std::unordered_set<std::string> pairs;
  for (size_t i = 0; i < all.size(); i++) {
    if (!pairs.insert(all.src[i] + '\t' + all.tgt[i]).second) {
      st.duplicates++;
      continue;
    }
    auto [it, fresh] = group_of.emplace(all.src[i], sources.size());
    if (fresh) sources.push_back(all.src[i]), targets.emplace_back();
    targets[it->second].push_back(all.tgt[i]);
  }
  const int64_t unique = st.read - st.duplicates;
  for (auto& t : targets) st.shared_sources += t.size() > 1 ? 1 : 0;
  if (valid + test >= unique)
    throw std::runtime_error(fmt::format("--valid {} and --test {} leave train no pair: the corpus has {} distinct pairs", valid,
                                         test, unique));
  // a shuffle of the groups (splitmix64 of the seed: the same on every machine and compiler)
  std::vector<size_t> order(sources.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  uint64_t x = seed;
  auto next = [&x] {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  for (size_t i = order.size(); i > 1; i--) std::swap(order[i - 1], order[next() % i]);
  std::vector<int> split(sources.size(), 0);  // 0 train, 1 valid, 2 test
  int64_t want[3] = {0, valid, test}, have[3] = {0, 0, 0};
  for (size_t g : order)
    for (int k : {1, 2})
      if (have[k] + int64_t(targets[g].size()) <= want[k]) {
        split[g] = k;
        have[k] += int64_t(targets[g].size());
        break;
      }
  std::string text[3][2];
  for (size_t g = 0; g < sources.size(); g++)  // each split keeps the input's order
    for (const std::string& t : targets[g]) {
      text[split[g]][0] += sources[g] + '\n';
      text[split[g]][1] += t + '\n';
      (split[g] == 0 ? st.train : split[g] == 1 ? st.valid : st.test)++;
    }
  const bool existed = fs::exists(out_dir);
  try {
    StagedDir out(out_dir);
    const char* names[3] = {"train", "valid", "test"};
    for (int k = 0; k < 3; k++) {
      out.write(fmt::format("{}.{}", names[k], src_lang), text[k][0]);
      out.write(fmt::format("{}.{}", names[k], tgt_lang), text[k][1]);
    }
    out.commit();
  } catch (...) {
    std::error_code ec;
    if (!existed) fs::remove_all(out_dir, ec);  // --out as it was: not there
    throw;
  }
  return st;
}

}  // namespace attn
