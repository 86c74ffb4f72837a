// models/model.h — what every model attnlab trains shares: its configuration (the
// architecture, the sizes, the attention variant at each kind of site) and its interface to
// training, evaluation and analysis.
//
// Three architectures (ModelConfig::arch, models/arch.h): seq2seq (encoder–decoder
// translation), lm (decoder-only, next-token prediction), mlm (encoder-only, masked tokens).
// All three tie the output layer to the token embedding. What differs between them is asked of
// the architecture's traits or of the Model, never by testing which one it is.
//
//   ModelConfig cfg;  cfg.arch = Arch::lm;  cfg.vocab = 4000;  cfg.apply_preset("qq");
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
#include <attnlab/models/arch.h>
#include <attnlab/nn/attention.h>

namespace attn {

// An attention-variant preset (qk, qq, qq-noself, ...): the variant at each kind of site.
struct VariantPreset {
  std::string name, enc_self, dec_self, cross;  // AttnVariant specs ("qq+noself")
  std::string description;
};
const std::vector<VariantPreset>& variant_presets();

struct ModelConfig {
  Arch arch = Arch::seq2seq;
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
  static std::vector<std::string> preset_names();
  void validate() const;  // throws UsageError (core/usage_error.h) naming the bad field
  // Blocks in the model: its encoder's and its decoder's, those it has.
  int layers() const;
  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j);
};

// One evaluation batch's score: the mean loss over the tokens it scores (no label smoothing),
// how many it scored and how many of those the model's top guess got right.
struct Scored {
  double loss = 0;
  int64_t tokens = 0, correct = 0;
};

class Transformer;
class LanguageModel;

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
  // One forward pass over a sentence as this model reads it, for analysis (`inspect attention`,
  // with ctx.attention_probs): a translation model translates ids (eos-terminated) greedily and
  // reads the source and its translation; an lm reads the sentence after bos; an mlm reads it
  // with no token masked. Returns the batch it read.
  virtual Batch read_sentence(const std::vector<int32_t>& ids, const Context& ctx) const = 0;

  const ArchTraits& arch() const { return traits(cfg.arch); }
  // The tokens of a batch that training counts (tokens/s): the decoder's targets, or an mlm's
  // sentences.
  int64_t predicted_tokens(const Batch& b) const { return arch().has_decoder ? b.tgt_tokens : b.src_tokens; }
  // The model as what it can do: a translation model (seq2seq) translates, a language model
  // generates; null when it cannot (and arch() says why).
  virtual const Transformer* translator() const { return nullptr; }
  virtual const LanguageModel* generator() const { return nullptr; }

 protected:
  explicit Model(const ModelConfig& c) : cfg(c) {}
};

// The model of cfg.arch, with weights drawn from seed.
std::unique_ptr<Model> make_model(const ModelConfig& cfg, uint64_t seed);

// The loss, tokens and top-1 hits of logits (N,V) against targets (N), pad not scored.
Scored score_logits(const Var& logits, const std::vector<int32_t>& targets, int pad_id);

// Parameters of the model a config builds (without keeping it).
int64_t count_params(const ModelConfig& cfg);
// Widens d_ff (or d_model when widen == "d_model") of `cfg` until its parameter count is within
// 0.5% of `target`. Returns a description of what changed.
std::string match_params(ModelConfig& cfg, int64_t target, const std::string& widen = "d_ff");

}  // namespace attn
