// train/trainer.cpp — data preparation, the training step, logging, evaluation, resume, and
// the final test-set evaluation.
#include <attnlab/train/trainer.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include <attnlab/core/fileio.h>
#include <attnlab/core/kernels.h>
#include <attnlab/core/json_file.h>
#include <attnlab/core/runtime.h>
#include <attnlab/core/threads.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/core/words.h>
#include <attnlab/data/metrics.h>
#include <attnlab/data/synthetic.h>
#include <attnlab/models/checkpoint.h>
#include <attnlab/train/build_info.h>
#include <attnlab/train/evaluate.h>

namespace attn {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// ---- data ------------------------------------------------------------------------------

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

// A model of one stack (--arch lm, mlm) reads sentences, not pairs: the source side, the target
// side or both, each sentence once — a decoder's as its targets (an lm predicts it after bos), an
// encoder's as its input (an mlm fills in its masked tokens).
static std::vector<Example> encode_sentences(const ParallelCorpus& c, const Tokenizer& tok, const TrainConfig& cfg,
                                             int64_t* skipped) {
  std::vector<const std::vector<std::string>*> sides;
  if (cfg.lm_text != "tgt") sides.push_back(&c.src);
  if (cfg.lm_text != "src") sides.push_back(&c.tgt);
  const bool decoder = traits(cfg.model.arch).has_decoder;  // reads bos first
  std::vector<Example> out;
  for (auto* side : sides)
    for (const std::string& line : *side) {
      std::vector<int32_t> ids = tok.encode(line);
      if (ids.empty() || int(ids.size()) + (decoder ? 1 : 0) > cfg.model.max_len) {
        (*skipped)++;
        continue;
      }
      Example e;
      (decoder ? e.tgt : e.src) = std::move(ids);
      out.push_back(std::move(e));
    }
  return out;
}

std::vector<Example> encode_examples(const ParallelCorpus& c, const Tokenizer& tok, const TrainConfig& cfg, int64_t* skipped) {
  return traits(cfg.model.arch).translates() ? encode_split(c, tok, cfg.model.max_len, skipped)
                                             : encode_sentences(c, tok, cfg, skipped);
}

CorpusSplits load_text(const TrainConfig& cfg) {
  if (!cfg.task.empty()) {
    CorpusSplits s;
    s.dir = "synthetic:" + cfg.task;
    s.train = synthetic_task(cfg.task, cfg.task_train, cfg.seed * 7919 + 0);
    s.valid = synthetic_task(cfg.task, cfg.task_eval, cfg.seed * 7919 + 1);
    s.test = synthetic_task(cfg.task, cfg.task_eval, cfg.seed * 7919 + 2);
    return s;
  }
  const std::string dir = cfg.corpus.empty() ? default_corpus_dir() : cfg.corpus;
  if (!cfg.corpus.empty() && !fs::is_directory(dir)) throw std::runtime_error("--corpus " + dir + ": no such directory");
  const bool synthetic_dir = fs::exists(dir + "/train.src");
  CorpusSplits c = synthetic_dir ? load_corpus_dir(dir, "src", "tgt") : load_corpus_dir(dir, cfg.src_lang, cfg.tgt_lang);
  require_usable(c.valid, dir, "valid");  // training evaluates on it; refused before a tokenizer is made
  return c;
}

void record_tokenizer_settings(const std::string& prefix, int vocab) {
  write_file_atomic(prefix + ".json", nlohmann::json{{"kind", "sentencepiece"}, {"vocab", vocab}}.dump(2) + "\n");
}

int recorded_tokenizer_vocab(const std::string& prefix) {
  if (!fs::exists(prefix + ".json") || !fs::exists(prefix + ".model")) return 0;  // symbols, or made before settings were recorded
  return with_json_file(prefix + ".json", [](const json& j) { return j.at("vocab").get<int>(); });
}

void check_tokenizer_settings(const std::string& prefix, int vocab, bool shared) {
  const int was = recorded_tokenizer_vocab(prefix);
  if (was == 0 || was == vocab) return;
  // A shared tokenizer (--tokenizer, a grid's) serves other runs: never suggest removing it.
  if (shared)
    throw UsageError(fmt::format("--vocab {}: the tokenizer {}.model was trained with vocab {}; give --vocab {}, or leave "
                                 "--vocab out to take the tokenizer's", vocab, prefix, was, was));
  throw UsageError(fmt::format("--vocab {}: {}.model was trained with vocab {}; give --vocab {}, or remove {}.* "
                               "to train it again", vocab, prefix, was, was, prefix));
}

static std::unique_ptr<Tokenizer> make_tokenizer(const TrainConfig& cfg, const CorpusSplits& text, const RunDir& run,
                                                 const std::function<void(const std::string&)>& note) {
  const std::string prefix = run.file("tokenizer");
  const bool have_own = fs::exists(prefix + ".model") || fs::exists(prefix + ".symbols");
  if (!cfg.tokenizer.empty()) {  // shared tokenizer: copy it into the run so the run stands alone
    const bool shared = fs::exists(cfg.tokenizer + ".model") || fs::exists(cfg.tokenizer + ".symbols");
    if (!shared && !have_own)  // (a resumed run keeps using its own copy)
      throw std::runtime_error(fmt::format("--tokenizer {0}: no tokenizer there (expected {0}.model or {0}.symbols)", cfg.tokenizer));
    if (!have_own) {
      check_tokenizer_settings(cfg.tokenizer, cfg.vocab, true);
      Tokenizer::load(cfg.tokenizer);  // a damaged shared tokenizer is named as itself, before it is copied
      for (const char* ext : {".model", ".vocab", ".symbols", ".json"})  // whole or not at all (a full disk leaves no torn copy)
        if (fs::exists(cfg.tokenizer + ext)) write_file_atomic(prefix + ext, read_file(cfg.tokenizer + ext));
    }
    return Tokenizer::load(prefix);
  }
  if (have_own) {
    if (!cfg.resume) check_tokenizer_settings(prefix, cfg.vocab, false);  // left by an earlier attempt with other settings?
    return Tokenizer::load(prefix);
  }
  std::vector<std::string> lines = text.train.src;
  lines.insert(lines.end(), text.train.tgt.begin(), text.train.tgt.end());
  const bool symbolic = !cfg.task.empty() || text.dir.rfind("synthetic:", 0) == 0 || fs::exists(text.dir + "/train.src");
  if (symbolic) return Tokenizer::build_symbols(lines, prefix);
  note(fmt::format("training a SentencePiece tokenizer (vocab {}) on the {} training sentences of both languages...",
                   cfg.vocab, lines.size()));
  auto tok = Tokenizer::train_sentencepiece(lines, cfg.vocab, prefix, uint32_t(cfg.seed));
  record_tokenizer_settings(prefix, cfg.vocab);
  return tok;
}

std::string format_duration(double s) {
  if (s < 0 || !std::isfinite(s)) return "?";
  const int t = int(s);
  return t >= 3600 ? fmt::format("{}h{:02d}m", t / 3600, (t / 60) % 60) : fmt::format("{}m{:02d}s", t / 60, t % 60);
}

// ---- setting up ------------------------------------------------------------------------

Trainer::Trainer(TrainConfig cfg, ProgressFn progress) : cfg_(std::move(cfg)), progress_(std::move(progress)), dir_(cfg_.out) {
  // --resume on a directory with no run starts a new one, so that job files can always say --resume.
  if (cfg_.resume && !dir_.has_config()) {
    if (!cfg_.quiet) note(fmt::format("--resume {}: no run there yet, starting a new one", dir_.path()));
    cfg_.resume = false;
  }
  resuming_ = cfg_.resume && dir_.has_checkpoint();
  if (cfg_.resume) {  // the run's own configuration wins; only the budget may be extended
    TrainConfig saved = dir_.read_config();
    try {  // a config.json edited by hand is named, as a bad file
      saved.validate();
    } catch (const UsageError& e) {
      throw std::runtime_error(dir_.file("config.json") + ": " + e.what());
    }
    if (cfg_.steps_given) saved.steps = cfg_.steps;  // a --steps given with --resume is the new budget
    saved.out = dir_.path();
    saved.resume = true;
    saved.quiet = cfg_.quiet;
    if (cfg_.threads > 0) saved.threads = cfg_.threads;
    cfg_ = saved;
  }
  cfg_.validate();
  if (!cfg_.resume) {  // checks that need no data, before the corpus is read and a tokenizer trained
    ModelConfig probe = cfg_.model;
    probe.apply_preset(cfg_.variant);
    probe.validate();
  }
  // One writer: everything above only read --out; from here on this process alone writes there.
  const bool created = dir_.create("--out");
  lock_ = WriterLock(dir_.path(), "--out");
  // A second run there would overwrite the first's files and append to its logs. Checked under the
  // lock, so that a run still being written is named by its writer's pid instead.
  if (!cfg_.resume && dir_.has_config())
    throw std::runtime_error(fmt::format("--out {}: holds a run already (config.json); give --resume to continue it, or "
                                         "another --out", dir_.path()));
  SetupUndo undo(cfg_.resume ? "" : cfg_.out, created);  // a new run that fails its setup leaves --out as it found it
  if (const int n = remove_stale_temporaries(dir_.path()); n > 0 && !cfg_.quiet)
    note(fmt::format("removed {} left by a killed run in {}", counted(n, "temporary file"), dir_.path()));
  if (cfg_.resume) dir_.remove_stale_checkpoints();
  set_threads(cfg_.threads);
  t_start_ = Clock::now();
  prepare_data();
  build_model();
  if (resuming_) resume();
  else if (cfg_.resume) dir_.clear_logs();  // stopped before its first checkpoint: it starts again from step 0
  // This process's stretch of the run: a run resumed on another machine or build says so (results.json).
  st_.segments.push_back({st_.step, attnlab_build(), machine_description(), blas_kernels(), vector_isa(), num_threads()});
  if (!cfg_.quiet) announce();
  dir_.open_logs();
  std::vector<const Example*> probe;
  for (size_t i = 0; i < std::min<size_t>(32, valid_.size()); i++) probe.push_back(&valid_[i]);
  probe_batch_ = make_batch(probe, cfg_.model.pad_id, cfg_.model.bos_id, cfg_.model.eos_id);
  wall_before_ = st_.wall_seconds;
  undo.keep();
}

// The corpus (or synthetic task), the tokenizer, the model's settings that follow from them
// (vocabulary, the variant, --match-params), and the encoded splits. Writes config.json of a new run.
void Trainer::prepare_data() {
  // --tokenizer without --vocab: the tokenizer's own size (the default 8000 would only be refused)
  if (!cfg_.resume && !cfg_.vocab_given && !cfg_.tokenizer.empty())
    if (const int v = recorded_tokenizer_vocab(cfg_.tokenizer)) cfg_.vocab = v;
  text_ = load_text(cfg_);
  tok_ = make_tokenizer(cfg_, text_, dir_, [this](const std::string& s) {
    if (!cfg_.quiet) note(s);
  });
  cfg_.model.vocab = tok_->vocab_size();
  if (!cfg_.resume) {
    cfg_.model.apply_preset(cfg_.variant);
    if (cfg_.match_params) {
      ModelConfig base = cfg_.model;
      base.apply_preset("qk");
      std::string how = match_params(cfg_.model, count_params(base), cfg_.match_widen);
      if (!cfg_.quiet) note("match-params: " + how);
    }
  }
  cfg_.model.validate();
  auto encode = [&](const ParallelCorpus& c) { return encode_examples(c, *tok_, cfg_, &skipped_long_); };
  train_ = encode(text_.train);
  valid_ = encode(text_.valid);
  test_ = encode(text_.test);
  if (train_.empty() || valid_.empty())
    throw std::runtime_error(fmt::format("{}: no usable train/valid pairs (train {} of {}, valid {} of {} kept; {} longer than "
                                         "--max-len {} in tokens)", text_.dir, train_.size(), text_.train.size(), valid_.size(),
                                         text_.valid.size(), counted(skipped_long_, "pair"), cfg_.model.max_len));
  if (!cfg_.resume) dir_.write_config(cfg_);
}

void Trainer::build_model() {
  model_ = make_model(cfg_.model, cfg_.seed);
  AdamConfig ac;
  ac.lr = cfg_.lr;
  ac.weight_decay = cfg_.optimizer == "adamw" ? cfg_.weight_decay : 0.f;
  opt_ = std::make_unique<Adam>(model_->params.params, ac);
  sched_ = Schedule{cfg_.schedule, cfg_.lr, cfg_.warmup, int(cfg_.steps), cfg_.lr * 0.02f};
  schedule_lr(sched_, 1);  // validates the schedule name
  batcher_ = std::make_unique<Batcher>(train_, cfg_.batch_tokens, cfg_.seed);
  drop_rng_ = Rng(cfg_.seed + 17);
}

void Trainer::resume() {
  st_ = dir_.load_checkpoint(*model_, *opt_);
  try {
    batcher_->restore(st_.pos);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(dir_.path() + ": the last checkpoint's data position does not fit: " + std::string(e.what()));
  }
  drop_rng_.state = st_.rng;
  dir_.truncate_logs(st_.step);
  if (!cfg_.quiet) note(fmt::format("resumed {} at step {}", dir_.path(), st_.step));
}

void Trainer::announce() const {
  const ModelConfig& m = cfg_.model;
  const ArchTraits& a = model_->arch();
  note(fmt::format("attnlab train: {} | corpus {} | train {} valid {} test {} {} ({} skipped empty, {} too long)",
                   dir_.path(), text_.dir, train_.size(), valid_.size(), test_.size(), a.translates() ? "pairs" : "sentences",
                   text_.train.skipped_empty + text_.valid.skipped_empty + text_.test.skipped_empty, skipped_long_));
  if (a.translates()) {
    note(fmt::format("model {} (enc self {}, dec self {}, cross {}): d_model {} heads {} layers {}+{} d_ff {} vocab {} ({})",
                     m.preset, m.enc_self.str(), m.dec_self.str(), m.cross.str(), m.d_model, m.heads, m.enc_layers,
                     m.dec_layers, m.d_ff, m.vocab, tok_->kind()));
    note(fmt::format("parameters: total {} | embedding {} | encoder {} | decoder {}", model_->params.count(),
                     model_->params.count("emb."), model_->params.count("enc."), model_->params.count("dec.")));
  } else {
    note(fmt::format("model {} {} ({} self-attention {}): d_model {} heads {} layers {} d_ff {} vocab {} ({}); text: {} side{}",
                     a.name, m.preset, a.has_decoder ? "causal" : "bidirectional", (a.has_decoder ? m.dec_self : m.enc_self).str(),
                     m.d_model, m.heads, m.layers(), m.d_ff, m.vocab, tok_->kind(), cfg_.lm_text,
                     cfg_.lm_text == "both" ? "s" : ""));
    note(fmt::format("parameters: total {} | embedding {} | blocks {}", model_->params.count(), model_->params.count("emb."),
                     model_->params.count() - model_->params.count("emb.")));
  }
}

void Trainer::note(const std::string& text) const {
  if (!progress_) return;
  Progress p;
  p.text = text;
  progress_(p);
}

double Trainer::wall_now() const { return wall_before_ + std::chrono::duration<double>(Clock::now() - t_start_).count(); }

// ---- training --------------------------------------------------------------------------

bool Trainer::done() const {
  return st_.step >= cfg_.steps || (cfg_.time_budget > 0 && st_.train_seconds >= cfg_.time_budget) ||
         plateaued();
}

bool Trainer::plateaued() const { return cfg_.until_plateau > 0 && st_.plateau_stale >= cfg_.until_plateau; }

// --until-plateau's count, at each evaluation: an improvement is a fall of more than the delta
// below the loss of the last improvement (so that many small falls add up to one).
void Trainer::count_plateau(double valid_loss) {
  if (cfg_.until_plateau <= 0) return;
  if (valid_loss < st_.plateau_best - cfg_.plateau_delta) {
    st_.plateau_best = valid_loss;
    st_.plateau_stale = 0;
  } else {
    st_.plateau_stale++;
  }
}

void Trainer::step() {
  auto t0 = Clock::now();
  double loss_sum = 0;
  int64_t toks = 0;
  model_->params.zero_grad();
  for (int a = 0; a < cfg_.accum; a++) {
    Batch x = batcher_->next();
    Tape tape;
    tape.keep_grads = cfg_.dump_tape;  // free intermediate gradients as the reverse walk passes them
    TapeScope scope(tape);
    Context ctx{true, &drop_rng_};
    Var loss = model_->loss(x, ctx);
    // Average over accumulation steps: each micro-batch contributes 1/accum of the gradient.
    Var scaled = cfg_.accum > 1 ? scale(loss, 1.f / float(cfg_.accum), "loss/accum") : loss;
    const bool first = st_.step == 0 && a == 0;
    if (first && cfg_.dump_tape) note(tape.dump());
    loss_sum += loss->value.item();  // before backward, which lets go of every value but its root's
    tape.backward(scaled);
    if (first && cfg_.dump_tape) note("after backward:\n" + tape.dump());
    if (first && !cfg_.dot.empty()) write_file_atomic(cfg_.dot, tape.to_dot());
    toks += model_->predicted_tokens(x);
  }
  st_.step++;
  const GradNorm clip = grad_norm(model_->params.params, cfg_.clip);
  const double gnorm = clip.norm;
  if (!std::isfinite(gnorm)) {
    // Said in a file too, for a grid that tunes rates (train/tune.h): a diverged run is an
    // outcome there (it ranks worst), not a run to start again.
    write_file_atomic(dir_.file("diverged.json"), json{{"step", st_.step}, {"grad_norm", fmt::format("{}", gnorm)}}.dump() + "\n");
    throw std::runtime_error(fmt::format("step {}: gradient norm is {} — training diverged (try a lower --lr)", st_.step, gnorm));
  }
  const bool log_now = st_.step % cfg_.log_every == 0 || st_.step == cfg_.steps;
  std::vector<DynRow> grad_rows;
  float grad_scale = clip.scale;  // clipping, inside Adam's update
  if (log_now) {  // the log's gradient rows are the clipped gradients': scaled in place first
    if (grad_scale != 1.f) scale_grads(model_->params.params, grad_scale);
    grad_scale = 1.f;
    grad_norm_rows(*model_, st_.step, grad_rows);
  }
  const float lr = schedule_lr(sched_, st_.step);
  opt_->step(lr, grad_scale);
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  st_.train_seconds += dt;
  st_.tokens += toks;
  window_loss_ += loss_sum / cfg_.accum;
  window_tokens_ += double(toks);
  window_seconds_ += dt;
  window_n_++;
  const bool eval_now = st_.step % cfg_.eval_every == 0 || st_.step == cfg_.steps ||
                        (cfg_.time_budget > 0 && st_.train_seconds >= cfg_.time_budget);
  if (log_now || eval_now) log(window_loss_ / window_n_, lr, gnorm, log_now, eval_now, grad_rows);
}

// A metrics.csv row (with the evaluation's columns when one is due), the gradient-norm rows,
// a checkpoint after an evaluation, and the progress report; then a new window.
void Trainer::log(double train_loss, float lr, double gnorm, bool log_now, bool eval_now, const std::vector<DynRow>& grad_rows) {
  st_.wall_seconds = wall_now();
  const double tps = window_tokens_ / std::max(window_seconds_, 1e-9);
  MetricsRow row;
  row.step = st_.step;
  row.epoch = batcher_->position().epoch;
  row.train_loss = train_loss;
  row.lr = lr;
  row.grad_norm = gnorm;
  row.tokens_per_s = tps;
  row.train_seconds = st_.train_seconds;
  row.wall_seconds = st_.wall_seconds;
  if (eval_now) {
    EvalResult r = evaluate();
    row.valid_loss = r.loss;
    row.valid_ppl = r.ppl;
    if (r.bleu >= 0) row.valid_bleu = r.bleu;
    if (r.chrf >= 0) row.valid_chrf = r.chrf;
    if (r.loss < st_.best_valid) {
      st_.best_valid = r.loss;
      dir_.save_best(*model_, st_.step);
    }
    count_plateau(r.loss);
    if (progress_) {
      Progress p;
      p.kind = Progress::Kind::Eval;
      p.step = st_.step;
      p.steps = cfg_.steps;
      p.eval = r;
      progress_(p);
    }
  }
  dir_.log_dynamics(grad_rows);
  dir_.log_metrics(row);
  dir_.flush_logs();
  if (eval_now) checkpoint();
  if (progress_) {
    const double remain_steps = double(cfg_.steps - st_.step) * (st_.train_seconds / double(st_.step));
    Progress p;
    p.kind = Progress::Kind::Step;
    p.step = st_.step;
    p.steps = cfg_.steps;
    p.train_loss = train_loss;
    p.lr = lr;
    p.grad_norm = gnorm;
    p.tokens_per_s = tps;
    p.eta_seconds = cfg_.time_budget > 0 ? std::min(remain_steps, cfg_.time_budget - st_.train_seconds) : remain_steps;
    p.log_step = log_now;
    progress_(p);
  }
  window_loss_ = window_tokens_ = window_seconds_ = 0;
  window_n_ = 0;
}

EvalResult Trainer::evaluate() {
  EvalResult r;
  std::vector<DynRow> rows;
  if (const Transformer* translator = model_->translator()) {
    r.loss = eval_loss(*model_, valid_, cfg_.batch_tokens);
    if (cfg_.eval_sentences > 0) std::tie(r.bleu, r.chrf) = bleu_chrf(*translator, *tok_, text_.valid, cfg_.eval_sentences, 1);
  } else {  // an lm or mlm is measured by its loss and how often its top guess is right
    const SetScore s = eval_score(*model_, valid_, cfg_.batch_tokens);
    r.loss = s.loss;
    r.accuracy = s.accuracy;
    rows.push_back({st_.step, "model", "valid_accuracy", s.accuracy});
  }
  r.ppl = std::exp(r.loss);
  attention_stats(*model_, probe_batch_, st_.step, rows);
  dir_.log_dynamics(rows);
  dir_.flush_logs();
  return r;
}

void Trainer::stop() {
  st_.wall_seconds = wall_now();
  checkpoint();
}

void Trainer::checkpoint() {
  st_.pos = batcher_->position();
  st_.rng = drop_rng_.state;
  st_.plateau_on = cfg_.until_plateau > 0;
  dir_.save_checkpoint(*model_, *opt_, st_);
}

// ---- the end ---------------------------------------------------------------------------

json Trainer::finish() {
  st_.wall_seconds = wall_now();
  checkpoint();
  if (!fs::exists(dir_.file("model.best.safetensors"))) dir_.save_best(*model_);
  // Final evaluation of the best weights on the test set.
  load_model_weights(*model_, dir_.file("model.best.safetensors"));
  json res = {{"variant", cfg_.variant},
              {"preset", cfg_.model.preset},
              {"seed", cfg_.seed},
              {"params", model_->params.count()},
              {"steps", st_.step},
              {"train_seconds", st_.train_seconds},
              {"wall_seconds", st_.wall_seconds},
              {"tokens_per_s", st_.tokens / std::max(st_.train_seconds, 1e-9)}};
  if (cfg_.until_plateau > 0) res["plateaued"] = plateaued();  // false: it reached --steps first
  Progress p;
  p.kind = Progress::Kind::Done;
  p.step = p.steps = st_.step;
  if (const Transformer* translator = model_->translator()) {
    const double valid_loss = eval_loss(*model_, valid_, cfg_.batch_tokens);
    const int n_test = cfg_.test_sentences > 0 ? cfg_.test_sentences : int(text_.test.size());
    std::vector<std::string> hyps;
    // The test decoding takes a minute or more at the default size: say so, and how far it got
    // at each quarter (by count, so that the log of a run is the same on every machine).
    const size_t n_dec = std::min(size_t(n_test), text_.test.size());
    if (!cfg_.quiet) note(fmt::format("test: translating {} with beam {}", counted(int64_t(n_dec), "sentence"), cfg_.beam));
    size_t next_quarter = 1;
    auto on_progress = [&](size_t done, size_t total) {
      if (cfg_.quiet || done >= total || done * 4 < next_quarter * total) return;
      note(fmt::format("test: {} of {} translated", done, total));
      while (next_quarter * total <= done * 4) next_quarter++;
    };
    auto t_dec = Clock::now();
    auto [bleu, chrf] = bleu_chrf(*translator, *tok_, text_.test, n_test, cfg_.beam, &hyps, on_progress);
    const double dec_seconds = std::chrono::duration<double>(Clock::now() - t_dec).count();
    dir_.write_test_hyps(hyps);
    res.update(json{{"valid_loss", valid_loss},
                    {"valid_ppl", std::exp(valid_loss)},
                    {"test_bleu", bleu},
                    {"test_chrf", chrf},
                    {"test_sentences", hyps.size()},
                    {"beam", cfg_.beam},
                    {"decode_sentences_per_s", double(hyps.size()) / std::max(dec_seconds, 1e-9)},
                    {"bleu_signature", bleu_signature()},
                    {"chrf_signature", chrf_signature()}});
    p.eval = {valid_loss, std::exp(valid_loss), bleu, chrf};
    p.text = fmt::format("done: {} in {} | best valid loss {:.4f} (ppl {:.2f}) | test BLEU {:.2f} chrF {:.2f} (beam {}, {})",
                         counted(st_.step, "step"), format_duration(st_.wall_seconds), valid_loss, std::exp(valid_loss), bleu, chrf,
                         cfg_.beam, counted(int64_t(hyps.size()), "sentence"));
    // A model that has not learned yet translates most sentences to nothing; BLEU 0.00 alone
    // does not say why.
    const int64_t empty = std::count_if(hyps.begin(), hyps.end(), [](const std::string& h) {
      return h.find_first_not_of(" \t") == std::string::npos;
    });
    if (!hyps.empty() && 2 * empty > int64_t(hyps.size()))
      p.text += fmt::format("\nwarning: {} of {} test translations are empty: the model has not learned to translate yet "
                            "(train longer{})", empty, hyps.size(),
                            cfg_.warmup > cfg_.steps / 4 ? fmt::format(", or with a --warmup shorter than a quarter of the "
                                                                       "{} steps", cfg_.steps)
                                                         : "");
  } else {
    const SetScore v = eval_score(*model_, valid_, cfg_.batch_tokens), t = eval_score(*model_, test_, cfg_.batch_tokens);
    const char* what = model_->arch().task;
    res.update(json{{"arch", model_->arch().name},
                    {"valid_loss", v.loss},
                    {"valid_ppl", std::exp(v.loss)},
                    {"valid_accuracy", v.accuracy},
                    {"test_loss", t.loss},
                    {"test_ppl", std::exp(t.loss)},
                    {"test_accuracy", t.accuracy},
                    {"test_tokens", t.tokens}});
    p.eval.loss = v.loss;
    p.eval.ppl = std::exp(v.loss);
    p.eval.accuracy = v.accuracy;
    p.text = fmt::format("done: {} in {} | best valid {} loss {:.4f} (ppl {:.2f}, accuracy {:.1f}%) | test loss {:.4f} "
                         "(ppl {:.2f}, accuracy {:.1f}%, {})", counted(st_.step, "step"), format_duration(st_.wall_seconds),
                         what, v.loss, std::exp(v.loss), 100 * v.accuracy, t.loss, std::exp(t.loss), 100 * t.accuracy,
                         counted(t.tokens, "token"));
  }
  res.update(json{{"d_model", cfg_.model.d_model},
                  {"d_ff", cfg_.model.d_ff},
                  {"attnlab", attnlab_build()},         // which build and machine: times compare
                  {"machine", machine_description()},    // only between runs that share both
                  {"blas_kernels", blas_kernels()},      // and the kernels that ran: the last bits of
                  {"vector_isa", vector_isa()},          // a loss differ between kernel families
                  {"threads", num_threads()}});          // (docs/reliability.md)
  // Every stretch of the run, from its start and from each resume, with its build and machine.
  res["segments"] = json::array();
  for (size_t i = 0; i < st_.segments.size(); i++) {
    const Segment& g = st_.segments[i];
    const int64_t to = i + 1 < st_.segments.size() ? st_.segments[i + 1].from_step : st_.step;
    if (to == g.from_step && st_.segments.size() > 1) continue;  // resumed and stopped again before a step
    res["segments"].push_back({{"from_step", g.from_step},
                               {"to_step", to},
                               {"attnlab", g.attnlab}, {"machine", g.machine}, {"blas_kernels", g.blas_kernels},
                               {"vector_isa", g.vector_isa}, {"threads", g.threads}});
  }
  dir_.write_results(res);
  if (progress_) progress_(p);
  return res;
}

int run_training(TrainConfig cfg, ProgressFn progress, const std::atomic<bool>* stop, int64_t* step_reached) {
  Trainer t(std::move(cfg), std::move(progress));
  int code = 0;
  while (!t.done() && code == 0) {
    if (stop && *stop) {
      t.stop();
      code = 130;
    } else {
      t.step();
    }
  }
  if (code == 0) t.finish();
  if (step_reached) *step_reached = t.state().step;
  return code;
}

}  // namespace attn
