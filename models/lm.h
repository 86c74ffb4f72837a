// models/lm.h — the decoder-only language model and the encoder-only masked-token model.
//
// LanguageModel (--arch lm): token embedding, --dec-layers blocks of causal self-attention and
// feed-forward (no cross-attention: nothing to attend to), a final LayerNorm (pre-LN), logits
// through the tied embedding. A batch's tgt_in (bos y1 .. yn) predicts tgt_out (y1 .. yn eos).
// Parameters "dec.N.*" and "dec.ln", so its sites read as decoder self-attention.
//
// MaskedLM (--arch mlm): the same with --enc-layers blocks of unmasked self-attention over a
// batch's src, trained to predict masked tokens (mask_tokens below). Parameters "enc.N.*".
//
//   ModelConfig cfg;  cfg.arch = Arch::lm;  cfg.vocab = 4000;  cfg.apply_preset("qq");
//   LanguageModel lm(cfg, 1);
//   LmState st = lm.start(1);  Tensor logits = lm.step(st, {Tokenizer::kBos});   // (1,V)
#pragma once
#include <vector>

#include <attnlab/models/blocks.h>
#include <attnlab/models/model.h>

namespace attn {

// The caches of one generation: each block's keys and values of the tokens so far (for qq the
// keys are the queries: W_k = W_q).
struct LmState {
  std::vector<KVCache> cache;
  int step = 0;
};

// What both are: the token embedding, `layers` blocks named prefix.N, a final LayerNorm
// (pre-LN) named prefix.ln.
class BlockStack : public Model {
 public:
  std::vector<Block> blocks;
  LayerNorm final_ln;  // pre-LN only
  std::vector<std::pair<std::string, const MultiHeadAttention*>> sites() const override;

 protected:
  BlockStack(const ModelConfig& cfg, uint64_t seed, const std::string& prefix, const AttnVariant& v, int layers);
  // Hidden states (B,T,C) of ids under an additive mask (B,T,T); with caches (generation),
  // ids are the newest positions, at `offset`.
  Var stack(const std::vector<int32_t>& ids, int B, int T, const Tensor& mask, const Context& ctx,
            std::vector<KVCache>* caches = nullptr, int offset = 0) const;
  std::string prefix_;
};

class LanguageModel : public BlockStack {
 public:
  LanguageModel(const ModelConfig& cfg, uint64_t seed);
  // Hidden states (B,T,C) of a whole sequence.
  Var hidden(const std::vector<int32_t>& ids, int B, int T, const Context& ctx) const;
  Var loss(const Batch& batch, const Context& ctx) const override;
  Scored score(const Batch& batch) const override;
  Batch read_sentence(const std::vector<int32_t>& ids, const Context& ctx) const override;
  const LanguageModel* generator() const override { return this; }

  // Generation: start() makes empty caches for B rows; step() takes one token per row and
  // returns the logits (B,V) of the next position.
  LmState start(int B) const;
  Tensor step(LmState& st, const std::vector<int32_t>& tokens) const;
};

// The masked-token task on a batch's src: each real token is chosen with probability 0.15 (at
// least one per sentence); a chosen token is replaced by the mask token (cfg.bos_id, which an
// encoder-only input never holds otherwise) with probability 0.8, by a random token
// with 0.1, and left as it is with 0.1. targets holds the chosen tokens' ids, pad elsewhere.
// Training draws from rng; with rng null the mask is fixed: each sentence's draws come from a
// hash of its tokens, so a validation set is scored on the same mask every time, in any batch.
struct Masked {
  std::vector<int32_t> input, targets;  // (B,S)
};
Masked mask_tokens(const Batch& batch, const ModelConfig& cfg, Rng* rng);

class MaskedLM : public BlockStack {
 public:
  MaskedLM(const ModelConfig& cfg, uint64_t seed);
  Var hidden(const std::vector<int32_t>& input, int B, int S, const Context& ctx) const;
  Var loss(const Batch& batch, const Context& ctx) const override;  // masks with ctx.rng when training
  Scored score(const Batch& batch) const override;                   // the fixed mask
  Batch read_sentence(const std::vector<int32_t>& ids, const Context& ctx) const override;  // no token masked
};

}  // namespace attn
