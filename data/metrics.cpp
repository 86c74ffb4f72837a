// data/metrics.cpp — sacrebleu's BLEU (13a, exp smoothing) and chrF (6, β=2), re-derived.
#include <attnlab/data/metrics.h>

#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include <attnlab/data/utf8.h>

namespace attn {

static std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

// The 13a punctuation class [{-~ [-` space-& (-+ :-@ /]: each becomes " c ".
static bool is_13a_punct(unsigned char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}

std::string tokenize_13a(const std::string& input) {
  std::string line = replace_all(input, "<skipped>", "");
  line = replace_all(line, "-\n", "");
  line = replace_all(line, "\n", " ");
  line = replace_all(line, "&quot;", "\"");
  line = replace_all(line, "&amp;", "&");
  line = replace_all(line, "&lt;", "<");
  line = replace_all(line, "&gt;", ">");
  line = " " + line + " ";
  // Rule 1: punctuation -> " c ".
  std::string r1;
  for (unsigned char c : line) {
    if (is_13a_punct(c)) r1 += std::string(" ") + char(c) + " ";
    else r1 += char(c);
  }
  // Rules 2-4 replace two-character matches, scanning left to right without overlap, as
  // Python's re.sub does for these fixed-width patterns. A multi-byte UTF-8 character is a
  // non-digit in either view, so scanning bytes gives the same result as scanning code points.
  auto sub2 = [](const std::string& s, auto match, auto emit) {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
      if (i + 1 < s.size() && match((unsigned char)s[i], (unsigned char)s[i + 1])) {
        out += emit(s[i], s[i + 1]);
        i += 2;
      } else {
        out += s[i];
        i += 1;
      }
    }
    return out;
  };
  // ([^0-9])([\.,]) -> "\1 \2 "
  std::string r2 = sub2(r1, [](unsigned char a, unsigned char b) { return !is_digit(a) && (b == '.' || b == ','); },
                        [](char a, char b) { return std::string(1, a) + " " + b + " "; });
  // ([\.,])([^0-9]) -> " \1 \2"
  std::string r3 = sub2(r2, [](unsigned char a, unsigned char b) { return (a == '.' || a == ',') && !is_digit(b); },
                        [](char a, char b) { return std::string(" ") + a + " " + b; });
  // ([0-9])(-) -> "\1 \2 "
  std::string r4 = sub2(r3, [](unsigned char a, unsigned char b) { return is_digit(a) && b == '-'; },
                        [](char a, char b) { return std::string(1, a) + " " + b + " "; });
  // ' '.join(line.split()): Python splits on Unicode whitespace.
  std::string out, word;
  auto cps = utf8_decode(r4);
  std::u32string w;
  for (char32_t c : cps) {
    if (is_unicode_space(c)) {
      if (!w.empty()) out += (out.empty() ? "" : " ") + utf8_encode(w), w.clear();
    } else {
      w += c;
    }
  }
  if (!w.empty()) out += (out.empty() ? "" : " ") + utf8_encode(w);
  return out;
}

static std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

BleuResult corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
  if (hyps.size() != refs.size())
    throw std::invalid_argument(fmt::format("BLEU: {} hypotheses but {} references", hyps.size(), refs.size()));
  BleuResult r;
  for (size_t s = 0; s < hyps.size(); s++) {
    auto h = split_ws(tokenize_13a(hyps[s])), f = split_ws(tokenize_13a(refs[s]));
    r.sys_len += int64_t(h.size());
    r.ref_len += int64_t(f.size());
    for (int n = 1; n <= 4; n++) {
      std::map<std::string, int> hc, rc;
      for (size_t i = 0; i + n <= h.size(); i++) {
        std::string g;
        for (int k = 0; k < n; k++) g += h[i + k] + '\x1f';
        hc[g]++;
      }
      for (size_t i = 0; i + n <= f.size(); i++) {
        std::string g;
        for (int k = 0; k < n; k++) g += f[i + k] + '\x1f';
        rc[g]++;
      }
      for (auto& [g, c] : hc) {
        auto it = rc.find(g);
        if (it != rc.end()) r.correct[n - 1] += std::min(c, it->second);
      }
      r.total[n - 1] += std::max<int64_t>(0, int64_t(h.size()) - n + 1);
    }
  }
  // 'exp' smoothing: the k-th zero-match order gets precision 100 / (2^k * total).
  double smooth = 1.0;
  for (int n = 0; n < 4; n++) {
    if (r.total[n] == 0) break;
    if (r.correct[n] == 0) {
      smooth *= 2;
      r.precisions[n] = 100.0 / (smooth * double(r.total[n]));
    } else {
      r.precisions[n] = 100.0 * double(r.correct[n]) / double(r.total[n]);
    }
  }
  r.ratio = r.ref_len > 0 ? double(r.sys_len) / double(r.ref_len) : 0;
  r.bp = r.sys_len > r.ref_len ? 1.0 : r.sys_len > 0 ? std::exp(1.0 - double(r.ref_len) / double(r.sys_len)) : 0.0;
  double logsum = 0;
  for (int n = 0; n < 4; n++) logsum += r.precisions[n] > 0 ? std::log(r.precisions[n]) : -9999999999.0;
  r.score = r.bp * std::exp(logsum / 4);
  return r;
}

double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
  if (hyps.size() != refs.size())
    throw std::invalid_argument(fmt::format("chrF: {} hypotheses but {} references", hyps.size(), refs.size()));
  const int order = 6;
  const double beta = 2.0;
  std::vector<int64_t> stats(3 * order, 0);  // per order: hyp n-grams, ref n-grams, matches
  auto strip = [](const std::string& s) {
    std::u32string out;
    for (char32_t c : utf8_decode(s))
      if (!is_unicode_space(c)) out += c;
    return out;
  };
  for (size_t s = 0; s < hyps.size(); s++) {
    const std::u32string h = strip(hyps[s]), f = strip(refs[s]);
    for (int n = 1; n <= order; n++) {
      std::map<std::u32string, int> hc, rc;
      for (size_t i = 0; i + n <= h.size(); i++) hc[h.substr(i, n)]++;
      for (size_t i = 0; i + n <= f.size(); i++) rc[f.substr(i, n)]++;
      int64_t match = 0;
      for (auto& [g, c] : hc) {
        auto it = rc.find(g);
        if (it != rc.end()) match += std::min(c, it->second);
      }
      stats[3 * (n - 1)] += std::max<int64_t>(0, int64_t(h.size()) - n + 1);
      stats[3 * (n - 1) + 1] += std::max<int64_t>(0, int64_t(f.size()) - n + 1);
      stats[3 * (n - 1) + 2] += match;
    }
  }
  // Average precision and recall over the orders where both sides have n-grams, then F_β.
  double avg_p = 0, avg_r = 0;
  int eff = 0;
  for (int n = 0; n < order; n++) {
    const int64_t nh = stats[3 * n], nr = stats[3 * n + 1], nm = stats[3 * n + 2];
    if (nh > 0 && nr > 0) {
      avg_p += double(nm) / double(nh);
      avg_r += double(nm) / double(nr);
      eff++;
    }
  }
  if (eff == 0) return 0.0;
  avg_p /= eff;
  avg_r /= eff;
  if (avg_p + avg_r == 0) return 0.0;
  const double b2 = beta * beta;
  return 100.0 * (1 + b2) * avg_p * avg_r / (b2 * avg_p + avg_r);
}

std::string bleu_signature() { return "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.x-compatible(attnlab)"; }
std::string chrf_signature() { return "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.x-compatible(attnlab)"; }

}  // namespace attn
