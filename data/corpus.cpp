// data/corpus.cpp — corpus readers and the gettext extraction.
#include "data/corpus.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include <fmt/format.h>

#include "core/fileio.h"
#include "core/words.h"
#include "data/mo.h"
#include "data/utf8.h"

namespace attn {
namespace fs = std::filesystem;

static std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string cur;
  std::istringstream in(text);
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

static bool blank(const std::string& s) { return s.find_first_not_of(" \t") == std::string::npos; }

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
  if (c.train.size() == 0) throw std::runtime_error(dir + ": the train split is empty");
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

}  // namespace attn
