// apps/train.cpp — data preparation, the training loop, evaluation, checkpoints and resume.
#include "apps/train.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <set>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "apps/build_info.h"
#include "core/fileio.h"
#include "core/kernels.h"
#include "core/safetensors.h"
#include "core/threads.h"
#include "data/batching.h"
#include "data/metrics.h"
#include "data/synthetic.h"
#include "models/checkpoint.h"
#include "models/decode.h"
#include "nn/optim.h"

#ifndef ATTNLAB_SOURCE_DIR
#define ATTNLAB_SOURCE_DIR "."
#endif

namespace attn {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

static std::atomic<bool> g_interrupted{false};
static void on_sigint(int) { g_interrupted = true; }

std::string default_corpus_dir() {
  if (const char* env = std::getenv("ATTNLAB_DATA_DIR")) return std::string(env) + "/corpora/gettext-en-de";
  return std::string(ATTNLAB_SOURCE_DIR) + "/data/corpora/gettext-en-de";
}

// ---- config <-> json -------------------------------------------------------------------

json TrainConfig::to_json() const {
  return {{"corpus", corpus},       {"task", task},           {"task_train", task_train}, {"task_eval", task_eval},
          {"src_lang", src_lang},   {"tgt_lang", tgt_lang},   {"vocab", vocab},           {"variant", variant},
          {"match_params", match_params}, {"match_widen", match_widen}, {"optimizer", optimizer}, {"lr", lr},
          {"weight_decay", weight_decay}, {"clip", clip},     {"schedule", schedule},     {"warmup", warmup},
          {"batch_tokens", batch_tokens}, {"accum", accum},   {"steps", steps},           {"time_budget", time_budget},
          {"eval_every", eval_every}, {"log_every", log_every}, {"eval_sentences", eval_sentences},
          {"test_sentences", test_sentences}, {"beam", beam}, {"seed", seed},             {"threads", threads},
          {"model", model.to_json()}};
}

TrainConfig TrainConfig::from_json(const json& j) {
  TrainConfig c;
  c.corpus = j.at("corpus");
  c.task = j.at("task");
  c.task_train = j.at("task_train");
  c.task_eval = j.at("task_eval");
  c.src_lang = j.at("src_lang");
  c.tgt_lang = j.at("tgt_lang");
  c.vocab = j.at("vocab");
  c.variant = j.at("variant");
  c.match_params = j.at("match_params");
  c.match_widen = j.at("match_widen");
  c.optimizer = j.at("optimizer");
  c.lr = j.at("lr");
  c.weight_decay = j.at("weight_decay");
  c.clip = j.at("clip");
  c.schedule = j.at("schedule");
  c.warmup = j.at("warmup");
  c.batch_tokens = j.at("batch_tokens");
  c.accum = j.at("accum");
  c.steps = j.at("steps");
  c.time_budget = j.at("time_budget");
  c.eval_every = j.at("eval_every");
  c.log_every = j.at("log_every");
  c.eval_sentences = j.at("eval_sentences");
  c.test_sentences = j.at("test_sentences");
  c.beam = j.at("beam");
  c.seed = j.at("seed");
  c.threads = j.at("threads");
  c.model = ModelConfig::from_json(j.at("model"));
  return c;
}

void TrainConfig::validate() const {
  // The command line checks these too; this catches a hand-edited config.json or a caller in code,
  // before minutes go into a tokenizer (the model's own sizes: ModelConfig::validate).
  auto need = [](bool ok, const char* flag, const std::string& what, auto got) {
    if (!ok) throw std::invalid_argument(fmt::format("--{}: expected {}, got {}", flag, what, got));
  };
  need(std::isfinite(lr) && lr > 0, "lr", "a number > 0", lr);
  need(std::isfinite(weight_decay) && weight_decay >= 0, "weight-decay", "a number >= 0", weight_decay);
  need(std::isfinite(clip) && clip >= 0, "clip", "a number >= 0 (0: off)", clip);
  need(std::isfinite(time_budget) && time_budget >= 0, "time-budget", "seconds >= 0 (0: no limit)", time_budget);
  need(warmup >= 0, "warmup", "a whole number >= 0", warmup);
  need(batch_tokens >= 1, "batch-tokens", "a whole number >= 1", batch_tokens);
  need(accum >= 1, "accum", "a whole number >= 1", accum);
  need(steps >= 1 && steps <= 2147483647, "steps", "a whole number >= 1", steps);
  need(eval_every >= 1, "eval-every", "a whole number >= 1", eval_every);
  need(log_every >= 1, "log-every", "a whole number >= 1", log_every);
  need(eval_sentences >= 0, "eval-sentences", "a whole number >= 0", eval_sentences);
  need(test_sentences >= 0, "test-sentences", "a whole number >= 0 (0: all)", test_sentences);
  need(beam >= 1 && beam <= 64, "beam", "a whole number from 1 to 64", beam);
  need(threads >= 0, "threads", "a whole number >= 0 (0: all cores)", threads);
  need(task_train >= 1, "task-train", "a whole number >= 1", task_train);
  need(vocab >= 8, "vocab", "a whole number >= 8", vocab);
  if (!resume) {
    ModelConfig probe;
    probe.apply_preset(variant);  // throws naming an unknown --variant
  }
}

json comparable_settings(const json& config) {
  static const std::set<std::string> per_run = {"variant", "seed", "match_params", "out", "resume", "threads", "quiet",
                                                "tokenizer", "config_file", "dump_tape", "dot", "model"};
  static const std::set<std::string> model_keys = {"d_model", "heads", "enc_layers", "dec_layers", "dropout",
                                                   "label_smoothing", "post_ln", "gelu", "max_len"};
  json out = json::object();
  for (auto& [key, value] : config.items())
    if (!per_run.count(key)) out[key] = value;
  // --match-params --match-widen d_model widens d_model itself: it then belongs to the variant.
  const bool widened = config.value("match_params", false) && config.value("match_widen", "d_ff") == "d_model";
  if (config.contains("model"))
    for (auto& [key, value] : config.at("model").items())
      if (model_keys.count(key) && !(widened && key == "d_model")) out["model." + key] = value;
  return out;
}

std::string json_error(const std::string& path, const json::exception& e) {
  std::string what = e.what();  // "[json.exception.out_of_range.403] key 'x' not found"
  if (!what.empty() && what[0] == '[' && what.find("] ") != std::string::npos) what = what.substr(what.find("] ") + 2);
  return path + ": " + what;
}

json read_json(const std::string& path) {
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON (" + e.what() + ")");
  }
}

