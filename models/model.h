// models/model.h — what every model attnlab trains shares: its configuration (the
// architecture, the sizes, the attention variant at each kind of site) and its interface to
// training, evaluation and analysis.
//
// Three architectures (ModelConfig::arch):
//   seq2seq  the encoder–decoder translation model (models/transformer.h)
//   lm       decoder-only: --dec-layers blocks of causal self-attention, no cross-attention,
//            trained to predict each next token of a sentence (models/lm.h)
//   mlm      encoder-only: --enc-layers blocks of self-attention, trained to fill in masked
//            tokens (models/lm.h)
// All three tie the output layer to the token embedding.
//
//   ModelConfig cfg;  cfg.arch = "lm";  cfg.vocab = 4000;  cfg.apply_preset("qq");
//   std::unique_ptr<Model> m = make_model(cfg, /*seed=*/1);
//   Var loss = m->loss(batch, ctx);                  // what training minimises
//   Scored s = m->score(batch);                      // loss, tokens scored, top-1 right
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <attnlab/data/batch.h>
#include <attnlab/nn/attention.h>

namespace attn {

// An attention-variant preset (qk, qq, qq-noself, ...): the variant at each kind of site.
struct VariantPreset {
  std::string name, enc_self, dec_self, cross;  // AttnVariant specs ("qq+noself")
  std::string description;
};
const std::vector<VariantPreset>& variant_presets();

struct ModelConfig {
  std::string arch = "seq2seq";  // seq2seq, lm or mlm
  int vocab = 8000;
  int d_model = 256, heads = 4, enc_layers = 3, dec_layers = 3, d_ff = 1024;
  float dropout = 0.1f;
  float label_smoothing = 0.1f;
  bool gelu = false, post_ln = false;
  int max_len = 256;
  int pad_id = 0, bos_id = 1, eos_id = 2, unk_id = 3;
  std::string preset = "qk";
  AttnVariant enc_self, dec_self, cross;

  // Sets the three sites' variants from the preset's row of variant_presets(). An lm has only
  // decoder self-attention and an mlm only encoder self-attention: a preset that changes
  // nothing there (qq-enc for an lm) is refused.
  void apply_preset(const std::string& name);
  static std::vector<std::string> arch_names();
  static std::vector<std::string> preset_names();
  void validate() const;  // throws UsageError (core/usage_error.h) naming the bad field
  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j);
};

// One evaluation batch's score: the mean loss over the tokens it scores (no label smoothing),
// how many it scored and how many of those the model's top guess got right.
struct Scored {
  double loss = 0;
  int64_t tokens = 0, correct = 0;
};

class Model {
 public:
  ModelConfig cfg;
  ParamStore params;
  Var emb;  // (V,C), tied with the output layer

  virtual ~Model() = default;
  // The training loss of a batch (label smoothing when ctx.train).
  virtual Var loss(const Batch& batch, const Context& ctx) const = 0;
  // The evaluation score of a batch, no dropout, no gradient.
  virtual Scored score(const Batch& batch) const = 0;
  // Attention sites for analysis: (site name, module). Names start with "enc." (self-attention
  // over the source / the masked input), "dec." (causal self-attention; cross-attention).
  virtual std::vector<std::pair<std::string, const MultiHeadAttention*>> sites() const = 0;

 protected:
  explicit Model(const ModelConfig& c) : cfg(c) {}
};

// The model cfg.arch names, with weights drawn from seed.
std::unique_ptr<Model> make_model(const ModelConfig& cfg, uint64_t seed);

// The loss, tokens and top-1 hits of logits (N,V) against targets (N), pad not scored.
Scored score_logits(const Var& logits, const std::vector<int32_t>& targets, int pad_id);

// Parameters of the model a config builds (without keeping it).
int64_t count_params(const ModelConfig& cfg);
// Widens d_ff (or d_model when widen == "d_model") of `cfg` until its parameter count is within
// 0.5% of `target`. Returns a description of what changed.
std::string match_params(ModelConfig& cfg, int64_t target, const std::string& widen = "d_ff");

}  // namespace attn
