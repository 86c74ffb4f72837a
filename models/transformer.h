// models/transformer.h — the encoder–decoder transformer with per-site attention variants.
//
// Shared vocabulary: one embedding table E (V,C) for source, target and the output layer
// (logits = h Eᵀ). Pre-LN blocks by default (post-LN by flag). Sinusoidal positions.
//
//   ModelConfig cfg;  cfg.vocab = 8000;  cfg.apply_preset("qq");
//   Transformer model(cfg, /*seed=*/1);
//   Context ctx{.train = true, .rng = &rng};
//   Tape tape; TapeScope scope(tape);
//   Var loss = model.loss(batch, ctx);  tape.backward(loss);
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "data/batch.h"
#include "nn/attention.h"

namespace attn {

// An attention-variant preset (qk, qq, qq-noself, ...): the variant at each kind of site.
struct VariantPreset {
  std::string name, enc_self, dec_self, cross;  // AttnVariant specs ("qq+noself")
  std::string description;
};
const std::vector<VariantPreset>& variant_presets();

struct ModelConfig {
  int vocab = 8000;
  int d_model = 256, heads = 4, enc_layers = 3, dec_layers = 3, d_ff = 1024;
  float dropout = 0.1f;
  float label_smoothing = 0.1f;
  bool gelu = false, post_ln = false;
  int max_len = 256;
  int pad_id = 0, bos_id = 1, eos_id = 2, unk_id = 3;
  std::string preset = "qk";
  AttnVariant enc_self, dec_self, cross;

  // Sets the three sites' variants from the preset's row of variant_presets().
  void apply_preset(const std::string& name);
  static std::vector<std::string> preset_names();
  void validate() const;  // throws std::invalid_argument naming the bad field
  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j);
};

struct EncoderLayer {
  LayerNorm ln1, ln2;
  MultiHeadAttention self_attn;
  FeedForward ff;
};
struct DecoderLayer {
  LayerNorm ln1, ln2, ln3;
  MultiHeadAttention self_attn, cross_attn;
  FeedForward ff;
};

// Per-layer caches of one incremental decode.
struct DecodeState {
  Var memory;            // (B,S,C)
  Tensor cross_mask;     // (B,1,S)
  std::vector<KVCache> self_cache, cross_cache;
  int step = 0;
};

class Transformer {
 public:
  ModelConfig cfg;
  ParamStore params;
  Var emb;  // (V,C), tied with the output layer
  std::vector<EncoderLayer> enc;
  std::vector<DecoderLayer> dec;
  LayerNorm enc_ln, dec_ln;  // final norms (pre-LN)

  Transformer(const ModelConfig& cfg, uint64_t seed);

  Var encode(const std::vector<int32_t>& src, int B, int S, const Context& ctx) const;
  // Decoder hidden states (B,T,C) for the whole target prefix.
  Var decode(const std::vector<int32_t>& tgt_in, int B, int T, const Var& memory, const std::vector<int32_t>& src,
             int S, const Context& ctx) const;
  Var logits(const Var& hidden) const;  // (B,T,C) -> (B*T,V)
  Var loss(const Batch& batch, const Context& ctx) const;

  // Incremental decoding: start() encodes; step() takes one new token per row and returns
  // logits (B,V) of the next position, reusing cached keys and values.
  DecodeState start(const std::vector<int32_t>& src, int B, int S) const;
  Tensor step(DecodeState& st, const std::vector<int32_t>& tokens) const;
  // Keeps rows `rows` of every cache, in that order: beam search reordering, finished sentences
  // leaving a batch, one encoded source repeated for its beam rows.
  void reorder(DecodeState& st, const std::vector<int>& rows) const;

  // Attention sites for analysis: (site name, module).
  std::vector<std::pair<std::string, const MultiHeadAttention*>> sites() const;

  // Masks (additive 0 / -inf).
  Tensor src_mask(const std::vector<int32_t>& src, int B, int Tq, int S) const;  // keys = source padding
  Tensor causal_mask(int B, int T) const;
};

// Parameters of the model a config builds (without keeping it).
int64_t count_params(const ModelConfig& cfg);
// Widens d_ff (or d_model when widen == "d_model") of `cfg` until its parameter count is within
// 0.5% of `target`. Returns a description of what changed.
std::string match_params(ModelConfig& cfg, int64_t target, const std::string& widen = "d_ff");

}  // namespace attn
