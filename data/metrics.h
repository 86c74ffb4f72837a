// data/metrics.h — corpus BLEU and chrF exactly as sacrebleu's defaults compute them.
//
// BLEU: 13a tokenizer, n = 1..4, 'exp' smoothing, brevity penalty, one reference.
// chrF: character n-grams 1..6 with whitespace removed, β = 2, statistics summed over the corpus.
//   BleuResult b = corpus_bleu(hyps, refs);  fmt::print("{} = {:.2f}\n", bleu_signature(), b.score);
#pragma once
#include <string>
#include <vector>

namespace attn {

std::string tokenize_13a(const std::string& line);

struct BleuResult {
  double score = 0, bp = 0, ratio = 0;
  double precisions[4] = {0, 0, 0, 0};
  int64_t sys_len = 0, ref_len = 0;
  int64_t correct[4] = {0, 0, 0, 0}, total[4] = {0, 0, 0, 0};
};
BleuResult corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);
double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);
std::string bleu_signature();
std::string chrf_signature();

}  // namespace attn
