// train/evaluate.cpp — loss on a set, translations and their scores, learning-dynamics rows.
#include <attnlab/train/evaluate.h>

#include <algorithm>
#include <cmath>

#include <attnlab/data/metrics.h>

namespace attn {

SetScore eval_score(const Model& model, const std::vector<Example>& data, int batch_tokens) {
  NoGradScope ng;
  Batcher b(data, batch_tokens, 0, /*shuffle=*/false);
  double total = 0;
  int64_t correct = 0;
  SetScore s;
  for (size_t i = 0; i < b.batches_per_epoch(); i++) {
    const Scored x = model.score(b.next());
    total += x.loss * double(x.tokens);
    correct += x.correct;
    s.tokens += x.tokens;
  }
  if (s.tokens) s.loss = total / double(s.tokens), s.accuracy = double(correct) / double(s.tokens);
  return s;
}

std::vector<std::vector<int32_t>> encode_sources(const Tokenizer& tok, const std::vector<std::string>& lines, int max_len,
                                                 std::vector<CutLine>* cut) {
  std::vector<std::vector<int32_t>> srcs;
  const size_t keep = size_t(max_len - 1);  // room for eos
  for (size_t i = 0; i < lines.size(); i++) {
    auto ids = tok.encode(lines[i]);
    if (ids.size() > keep) {
      if (cut) cut->push_back({i, ids.size(), keep});
      ids.resize(keep);
    }
    ids.push_back(Tokenizer::kEos);
    srcs.push_back(ids);
  }
  return srcs;
}

std::vector<std::string> translate_texts(const Transformer& model, const Tokenizer& tok,
                                         const std::vector<std::string>& lines, const DecodeOptions& opt,
                                         std::vector<CutLine>* cut) {
  std::vector<std::string> res;
  for (auto& o : translate_ids(model, encode_sources(tok, lines, model.cfg.max_len, cut), opt)) res.push_back(tok.decode(o));
  return res;
}

std::pair<double, double> bleu_chrf(const Transformer& model, const Tokenizer& tok, const ParallelCorpus& c, int n,
                                    int beam, std::vector<std::string>* hyps_out,
                                    std::function<void(size_t, size_t)> on_progress) {
  const size_t k = std::min<size_t>(size_t(n), c.size());
  std::vector<std::string> src(c.src.begin(), c.src.begin() + int64_t(k)), ref(c.tgt.begin(), c.tgt.begin() + int64_t(k));
  DecodeOptions opt;
  opt.beam = beam;
  opt.on_progress = std::move(on_progress);
  std::vector<std::string> hyps = translate_texts(model, tok, src, opt);
  if (hyps_out) *hyps_out = hyps;
  return {corpus_bleu(hyps, ref).score, corpus_chrf(hyps, ref)};
}

void attention_stats(const Model& model, const Batch& x, int64_t step, std::vector<DynRow>& rows) {
  NoGradScope ng;
  std::map<std::string, Tensor> probs;
  Context ctx;
  ctx.attention_probs = &probs;
  model.loss(x, ctx);
  for (auto& [name, m] : model.sites()) {
    const Tensor& P = probs.at(name);  // (B,H,Tq,Tk)
    const int64_t B = P.dim(0), H = P.dim(1), Tq = P.dim(2), Tk = P.dim(3);
    const bool enc_site = name.rfind("enc.", 0) == 0;
    const bool self = name.find("self_attn") != std::string::npos;
    const std::vector<int32_t>& q_ids = enc_site ? x.src : x.tgt_in;
    double ent = 0, diag = 0;
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < Tq; i++) {
          if (q_ids[size_t(b * Tq + i)] == model.cfg.pad_id) continue;
          const float* p = P.data() + ((b * H + h) * Tq + i) * Tk;
          for (int64_t j = 0; j < Tk; j++)
            if (p[j] > 0) ent -= double(p[j]) * std::log(double(p[j]));
          if (self && i < Tk) diag += p[i];
          n++;
        }
    if (n == 0) continue;
    rows.push_back({step, name, "entropy", ent / double(n)});
    if (self) rows.push_back({step, name, "diag_mass", diag / double(n)});
    if (!m->variant.shared_qk) rows.push_back({step, name, "wqk_asymmetry", wqk_asymmetry(*m)});
  }
}

void grad_norm_rows(const Model& model, int64_t step, std::vector<DynRow>& rows) {
  for (auto& [name, m] : model.sites()) {
    if (m->wq.weight->grad.defined()) rows.push_back({step, name, "grad_wq", l2_norm(m->wq.weight->grad)});
    if (m->wk.weight && m->wk.weight->grad.defined()) rows.push_back({step, name, "grad_wk", l2_norm(m->wk.weight->grad)});
  }
}

}  // namespace attn
