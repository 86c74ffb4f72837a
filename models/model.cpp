// models/model.cpp — the model configuration (presets, checks, JSON), the factory, scoring,
// parameter counting and matching.
#include <attnlab/models/model.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include <attnlab/core/usage_error.h>
#include <attnlab/models/lm.h>
#include <attnlab/models/transformer.h>

namespace attn {

// ---- config ----------------------------------------------------------------------------

// The attention-variant presets: one row each, read by apply_preset, the preset list, the
// --variant help text and compare's grids. Each site's spec is an AttnVariant (nn/attention.h).
const std::vector<VariantPreset>& variant_presets() {
  static const std::vector<VariantPreset> table = {
      // name          enc self         dec self         cross         what changes
      {"qk",           "qk",            "qk",            "qk",         "baseline: separate W_q, W_k, W_v, W_o"},
      {"qq",           "qq",            "qq",            "qk",         "W_k = W_q in both self-attentions (cross-attention keeps W_k)"},
      {"qq-noself",    "qq+noself",     "qq+noself",     "qk",         "qq, and a token attends to itself only when nothing else is visible"},
      {"qq-normk",     "qq+normk",      "qq+normk",      "qk",         "qq with unit-length keys"},
      {"qq-enc",       "qq",            "qk",            "qk",         "qq in encoder self-attention only"},
      {"qq-dec",       "qk",            "qq",            "qk",         "qq in decoder self-attention only"},
      {"qq-all",       "qq",            "qq",            "qq",         "qq at every site, cross-attention too"},
      {"noV",          "qk+noV",        "qk+noV",        "qk+noV",     "no value projection (V = X) at every site"},
      {"noO",          "qk+noO",        "qk+noO",        "qk+noO",     "no output projection at every site"},
      {"qq-noV-noO",   "qq+noV+noO",    "qq+noV+noO",    "qk+noV+noO", "qq, with neither value nor output projection at any site"},
  };
  return table;
}

std::vector<std::string> ModelConfig::preset_names() {
  std::vector<std::string> names;
  for (auto& p : variant_presets()) names.push_back(p.name);
  return names;
}

void ModelConfig::apply_preset(const std::string& name) {
  for (auto& p : variant_presets())
    if (p.name == name) {
      // An lm has decoder self-attention only, an mlm encoder self-attention only: a preset
      // that changes other sites alone would train the baseline under another name.
      const ArchTraits& a = traits(arch);
      const std::string& only_site = a.has_encoder ? p.enc_self : p.dec_self;
      if (!a.translates() && only_site == "qk" && name != "qk")
        throw UsageError(fmt::format("--variant {}: changes no {} self-attention, the only attention a --arch {} "
                                     "model has (it would be qk)", name, a.has_encoder ? "encoder" : "decoder", a.name));
      enc_self = AttnVariant::parse(p.enc_self);
      dec_self = AttnVariant::parse(p.dec_self);
      cross = AttnVariant::parse(p.cross);
      preset = name;
      return;
    }
  std::string all;
  for (auto& p : preset_names()) all += (all.empty() ? "" : ", ") + p;
  throw UsageError("--variant: unknown variant '" + name + "' (expected one of: " + all + ")");
}

int ModelConfig::layers() const {
  const ArchTraits& a = traits(arch);
  return (a.has_encoder ? enc_layers : 0) + (a.has_decoder ? dec_layers : 0);
}

void ModelConfig::validate() const {
  auto positive = [](const char* flag, int v) {
    if (v <= 0) throw UsageError(fmt::format("--{}: must be a positive integer, got {}", flag, v));
  };
  const ArchTraits& a = traits(arch);
  positive("vocab", vocab);
  positive("d-model", d_model);
  positive("heads", heads);
  positive("d-ff", d_ff);
  positive("max-len", max_len);
  if (a.translates() && (enc_layers < 0 || dec_layers <= 0))  // (0 encoder layers: the source's embeddings alone)
    throw UsageError(fmt::format("--enc-layers/--dec-layers: need enc >= 0 and dec >= 1, got {} and {}",
                                 enc_layers, dec_layers));
  if (!a.translates() && layers() <= 0) {
    const char* flag = a.has_encoder ? "--enc-layers" : "--dec-layers";
    throw UsageError(fmt::format("{0}: a --arch {1} model is {0} blocks; need >= 1, got {2}", flag, a.name, layers()));
  }
  if (d_model % heads != 0)
    throw UsageError(fmt::format("--d-model {} is not divisible by --heads {}", d_model, heads));
  if (!(dropout >= 0.f && dropout < 1.f)) throw UsageError(fmt::format("--dropout: must be in [0, 1), got {}", dropout));
  if (!(label_smoothing >= 0.f && label_smoothing < 1.f))
    throw UsageError(fmt::format("--label-smoothing: must be in [0, 1), got {}", label_smoothing));
}

// The fields config.json holds under "model", each under its own name. Besides these: the
// label smoothing (optional on reading: runs from before it was configurable used 0.1) and the
// three sites' variants, stored as their specs ("qq+noself").
#define ATTNLAB_MODEL_CONFIG_FIELDS(X) \
  X(vocab) X(d_model) X(heads) X(enc_layers) X(dec_layers) X(d_ff) X(dropout) X(gelu) X(post_ln) X(max_len) \
  X(pad_id) X(bos_id) X(eos_id) X(unk_id) X(preset)

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json j;
#define X(field) j[#field] = field;
  ATTNLAB_MODEL_CONFIG_FIELDS(X)
#undef X
  j["label_smoothing"] = label_smoothing;
  if (!traits(arch).translates()) j["arch"] = arch_name(arch);  // absent: a translation model (runs from before lm and mlm)
  j["enc_self"] = enc_self.str();
  j["dec_self"] = dec_self.str();
  j["cross"] = cross.str();
  return j;
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  ModelConfig c;
#define X(field) j.at(#field).get_to(c.field);
  ATTNLAB_MODEL_CONFIG_FIELDS(X)
#undef X
  c.label_smoothing = j.value("label_smoothing", 0.1f);
  c.arch = j.contains("arch") ? parse_arch(j.at("arch").get<std::string>(), "\"arch\"") : Arch::seq2seq;
  c.enc_self = AttnVariant::parse(j.at("enc_self"));
  c.dec_self = AttnVariant::parse(j.at("dec_self"));
  c.cross = AttnVariant::parse(j.at("cross"));
  c.validate();
  return c;
}

