// train/evaluate.h — what a run is measured by: loss on a set, translations and their
// BLEU/chrF, and the learning-dynamics rows (attention entropy, diagonal mass, W_q W_kᵀ
// asymmetry, W_q/W_k gradient norms) that dynamics.csv holds.
//
//   double loss = eval_loss(model, valid, /*batch_tokens=*/2048);
//   auto [bleu, chrf] = bleu_chrf(model, tok, corpus.test, /*n=*/500, /*beam=*/5);
//   std::vector<DynRow> rows;  attention_stats(model, probe_batch, step, rows);
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <attnlab/data/batching.h>
#include <attnlab/data/corpus.h>
#include <attnlab/data/tokenizer.h>
#include <attnlab/models/decode.h>
#include <attnlab/models/transformer.h>
#include <attnlab/train/run_logs.h>

namespace attn {

// A set's mean cross-entropy per scored token (no label smoothing, no dropout) and the share of
// scored tokens the model's top guess gets right: every target token of a translation or
// language model, the masked tokens of an mlm (on its fixed mask).
struct SetScore {
  double loss = 0, accuracy = 0;
  int64_t tokens = 0;
};
SetScore eval_score(const Model& model, const std::vector<Example>& data, int batch_tokens);
inline double eval_loss(const Model& model, const std::vector<Example>& data, int batch_tokens) {
  return eval_score(model, data, batch_tokens).loss;
}

// A source line longer than the model reads: only its first `kept` tokens were translated.
struct CutLine {
  size_t line;  // 0-based index into the lines given
  size_t tokens, kept;
};
// Source lines as the translator reads them: tokenized, cut to max_len - 1 tokens, eos appended.
// `cut`, when given, lists the lines that were cut so the caller can say so.
std::vector<std::vector<int32_t>> encode_sources(const Tokenizer& tok, const std::vector<std::string>& lines, int max_len,
                                                 std::vector<CutLine>* cut = nullptr);
// Translate source lines (encoded by encode_sources).
std::vector<std::string> translate_texts(const Transformer& model, const Tokenizer& tok,
                                         const std::vector<std::string>& lines, const DecodeOptions& opt,
                                         std::vector<CutLine>* cut = nullptr);

// Corpus BLEU and chrF of the first n pairs of c, translated with `beam`; the translations in
// *hyps_out when given; `on_progress` as DecodeOptions' (sentences translated so far, of n).
std::pair<double, double> bleu_chrf(const Transformer& model, const Tokenizer& tok, const ParallelCorpus& c, int n,
                                    int beam, std::vector<std::string>* hyps_out = nullptr,
                                    std::function<void(size_t, size_t)> on_progress = {});

// Attention entropy (nats) and diagonal mass per site, and W_q W_kᵀ asymmetry where W_k is
// its own matrix, on one evaluation batch.
void attention_stats(const Model& model, const Batch& x, int64_t step, std::vector<DynRow>& rows);
// |∂L/∂W_q| and |∂L/∂W_k| per site, from the gradients of the step just taken.
void grad_norm_rows(const Model& model, int64_t step, std::vector<DynRow>& rows);

}  // namespace attn