// ---- data ------------------------------------------------------------------------------

struct Data {
  CorpusSplits text;
  std::vector<Example> train, valid, test;
  int64_t skipped_long = 0;
};

static std::vector<Example> encode_split(const ParallelCorpus& c, const Tokenizer& tok, int max_len, int64_t* skipped) {
  std::vector<Example> out;
  for (size_t i = 0; i < c.size(); i++) {
    Example e;
    e.src = tok.encode(c.src[i]);
    e.src.push_back(Tokenizer::kEos);
    e.tgt = tok.encode(c.tgt[i]);
    if (int(e.src.size()) > max_len || int(e.tgt.size()) + 1 > max_len - 1 || e.tgt.empty()) {
      (*skipped)++;
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

static CorpusSplits load_text(const TrainConfig& cfg) {
  if (!cfg.task.empty()) {
    CorpusSplits s;
    s.dir = "synthetic:" + cfg.task;
    s.train = synthetic_task(cfg.task, cfg.task_train, cfg.seed * 7919 + 0);
    s.valid = synthetic_task(cfg.task, cfg.task_eval, cfg.seed * 7919 + 1);
    s.test = synthetic_task(cfg.task, cfg.task_eval, cfg.seed * 7919 + 2);
    return s;
  }
  const std::string dir = cfg.corpus.empty() ? default_corpus_dir() : cfg.corpus;
  const bool synthetic_dir = fs::exists(dir + "/train.src");
  return synthetic_dir ? load_corpus_dir(dir, "src", "tgt") : load_corpus_dir(dir, cfg.src_lang, cfg.tgt_lang);
}

static std::unique_ptr<Tokenizer> make_tokenizer(const TrainConfig& cfg, const CorpusSplits& text, const std::string& run) {
  const std::string prefix = run + "/tokenizer";
  const bool have_own = fs::exists(prefix + ".model") || fs::exists(prefix + ".symbols");
  if (!cfg.tokenizer.empty()) {  // shared tokenizer: copy it into the run so the run stands alone
    const bool shared = fs::exists(cfg.tokenizer + ".model") || fs::exists(cfg.tokenizer + ".symbols");
    if (!shared && !have_own)  // (a resumed run keeps using its own copy)
      throw std::invalid_argument(fmt::format("--tokenizer {0}: no tokenizer there (expected {0}.model or {0}.symbols)", cfg.tokenizer));
    for (const char* ext : {".model", ".vocab", ".symbols"})
      if (fs::exists(cfg.tokenizer + ext)) fs::copy_file(cfg.tokenizer + ext, prefix + ext, fs::copy_options::overwrite_existing);
    return Tokenizer::load(prefix);
  }
  if (have_own) return Tokenizer::load(prefix);
  std::vector<std::string> lines = text.train.src;
  lines.insert(lines.end(), text.train.tgt.begin(), text.train.tgt.end());
  const bool symbolic = !cfg.task.empty() || text.dir.rfind("synthetic:", 0) == 0 || fs::exists(text.dir + "/train.src");
  if (symbolic) return Tokenizer::build_symbols(lines, prefix);
  return Tokenizer::train_sentencepiece(lines, cfg.vocab, prefix, uint32_t(cfg.seed));
}

// ---- evaluation ------------------------------------------------------------------------

struct EvalResult {
  double loss = 0, ppl = 0, bleu = -1, chrf = -1;
};

static double eval_loss(const Transformer& model, const std::vector<Example>& data, int batch_tokens) {
  NoGradScope ng;
  Batcher b(data, batch_tokens, 0, /*shuffle=*/false);
  double total = 0;
  int64_t count = 0;
  for (size_t i = 0; i < b.batches_per_epoch(); i++) {
    Batch x = b.next();
    Var l = model.loss(x, Context{});
    int64_t n = 0;
    for (int32_t t : x.tgt_out) n += t != model.cfg.pad_id;
    total += double(l->value.item()) * double(n);
    count += n;
  }
  return count ? total / double(count) : 0;
}

std::vector<std::string> translate_texts(const Transformer& model, const Tokenizer& tok,
                                         const std::vector<std::string>& lines, const DecodeOptions& opt,
                                         std::vector<CutLine>* cut) {
  std::vector<std::vector<int32_t>> srcs;
  const size_t keep = size_t(model.cfg.max_len - 1);  // room for eos
  for (size_t i = 0; i < lines.size(); i++) {
    auto ids = tok.encode(lines[i]);
    if (ids.size() > keep) {
      if (cut) cut->push_back({i, ids.size(), keep});
      ids.resize(keep);
    }
    ids.push_back(Tokenizer::kEos);
    srcs.push_back(ids);
  }
  std::vector<std::string> res;
  for (auto& o : translate_ids(model, srcs, opt)) res.push_back(tok.decode(o));
  return res;
}

std::vector<std::string> translate_lines(const LoadedRun& run, const std::vector<std::string>& lines,
                                         const DecodeOptions& opt, std::vector<CutLine>* cut) {
  return translate_texts(*run.model, *run.tok, lines, opt, cut);
}

// Corpus BLEU and chrF of the first n pairs of c, translated with `beam`.
static std::pair<double, double> bleu_chrf(const Transformer& model, const Tokenizer& tok, const ParallelCorpus& c,
                                           int n, int beam, std::vector<std::string>* hyps_out = nullptr) {
  const size_t k = std::min<size_t>(size_t(n), c.size());
  std::vector<std::string> src(c.src.begin(), c.src.begin() + int64_t(k)), ref(c.tgt.begin(), c.tgt.begin() + int64_t(k));
  DecodeOptions opt;
  opt.beam = beam;
  std::vector<std::string> hyps = translate_texts(model, tok, src, opt);
  if (hyps_out) *hyps_out = hyps;
  return {corpus_bleu(hyps, ref).score, corpus_chrf(hyps, ref)};
}

// ---- learning dynamics -----------------------------------------------------------------

struct DynRow {
  int64_t step;
  std::string site, metric;
  double value;
};

// Attention entropy (nats) and diagonal mass per site, on one evaluation batch.
static void attention_stats(const Transformer& model, const Batch& x, int64_t step, std::vector<DynRow>& rows) {
  NoGradScope ng;
  model.loss(x, Context{});
  for (auto& [name, m] : model.sites()) {
    const Tensor& P = m->last_probs->value;  // (B,H,Tq,Tk)
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

static void grad_norm_rows(const Transformer& model, int64_t step, std::vector<DynRow>& rows) {
  for (auto& [name, m] : model.sites()) {
    if (m->wq.weight->grad.defined()) rows.push_back({step, name, "grad_wq", l2_norm(m->wq.weight->grad)});
    if (m->wk.weight && m->wk.weight->grad.defined()) rows.push_back({step, name, "grad_wk", l2_norm(m->wk.weight->grad)});
  }
}

// ---- checkpoints -----------------------------------------------------------------------
// checkpoints/step-N/{model,state}.safetensors + state.json, then last.json points at it:
// the pointer is replaced atomically only after the whole directory is on disk.

struct TrainState {
  int64_t step = 0;
  Batcher::Position pos;
  std::array<uint32_t, 4> rng{};
  double best_valid = std::numeric_limits<double>::infinity();
  double train_seconds = 0, wall_seconds = 0;
  int64_t tokens = 0;
};

static void save_checkpoint(const std::string& run, const Transformer& model, const Adam& opt, const TrainState& st) {
  const std::string rel = fmt::format("checkpoints/step-{:07d}", st.step);
  const std::string dir = run + "/" + rel;
  fs::create_directories(dir);
  save_model(model, dir + "/model.safetensors", {{"step", std::to_string(st.step)}});
  std::vector<std::pair<std::string, Tensor>> moments;
  for (size_t i = 0; i < opt.params.size(); i++) {
    moments.push_back({"m/" + opt.params[i]->name, opt.m[i]});
    moments.push_back({"v/" + opt.params[i]->name, opt.v[i]});
  }
  save_safetensors(dir + "/state.safetensors", moments, {{"step", std::to_string(st.step)}});
  json s = {{"step", st.step},        {"adam_t", opt.t},         {"epoch", st.pos.epoch},
            {"index", st.pos.index},  {"rng", st.rng},           {"best_valid", st.best_valid},
            {"train_seconds", st.train_seconds}, {"wall_seconds", st.wall_seconds}, {"tokens", st.tokens}};
  write_file_atomic(dir + "/state.json", s.dump(2));
  const std::string prev = fs::exists(run + "/last.json") ? read_json(run + "/last.json").value("dir", "") : "";
  write_file_atomic(run + "/last.json", json{{"dir", rel}, {"step", st.step}}.dump());
  if (!prev.empty() && prev != rel) fs::remove_all(run + "/" + prev);
}

static TrainState load_checkpoint(const std::string& run, Transformer& model, Adam& opt) {
  const std::string dir =
      run + "/" + with_json_file(run + "/last.json", [](const json& j) { return j.at("dir").get<std::string>(); });
  load_model_weights(model, dir + "/model.safetensors");
  SafetensorsFile f = load_safetensors(dir + "/state.safetensors");
  for (size_t i = 0; i < opt.params.size(); i++) {
    const Tensor* m = f.find("m/" + opt.params[i]->name);
    const Tensor* v = f.find("v/" + opt.params[i]->name);
    if (!m || !v || m->shape() != opt.m[i].shape() || v->shape() != opt.v[i].shape())
      throw std::runtime_error(dir + "/state.safetensors: optimizer state does not fit parameter " + opt.params[i]->name);
    opt.m[i] = m->clone();
    opt.v[i] = v->clone();
  }
  TrainState st;
  with_json_file(dir + "/state.json", [&](const json& s) {
    st.step = s.at("step");
    opt.t = s.at("adam_t");
    st.pos.epoch = s.at("epoch");
    st.pos.index = s.at("index");
    st.rng = s.at("rng").get<std::array<uint32_t, 4>>();
    st.best_valid = s.at("best_valid").is_null() ? std::numeric_limits<double>::infinity() : s.at("best_valid").get<double>();
    st.train_seconds = s.at("train_seconds");
    st.wall_seconds = s.at("wall_seconds");
    st.tokens = s.at("tokens");
  });
  return st;
}

// Keeps only the CSV rows whose first field (the step) is <= step: a resumed run rewrites
// what the interrupted one logged after its last checkpoint.
static void truncate_csv(const std::string& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, out;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      out += line + "\n";
      header = false;
      continue;
    }
    if (line.empty()) continue;
    if (std::stoll(line.substr(0, line.find(','))) <= step) out += line + "\n";
  }
  write_file_atomic(path, out);
}

static void check_writable_dir(const std::string& dir, const char* flag) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw std::runtime_error(fmt::format("{} {}: cannot create directory: {}", flag, dir, ec.message()));
  if (::access(dir.c_str(), W_OK) != 0) throw std::runtime_error(fmt::format("{} {}: directory is not writable", flag, dir));
}

static std::string fmt_duration(double s) {
  if (s < 0 || !std::isfinite(s)) return "?";
  const int t = int(s);
  return t >= 3600 ? fmt::format("{}h{:02d}m", t / 3600, (t / 60) % 60) : fmt::format("{}m{:02d}s", t / 60, t % 60);
}

// ---- the loop --------------------------------------------------------------------------

int run_training(TrainConfig cfg) {
  const std::string run = cfg.out;
  // --resume on a directory with no run starts a new one, so that job files can always say --resume.
  if (cfg.resume && !fs::exists(run + "/config.json")) {
    if (!cfg.quiet) fmt::print("--resume {}: no run there yet, starting a new one\n", run);
    cfg.resume = false;
  }
  const bool resuming = cfg.resume && fs::exists(run + "/last.json");
  if (cfg.resume) {  // the run's own configuration wins; only the budget may be extended
    TrainConfig saved = with_json_file(run + "/config.json", TrainConfig::from_json);
    if (cfg.steps != TrainConfig{}.steps) saved.steps = cfg.steps;  // an explicit --steps sets the new budget
    saved.out = run;
    saved.resume = true;
    saved.quiet = cfg.quiet;
    if (cfg.threads > 0) saved.threads = cfg.threads;
    cfg = saved;
  }
  cfg.validate();
  check_writable_dir(run, "--out");
  set_threads(cfg.threads);
  auto t_start = Clock::now();

  Data data;
  data.text = load_text(cfg);
  auto tok = make_tokenizer(cfg, data.text, run);
  cfg.model.vocab = tok->vocab_size();
  if (!cfg.resume) {
    cfg.model.apply_preset(cfg.variant);
    if (cfg.match_params) {
      ModelConfig base = cfg.model;
      base.apply_preset("qk");
      std::string how = match_params(cfg.model, count_params(base), cfg.match_widen);
      if (!cfg.quiet) fmt::print("match-params: {}\n", how);
    }
  }
  cfg.model.validate();
  data.train = encode_split(data.text.train, *tok, cfg.model.max_len, &data.skipped_long);
  data.valid = encode_split(data.text.valid, *tok, cfg.model.max_len, &data.skipped_long);
  data.test = encode_split(data.text.test, *tok, cfg.model.max_len, &data.skipped_long);
  if (data.train.empty() || data.valid.empty()) throw std::runtime_error(data.text.dir + ": no usable train/valid pairs");
  if (!cfg.resume) write_file_atomic(run + "/config.json", cfg.to_json().dump(2));

  Transformer model(cfg.model, cfg.seed);
  AdamConfig ac;
  ac.lr = cfg.lr;
  ac.weight_decay = cfg.optimizer == "adamw" ? cfg.weight_decay : 0.f;
  if (cfg.optimizer != "adam" && cfg.optimizer != "adamw")
    throw std::invalid_argument("--optimizer: expected adam or adamw, got '" + cfg.optimizer + "'");
  Adam opt(model.params.params, ac);
  Schedule sched{cfg.schedule, cfg.lr, cfg.warmup, int(cfg.steps), cfg.lr * 0.02f};
  schedule_lr(sched, 1);  // validates the schedule name
  Batcher batcher(data.train, cfg.batch_tokens, cfg.seed);
  Rng drop_rng(cfg.seed + 17);
  TrainState st;
  if (resuming) {
    st = load_checkpoint(run, model, opt);
    try {
      batcher.restore(st.pos);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(run + ": the last checkpoint's data position does not fit: " + std::string(e.what()));
    }
    drop_rng.state = st.rng;
    truncate_csv(run + "/metrics.csv", st.step);
    truncate_csv(run + "/dynamics.csv", st.step);
    if (!cfg.quiet) fmt::print("resumed {} at step {}\n", run, st.step);
  }
  if (!cfg.quiet) {
    fmt::print("attnlab train: {} | corpus {} | train {} valid {} test {} pairs ({} skipped empty, {} too long)\n", run,
               data.text.dir, data.train.size(), data.valid.size(), data.test.size(),
               data.text.train.skipped_empty + data.text.valid.skipped_empty + data.text.test.skipped_empty,
               data.skipped_long);
    fmt::print("model {} (enc self {}, dec self {}, cross {}): d_model {} heads {} layers {}+{} d_ff {} vocab {} ({})\n",
               cfg.model.preset, cfg.model.enc_self.str(), cfg.model.dec_self.str(), cfg.model.cross.str(),
               cfg.model.d_model, cfg.model.heads, cfg.model.enc_layers, cfg.model.dec_layers, cfg.model.d_ff,
               cfg.model.vocab, tok->kind());
    fmt::print("parameters: total {} | embedding {} | encoder {} | decoder {}\n", model.params.count(),
               model.params.count("emb."), model.params.count("enc."), model.params.count("dec."));
  }

  const bool new_files = !fs::exists(run + "/metrics.csv");
  std::ofstream metrics(run + "/metrics.csv", std::ios::app);
  std::ofstream dynamics(run + "/dynamics.csv", std::ios::app);
  if (!metrics || !dynamics) throw std::runtime_error(run + "/metrics.csv: cannot open for writing");
  if (new_files) {
    metrics << "step,epoch,train_loss,lr,grad_norm,tokens_per_s,train_seconds,wall_seconds,valid_loss,valid_ppl,valid_bleu,valid_chrf\n";
    dynamics << "step,site,metric,value\n";
  }
  // A fixed evaluation batch for attention statistics.
  std::vector<const Example*> probe;
  for (size_t i = 0; i < std::min<size_t>(32, data.valid.size()); i++) probe.push_back(&data.valid[i]);
  const Batch probe_batch = make_batch(probe, cfg.model.pad_id, cfg.model.bos_id, cfg.model.eos_id);

  g_interrupted = false;
  auto prev_handler = std::signal(SIGINT, on_sigint);
  const bool tty = ::isatty(STDOUT_FILENO) && !cfg.quiet;
  const double wall_before = st.wall_seconds;
  double window_loss = 0, window_tokens = 0, window_seconds = 0;
  int window_n = 0;
  bool interrupted = false;

  auto evaluate = [&](int64_t step) {
    EvalResult r;
    r.loss = eval_loss(model, data.valid, cfg.batch_tokens);
    r.ppl = std::exp(r.loss);
    if (cfg.eval_sentences > 0) std::tie(r.bleu, r.chrf) = bleu_chrf(model, *tok, data.text.valid, cfg.eval_sentences, 1);
    std::vector<DynRow> rows;
    attention_stats(model, probe_batch, step, rows);
    for (auto& d : rows) dynamics << fmt::format("{},{},{},{:.6g}\n", d.step, d.site, d.metric, d.value);
    dynamics.flush();
    return r;
  };

  while (st.step < cfg.steps) {
    if (cfg.time_budget > 0 && st.train_seconds >= cfg.time_budget) break;
    if (g_interrupted) {
      interrupted = true;
      break;
    }
    auto t0 = Clock::now();
    double loss_sum = 0;
    int64_t toks = 0;
    model.params.zero_grad();
    for (int a = 0; a < cfg.accum; a++) {
      Batch x = batcher.next();
      Tape tape;
      tape.keep_grads = cfg.dump_tape;  // free intermediate gradients as the reverse walk passes them
      TapeScope scope(tape);
      Context ctx{true, &drop_rng};
      Var loss = model.loss(x, ctx);
      // Average over accumulation steps: each micro-batch contributes 1/accum of the gradient.
      Var scaled = cfg.accum > 1 ? scale(loss, 1.f / float(cfg.accum), "loss/accum") : loss;
      if (st.step == 0 && a == 0 && cfg.dump_tape) fmt::print("{}", tape.dump());
      tape.backward(scaled);
      if (st.step == 0 && a == 0 && cfg.dump_tape) fmt::print("after backward:\n{}", tape.dump());
      if (st.step == 0 && a == 0 && !cfg.dot.empty()) write_file_atomic(cfg.dot, tape.to_dot());
      loss_sum += loss->value.item();
      toks += x.tgt_tokens;
    }
    st.step++;
    const double gnorm = clip_grad_norm(model.params.params, cfg.clip);
    if (!std::isfinite(gnorm))
      throw std::runtime_error(fmt::format("step {}: gradient norm is {} — training diverged (try a lower --lr)", st.step, gnorm));
    const bool log_now = st.step % cfg.log_every == 0 || st.step == cfg.steps;
    std::vector<DynRow> grows;
    if (log_now) grad_norm_rows(model, st.step, grows);
    const float lr = schedule_lr(sched, st.step);
    opt.step(lr);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    st.train_seconds += dt;
    st.tokens += toks;
    window_loss += loss_sum / cfg.accum;
    window_tokens += double(toks);
    window_seconds += dt;
    window_n++;

    const bool eval_now = st.step % cfg.eval_every == 0 || st.step == cfg.steps ||
                          (cfg.time_budget > 0 && st.train_seconds >= cfg.time_budget);
    if (log_now || eval_now) {
      st.wall_seconds = wall_before + std::chrono::duration<double>(Clock::now() - t_start).count();
      const double tps = window_tokens / std::max(window_seconds, 1e-9);
      const double train_loss = window_loss / window_n;
      std::string evalcols = ",,,";
      if (eval_now) {
        EvalResult r = evaluate(st.step);
        evalcols = fmt::format("{:.5f},{:.4f},{},{}", r.loss, r.ppl, r.bleu >= 0 ? fmt::format("{:.2f}", r.bleu) : "",
                               r.chrf >= 0 ? fmt::format("{:.2f}", r.chrf) : "");
        if (r.loss < st.best_valid) {
          st.best_valid = r.loss;
          save_model(model, run + "/model.best.safetensors", {{"step", std::to_string(st.step)}});
        }
        if (!cfg.quiet)
          fmt::print("{}step {} | valid loss {:.4f} ppl {:.2f} bleu {:.2f} chrf {:.2f}\n", tty ? "\n" : "", st.step, r.loss,
                     r.ppl, r.bleu, r.chrf);
      }
      for (auto& d : grows) dynamics << fmt::format("{},{},{},{:.6g}\n", d.step, d.site, d.metric, d.value);
      metrics << fmt::format("{},{},{:.5f},{:.6g},{:.4f},{:.1f},{:.2f},{:.2f},{}\n", st.step, batcher.position().epoch,
                             train_loss, lr, gnorm, tps, st.train_seconds, st.wall_seconds, evalcols);
      metrics.flush();
      dynamics.flush();
      if (eval_now) {
        st.pos = batcher.position();
        st.rng = drop_rng.state;
        save_checkpoint(run, model, opt, st);
      }
      const double remain_steps = double(cfg.steps - st.step) * (st.train_seconds / double(st.step));
      const double remain = cfg.time_budget > 0 ? std::min(remain_steps, cfg.time_budget - st.train_seconds) : remain_steps;
      if (tty)
        fmt::print("\rstep {}/{} | loss {:.4f} | {:.0f} tok/s | ETA {}   ", st.step, cfg.steps, train_loss, tps, fmt_duration(remain));
      else if (!cfg.quiet && log_now)
        fmt::print("step {}/{} loss {:.4f} lr {:.3g} gnorm {:.3f} {:.0f} tok/s ETA {}\n", st.step, cfg.steps, train_loss, lr,
                   gnorm, tps, fmt_duration(remain));
      std::fflush(stdout);
      window_loss = window_tokens = window_seconds = 0;
      window_n = 0;
    }
  }
  std::signal(SIGINT, prev_handler);
  st.wall_seconds = wall_before + std::chrono::duration<double>(Clock::now() - t_start).count();
  st.pos = batcher.position();
  st.rng = drop_rng.state;
  if (tty) fmt::print("\n");
  if (interrupted) {
    save_checkpoint(run, model, opt, st);
    fmt::print(stderr, "interrupted at step {}: checkpoint saved; continue with: attnlab train --resume --out {}\n", st.step, run);
    return 130;
  }
  save_checkpoint(run, model, opt, st);
  if (!fs::exists(run + "/model.best.safetensors")) save_model(model, run + "/model.best.safetensors");

  // Final evaluation of the best weights on the test set.
  load_model_weights(model, run + "/model.best.safetensors");
  const double valid_loss = eval_loss(model, data.valid, cfg.batch_tokens);
  const int n_test = cfg.test_sentences > 0 ? cfg.test_sentences : int(data.text.test.size());
  std::vector<std::string> hyps;
  auto t_dec = Clock::now();
  auto [bleu, chrf] = bleu_chrf(model, *tok, data.text.test, n_test, cfg.beam, &hyps);
  const double dec_seconds = std::chrono::duration<double>(Clock::now() - t_dec).count();
  std::string hyp_text;
  for (auto& h : hyps) hyp_text += h + "\n";
  write_file_atomic(run + "/test.hyp", hyp_text);
  json res = {{"variant", cfg.variant},
              {"preset", cfg.model.preset},
              {"seed", cfg.seed},
              {"params", model.params.count()},
              {"steps", st.step},
              {"train_seconds", st.train_seconds},
              {"wall_seconds", st.wall_seconds},
              {"tokens_per_s", st.tokens / std::max(st.train_seconds, 1e-9)},
              {"valid_loss", valid_loss},
              {"valid_ppl", std::exp(valid_loss)},
              {"test_bleu", bleu},
              {"test_chrf", chrf},
              {"test_sentences", hyps.size()},
              {"beam", cfg.beam},
              {"decode_sentences_per_s", double(hyps.size()) / std::max(dec_seconds, 1e-9)},
              {"bleu_signature", bleu_signature()},
              {"chrf_signature", chrf_signature()},
              {"d_model", cfg.model.d_model},
              {"d_ff", cfg.model.d_ff},
              {"attnlab", attnlab_build()},         // which build and machine: times compare
              {"machine", machine_description()}};  // only between runs that share both
  write_file_atomic(run + "/results.json", res.dump(2));
  if (!cfg.quiet)
    fmt::print("done: {} steps in {} | best valid loss {:.4f} (ppl {:.2f}) | test BLEU {:.2f} chrF {:.2f} (beam {}, {} sentences)\n",
               st.step, fmt_duration(st.wall_seconds), valid_loss, std::exp(valid_loss), bleu, chrf, cfg.beam, hyps.size());
  return 0;
}

LoadedRun load_run(const std::string& dir, const std::string& which) {
  if (!fs::exists(dir + "/config.json")) throw std::runtime_error("--run " + dir + ": not a run directory (no config.json)");
  LoadedRun r;
  r.cfg = with_json_file(dir + "/config.json", [](const json& j) {
    TrainConfig c = TrainConfig::from_json(j);
    c.model.validate();
    return c;
  });
  r.tok = Tokenizer::load(dir + "/tokenizer");
  if (r.tok->vocab_size() != r.cfg.model.vocab)
    throw std::runtime_error(fmt::format("{}/tokenizer: vocabulary of {} does not match the model's {}", dir,
                                         r.tok->vocab_size(), r.cfg.model.vocab));
  r.model = std::make_unique<Transformer>(r.cfg.model, r.cfg.seed);
  std::string path = dir + "/model." + which + ".safetensors";
  if (which == "last")
    path = dir + "/" + with_json_file(dir + "/last.json", [](const json& j) { return j.at("dir").get<std::string>(); }) +
           "/model.safetensors";
  load_model_weights(*r.model, path);
  return r;
}

}  // namespace attn