// ---- the factory and scoring -----------------------------------------------------------

// The one place an architecture meets its class.
std::unique_ptr<Model> make_model(const ModelConfig& cfg, uint64_t seed) {
  switch (cfg.arch) {
    case Arch::seq2seq: return std::make_unique<Transformer>(cfg, seed);
    case Arch::lm: return std::make_unique<LanguageModel>(cfg, seed);
    case Arch::mlm: return std::make_unique<MaskedLM>(cfg, seed);
  }
  throw std::logic_error(fmt::format("make_model: no architecture {}", int(cfg.arch)));
}

Scored score_logits(const Var& logits, const std::vector<int32_t>& targets, int pad_id) {
  Scored s;
  s.loss = cross_entropy(logits, targets, 0.f, pad_id, "loss")->value.item();
  const Tensor& z = logits->value;
  const int64_t V = z.dim(1);
  for (size_t i = 0; i < targets.size(); i++) {
    if (targets[i] == pad_id) continue;
    const float* row = z.data() + int64_t(i) * V;
    s.tokens++;
    s.correct += std::max_element(row, row + V) - row == targets[i];
  }
  return s;
}

// ---- parameter counting and matching ---------------------------------------------------

int64_t count_params(const ModelConfig& cfg) {
  const int64_t C = cfg.d_model, F = cfg.d_ff;
  auto attn = [&](const AttnVariant& v) {
    int64_t n = C * C + C;                   // wq
    if (!v.shared_qk) n += C * C + C;        // wk
    if (v.value_proj) n += C * C + C;        // wv
    if (v.out_proj) n += C * C + C;          // wo
    return n;
  };
  const int64_t ln = 2 * C, ff = C * F + F + F * C + C;
  // The embedding; each stack's blocks (a decoder block attends to the encoder too, when there is
  // one) and, pre-LN, its final LayerNorm (none for an empty encoder).
  const ArchTraits& a = traits(cfg.arch);
  int64_t n = int64_t(cfg.vocab) * C;
  if (a.has_encoder) n += cfg.enc_layers * (2 * ln + attn(cfg.enc_self) + ff) + (cfg.post_ln || cfg.enc_layers == 0 ? 0 : ln);
  if (a.has_decoder)
    n += cfg.dec_layers * (2 * ln + attn(cfg.dec_self) + ff + (a.translates() ? ln + attn(cfg.cross) : 0)) + (cfg.post_ln ? 0 : ln);
  return n;
}

std::string match_params(ModelConfig& cfg, int64_t target, const std::string& widen) {
  const int64_t before = count_params(cfg);
  const std::string was = widen == "d_model" ? fmt::format("d_model {}", cfg.d_model) : fmt::format("d_ff {}", cfg.d_ff);
  if (widen == "d_ff") {
    // count is linear in d_ff: slope = layers * (2C + 1)
    const int64_t slope = int64_t(cfg.layers()) * (2 * cfg.d_model + 1);
    cfg.d_ff += int(std::llround(double(target - before) / double(slope)));
    if (cfg.d_ff <= 0) cfg.d_ff = 1;
  } else if (widen == "d_model") {
    // The widest d_model (a multiple of heads) that stays at or under the target, then d_ff
    // closes the remaining gap (d_model moves the count in steps too coarse for 0.5%).
    for (int d = cfg.d_model; count_params(cfg) < target;) {
      ModelConfig c = cfg;
      c.d_model = d + cfg.heads;
      if (count_params(c) > target) break;
      cfg.d_model = d = c.d_model;
    }
    const int64_t slope = int64_t(cfg.layers()) * (2 * cfg.d_model + 1);
    cfg.d_ff += int(std::llround(double(target - count_params(cfg)) / double(slope)));
  } else {
    throw UsageError("--match-widen: expected d_ff or d_model, got '" + widen + "'");
  }
  const int64_t after = count_params(cfg);
  const double off = 100.0 * double(after - target) / double(target);
  const std::string now = widen == "d_model" ? fmt::format("d_model {}", cfg.d_model) : fmt::format("d_ff {}", cfg.d_ff);
  return fmt::format("{} -> {}: {} -> {} parameters ({:+.2f}% vs target {}){}", was, now, before, after, off, target,
                     std::fabs(off) <= 0.5 ? "" : " — could not get within 0.5%");
}

}  // namespace attn
