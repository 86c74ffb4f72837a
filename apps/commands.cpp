// apps/commands.cpp — train, translate, score, gradcheck and corpus (and internal-error-test, for tests).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <system_error>

#include "apps/commands.h"
#include "apps/config_file.h"
#include <attnlab/autograd/gradcheck.h>
#include <attnlab/autograd/ops.h>
#include <attnlab/core/fileio.h>
#include <attnlab/core/json_file.h>
#include <attnlab/core/threads.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/core/words.h>
#include <attnlab/data/corpus.h>
#include <attnlab/data/metrics.h>
#include <attnlab/data/synthetic.h>
#include <attnlab/data/utf8.h>
#include <attnlab/models/generate.h>
#include <attnlab/train/loaded_run.h>
#include <attnlab/train/trainer.h>

namespace attn {

int& exit_code() {
  static int code = 0;
  return code;
}

CLI::Validator whole_number(int64_t lo, int64_t hi) {
  const std::string what = hi == 2147483647 ? fmt::format("a whole number >= {}", lo)
                                            : fmt::format("a whole number from {} to {}", lo, hi);
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        int64_t v = 0;
        const char* end = s.data() + s.size();
        auto [p, ec] = std::from_chars(s.data(), end, v);
        if (ec != std::errc() || p != end || v < lo || v > hi) return fmt::format("expected {}, got '{}'", what, s);
        return "";
      },
      hi == 2147483647 ? fmt::format(">={}", lo) : fmt::format("{}..{}", lo, hi));
}

CLI::Validator real_number(double lo, bool lo_open, double hi, bool hi_open) {
  std::string range = fmt::format("{} {}", lo_open ? ">" : ">=", lo);  // shown in --help too
  if (hi < 1e300) range = fmt::format("in {}{}, {}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
  const std::string what = "a number " + range;
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        char* p = nullptr;
        const double v = s.empty() ? NAN : std::strtod(s.c_str(), &p);
        const bool ok = std::isfinite(v) && p == s.c_str() + s.size() && (lo_open ? v > lo : v >= lo) &&
                        (hi_open ? v < hi : v <= hi);
        return ok ? "" : fmt::format("expected {}, got '{}'", what, s);
      },
      range);
}

// Inputs read whole have a stated limit (docs/reliability.md): a config file of settings, and a
// file of sentences (score's --ref/--hyp; WMT's test sets are about 1 MiB).
constexpr int64_t kConfigMaxBytes = int64_t(1) << 20, kSentenceFileMaxBytes = int64_t(256) << 20;

// The arguments as typed, before any --config was expanded: a flag typed is refused where one
// from a config file is warned about (flags that do not apply to the architecture).
static std::vector<std::string>& typed_args() {
  static std::vector<std::string> args;
  return args;
}
static std::string& expanded_config() {  // the last --config file expanded
  static std::string file;
  return file;
}
static bool typed(const std::string& flag) {
  for (const std::string& a : typed_args())
    if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
  return false;
}

std::vector<std::string> expand_config_files(CLI::App& app, std::vector<std::string> args) {
  typed_args() = args;
  for (size_t i = 0; i < args.size(); i++) {
    std::string file;
    size_t span = 0;
    if (args[i] == "--config" && i + 1 < args.size()) file = args[i + 1], span = 2;
    else if (args[i].rfind("--config=", 0) == 0) file = args[i].substr(9), span = 1;
    if (span == 0) continue;
    // the subcommand this --config belongs to: the nearest earlier non-flag word naming one
    CLI::App* sub = nullptr;
    size_t at = 0;
    for (size_t k = 0; k < i; k++)
      if (args[k].rfind("-", 0) != 0)
        for (CLI::App* s : app.get_subcommands([](CLI::App*) { return true; }))
          if (s->get_name() == args[k]) sub = s, at = k;
    if (!sub) throw UsageError("--config " + file + ": put it after a subcommand (attnlab train --config FILE)");
    expanded_config() = file;
    std::vector<std::string> flags;
    for (const ConfigSetting& it : read_config_file(file, kConfigMaxBytes)) {
      const std::string& name = it.name;
      const std::string where = fmt::format("--config {}:{}", file, it.line);
      CLI::Option* opt = sub->get_option_no_throw("--" + name);
      if (!opt || name == "config")
        throw UsageError(fmt::format("{}: unknown option '{}' for '{}'", where, it.key, sub->get_name()));
      if (opt->get_expected_max() == 0) {  // a switch (a flag): true / false
        if (!it.is_bool) throw UsageError(fmt::format("{}: '{}' is a switch and takes true or false", where, it.key));
        if (it.value == "true") flags.push_back("--" + name);
        continue;
      }
      flags.push_back("--" + name);
      const std::string& value = it.value;
      for (int k = 0;; k++) {  // the flag's own checks, so that the error names the file
        CLI::Validator* check = nullptr;
        try {
          check = opt->get_validator(k);
        } catch (const CLI::OptionNotFound&) {
          break;
        }
        std::string v = value;
        if (std::string err = (*check)(v); !err.empty())
          throw UsageError(fmt::format("{}: {}: {}", where, it.key, err));
      }
      flags.push_back(value);
    }
    args.erase(args.begin() + int64_t(i), args.begin() + int64_t(i + span));
    args.insert(args.begin() + int64_t(at) + 1, flags.begin(), flags.end());
    i = at + flags.size();
  }
  return args;
}

CLI::Option* add_arch_option(CLI::App* cmd, Arch& arch, const std::string& help) {
  return cmd->add_option_function<std::string>("--arch", [&arch](const std::string& name) { arch = parse_arch(name); }, help)
      ->check(CLI::IsMember(arch_names()))
      ->default_str(arch_name(arch));
}

void add_train_options(CLI::App* cmd, TrainConfig& c) {
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // later flags win
  // --config FILE is expanded into flags by expand_config_files() before parsing (apps/main.cpp).
  cmd->add_option("--config", c.config_file, "TOML file with any of these options as `name = value` (flags given on the command line win)");
  cmd->add_option("--corpus", c.corpus, "corpus directory with {train,valid,test}.{en,de} or .tsv (default: embedded gettext en-de)");
  cmd->add_option("--task", c.task, "synthetic task instead of a corpus")->check(CLI::IsMember({"copy", "reverse", "sort"}));
  cmd->add_option("--task-train", c.task_train, "synthetic training pairs")->check(whole_number(1));
  cmd->add_option("--src-lang", c.src_lang, "source file suffix");
  cmd->add_option("--tgt-lang", c.tgt_lang, "target file suffix");
  add_arch_option(cmd, c.model.arch, "architecture: seq2seq (translation: encoder-decoder), lm (decoder-only: --dec-layers "
                  "causal blocks, next-token prediction), mlm (encoder-only: --enc-layers blocks, masked-token prediction)");
  cmd->add_option("--lm-text", c.lm_text, "--arch lm/mlm: which side of the corpus is the text (both, src, tgt)")
      ->check(CLI::IsMember({"both", "src", "tgt"}));
  cmd->add_option("--tokenizer", c.tokenizer, "reuse this tokenizer (path prefix of .model/.symbols) instead of training one");
  cmd->add_option("--vocab", c.vocab, "SentencePiece vocabulary size")->check(whole_number(8, 1 << 20));
  std::string variants = "attention preset:";
  for (auto& p : variant_presets()) variants += fmt::format("\n  {:<11} {}", p.name, p.description);
  cmd->add_option("--variant", c.variant, variants);
  cmd->add_flag("--match-params", c.match_params, "widen the variant back to the baseline's parameter count (within 0.5%)");
  cmd->add_option("--match-widen", c.match_widen, "what --match-params widens")->check(CLI::IsMember({"d_ff", "d_model"}));
  cmd->add_option("--d-model", c.model.d_model, "model width")->check(whole_number(1));
  cmd->add_option("--heads", c.model.heads, "attention heads")->check(whole_number(1));
  cmd->add_option("--enc-layers", c.model.enc_layers, "encoder layers")->check(whole_number(0));
  cmd->add_option("--dec-layers", c.model.dec_layers, "decoder layers")->check(whole_number(1));
  cmd->add_option("--d-ff", c.model.d_ff, "feed-forward width")->check(whole_number(1));
  cmd->add_option("--dropout", c.model.dropout, "dropout probability")->check(real_number(0, false, 1, true));
  cmd->add_option("--label-smoothing", c.model.label_smoothing, "label smoothing of the training loss")->check(real_number(0, false, 1, true));
  cmd->add_option("--max-len", c.model.max_len, "longest sequence in tokens (longer pairs are skipped, counted)")->check(whole_number(1));
  cmd->add_flag("--gelu", c.model.gelu, "GELU instead of ReLU in feed-forward layers");
  cmd->add_flag("--post-ln", c.model.post_ln, "post-LN blocks instead of pre-LN");
  cmd->add_option("--optimizer", c.optimizer, "adam or adamw")->check(CLI::IsMember({"adam", "adamw"}));
  cmd->add_option("--lr", c.lr, "peak learning rate")->check(real_number(0, true));
  cmd->add_option("--weight-decay", c.weight_decay, "AdamW decoupled weight decay")->check(real_number(0, false));
  cmd->add_option("--schedule", c.schedule, "learning-rate schedule")->check(CLI::IsMember({"inverse_sqrt", "cosine", "constant"}));
  cmd->add_option("--warmup", c.warmup, "warm-up steps")->check(whole_number(0));
  cmd->add_option("--clip", c.clip, "global gradient-norm clip (0: off)")->check(real_number(0, false));
  cmd->add_option("--batch-tokens", c.batch_tokens, "tokens per batch, padding included")->check(whole_number(1));
  cmd->add_option("--accum", c.accum, "gradient accumulation steps")->check(whole_number(1));
  cmd->add_option("--steps", c.steps, "optimizer steps")->check(whole_number(1));
  cmd->add_option("--time-budget", c.time_budget, "stop after this many seconds of training (0: no limit)")->check(real_number(0, false));
  cmd->add_option("--until-plateau", c.until_plateau,
                  "train to the end: stop once the validation loss has not improved by more than --plateau-delta for "
                  "this many evaluations in a row, or at --steps (0: off)")->check(whole_number(0));
  cmd->add_option("--plateau-delta", c.plateau_delta, "the least fall of the validation loss that counts as improving "
                                                      "(with --until-plateau; default 0.002)")->check(real_number(0, false));
  cmd->add_option("--eval-every", c.eval_every, "steps between evaluations and checkpoints")->check(whole_number(1));
  cmd->add_option("--log-every", c.log_every, "steps between log lines")->check(whole_number(1));
  cmd->add_option("--eval-sentences", c.eval_sentences, "valid sentences decoded for BLEU/chrF at evaluations (0: none)")->check(whole_number(0));
  cmd->add_option("--test-sentences", c.test_sentences, "test sentences decoded at the end (0: all)")->check(whole_number(0));
  cmd->add_option("--beam", c.beam, "beam size for the final test decoding")->check(whole_number(1, 64));
  cmd->add_option("--seed", c.seed, "random seed")->check(whole_number(0));
  cmd->add_option("--threads", c.threads, "threads for BLAS and attnlab loops (default: ATTNLAB_THREADS or all cores)")->check(whole_number(0, 1024));
}

// SIGINT (Ctrl-C), SIGTERM (a shutdown, `kill`, a batch system's time limit; also what a grid's
// runs get when the grid dies) and SIGHUP (the terminal closed) during training: the run saves a
// checkpoint at the end of the step and exits with 128 + the signal: 130, 143, 129.
static std::atomic<bool> g_stop_training{false};
static std::atomic<int> g_stop_signal{0};
extern "C" void on_train_signal(int sig) {
  int none = 0;
  g_stop_signal.compare_exchange_strong(none, sig);  // the first signal names the stop
  g_stop_training = true;
}

static void print_progress(const Progress& p, bool tty, bool quiet);

// What `attnlab train` shows as it goes: on a terminal one line rewritten in place, elsewhere
// (a log file) a line per logged step.
static ProgressFn train_printer(bool quiet) {
  const bool tty = ::isatty(STDOUT_FILENO) && !quiet;
  return [tty, quiet](const Progress& p) {
    try {
      print_progress(p, tty, quiet);
    } catch (const std::system_error&) {
      // After SIGHUP the terminal is gone and every write to it fails: the run still saves its
      // checkpoint and says (to a log, if there is one) how to resume. Otherwise the failure stands.
      if (g_stop_signal != SIGHUP) throw;
      std::clearerr(stdout);
    }
  };
}

static void print_progress(const Progress& p, bool tty, bool quiet) {
  {
    // On a terminal the step line is rewritten in place and left open: what comes next starts a
    // line of its own.
    static bool step_line_open = false;
    const char* fresh_line = step_line_open ? "\n" : "";
    step_line_open = false;
    switch (p.kind) {
      case Progress::Kind::Note:  // quiet runs send only what was asked for (--dump-tape)
        fmt::print("{}{}{}", fresh_line, p.text, !p.text.empty() && p.text.back() == '\n' ? "" : "\n");
        break;
      case Progress::Kind::Eval:
        if (!quiet)
          fmt::print("{}step {} | valid loss {:.4f} ppl {:.2f}{}{}\n", fresh_line, p.step, p.eval.loss, p.eval.ppl,
                     p.eval.bleu >= 0 ? fmt::format(" bleu {:.2f} chrf {:.2f}", p.eval.bleu, p.eval.chrf) : "",
                     p.eval.accuracy >= 0 ? fmt::format(" accuracy {:.1f}%", 100 * p.eval.accuracy) : "");
        break;
      case Progress::Kind::Step:
        if (tty) {
          fmt::print("\rstep {}/{} | loss {:.4f} | {:.0f} tok/s | ETA {}   ", p.step, p.steps, p.train_loss, p.tokens_per_s,
                     format_duration(p.eta_seconds));
          step_line_open = true;
        } else if (!quiet && p.log_step)
          fmt::print("step {}/{} loss {:.4f} lr {:.3g} gnorm {:.3f} {:.0f} tok/s ETA {}\n", p.step, p.steps, p.train_loss, p.lr,
                     p.grad_norm, p.tokens_per_s, format_duration(p.eta_seconds));
        break;
      case Progress::Kind::Done:
        fmt::print("{}", fresh_line);
        if (!quiet) fmt::print("{}\n", p.text);
        break;
    }
    if (std::fflush(stdout) != 0) throw std::system_error(errno, std::generic_category(), "standard output");
  }
}

// A line on standard error that does not stop the command.
static void say_warning(const std::string& what) {
  std::fflush(stdout);
  std::fputs(("attnlab: warning: " + what + "\n").c_str(), stderr);
}

// --resume with flags: each one given must agree with the run's config.json, but for those
// resume_may_change() lists (train/config.h). A --tokenizer must be the one the run copied.
static void check_resume_flags(const CLI::App& cmd, const TrainConfig& cfg) {
  namespace fs = std::filesystem;
  const std::string config = cfg.out + "/config.json";
  if (!fs::exists(config)) return;  // no run there yet: --resume starts one
  std::vector<std::string> seen;
  for (const CLI::Option* o : cmd.get_options())
    if (o->count() > 0) seen.push_back(o->get_name());
  if (std::string why = resume_conflict(read_json(config), cfg.to_json(), seen, cfg.out); !why.empty()) throw UsageError(why);
  if (cfg.tokenizer.empty()) return;
  for (const char* ext : {".model", ".symbols"}) {
    const std::string own = cfg.out + "/tokenizer" + ext, given = cfg.tokenizer + ext;
    if (!fs::exists(own)) continue;
    if (!fs::exists(given) || read_file(given) != read_file(own))
      throw UsageError(fmt::format("--tokenizer {}: not the tokenizer the run in {} was trained with ({} differs); resume "
                                   "without --tokenizer", cfg.tokenizer, cfg.out, own));
  }
}

void add_train_command(CLI::App& app) {
  auto cfg = std::make_shared<TrainConfig>();
  CLI::App* cmd = app.add_subcommand("train", "train one model; writes a run directory");
  add_train_options(cmd, *cfg);
  cmd->add_option("--out", cfg->out, "run directory");
  cmd->add_flag("--resume", cfg->resume, "continue the run in --out from its last checkpoint, with its own settings: other flags must repeat the run's values, except --steps (a new budget), --threads and --quiet");
  cmd->add_flag("--dump-tape", cfg->dump_tape, "print the tape of the first training step (before and after backward)");
  cmd->add_option("--dot", cfg->dot, "write the first step's tape as Graphviz to this file");
  cmd->add_flag("--quiet", cfg->quiet, "no progress output");
  cmd->callback([cfg, cmd]() {
    cfg->steps_given = cmd->count("--steps") > 0;
    cfg->vocab_given = cmd->count("--vocab") > 0;
    if (cfg->resume) check_resume_flags(*cmd, *cfg);
    if (!cfg->resume)  // what the architecture does not use: refused when typed, warned about from a config file
      for (const CLI::Option* opt : cmd->get_options())
        if (opt->count() > 0)
          if (std::string why = flag_not_applying(opt->get_name(), cfg->model.arch); !why.empty()) {
            if (typed(opt->get_name())) throw UsageError(why);
            say_warning(fmt::format("--config {}: {}; ignored", expanded_config(), why));
          }
    // The rate rises over the warm-up: one longer than the run keeps it far below --lr throughout
    // (--warmup 800 of --steps 300 never passes 2.6e-4 at the default rate). Warned, not changed:
    // a run's schedule is what its flags say.
    if (!cfg->resume && cfg->warmup > cfg->steps / 4)
      say_warning(fmt::format("--warmup {} is more than a quarter of --steps {}: the learning rate reaches {:g} only at step "
                              "{}{}; give --warmup {} for a run this short", cfg->warmup, cfg->steps, cfg->lr,
                              cfg->warmup, cfg->warmup >= cfg->steps ? ", after the run ends" : "",
                              cfg->steps >= 8 ? fmt::format("{} or fewer", cfg->steps / 4) : std::string("0")));
    g_stop_training = false;
    g_stop_signal = 0;
    constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa {}, previous[3];
    sa.sa_handler = on_train_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) ::sigaction(kStopSignals[i], &sa, &previous[i]);
    int64_t step = 0;
    int code = run_training(*cfg, train_printer(cfg->quiet), &g_stop_training, &step);
    for (int i = 0; i < 3; i++) ::sigaction(kStopSignals[i], &previous[i], nullptr);
    if (code == 130) {
      const int sig = g_stop_signal.load() ? g_stop_signal.load() : SIGINT;
      code = 128 + sig;
      const std::string line = fmt::format("{} at step {}: checkpoint saved; continue with: attnlab train --resume --out {}\n",
                                           sig == SIGINT ? "interrupted" : sig == SIGTERM ? "terminated (SIGTERM)" : "hung up (SIGHUP)",
                                           step, cfg->out);
      if (::isatty(STDOUT_FILENO) && !cfg->quiet) std::fputs("\n", stdout);
      std::fflush(stdout);
      std::fputs(line.c_str(), stderr);  // no exception: after SIGHUP there may be no terminal to write to
      if (sig == SIGHUP) std::clearerr(stdout), std::clearerr(stderr);  // the exit code is the news
    }
    exit_code() = code;
  });
}

void add_translate_command(CLI::App& app) {
  struct Opts {
    std::string run, input, output, which = "best";
    int beam = 5, batch = DecodeOptions{}.batch;
    bool greedy = false, no_cache = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("translate", "translate lines from stdin or a file with a trained run");
  cmd->add_option("--run", o->run, "run directory")->required();
  cmd->add_option("--input", o->input, "file of source lines (default: stdin)");
  cmd->add_option("--output", o->output, "file for translations (default: stdout)");
  cmd->add_option("--beam", o->beam, "beam size")->check(whole_number(1, 64));
  cmd->add_flag("--greedy", o->greedy, "greedy decoding (beam 1)");
  cmd->add_flag("--no-cache", o->no_cache, "recompute the decoder each step instead of using the key/value cache");
  cmd->add_option("--batch", o->batch, "sentences translated together (the same translations, faster; 1 without the cache)")
      ->check(whole_number(1, 4096));
  cmd->add_option("--checkpoint", o->which, "best or last")->check(CLI::IsMember({"best", "last"}));
  cmd->add_option("--threads", o->threads, "threads (default: ATTNLAB_THREADS or all cores)")->check(whole_number(0, 1024));
  cmd->callback([o]() {
    set_threads(o->threads);
    LoadedRun run = load_run(o->run, o->which);
    const std::string name = o->input.empty() ? "stdin" : o->input;
    std::vector<std::string> lines;
    std::string line;
    std::istringstream file(o->input.empty() ? std::string() : read_file(o->input));
    std::istream& in = o->input.empty() ? std::cin : file;
    if (o->input.empty() && ::isatty(STDIN_FILENO))  // not silence while it waits for a person to type
      fmt::print(stderr, "translate: reading source sentences from standard input, one per line; end with Ctrl-D "
                         "(or give --input FILE)\n");
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();  // as the corpus readers do
      if (!valid_utf8(line)) throw std::runtime_error(fmt::format("{}:{}: invalid UTF-8", name, lines.size() + 1));
      lines.push_back(line);
    }
    std::vector<CutLine> cut;
    DecodeOptions opt;
    opt.beam = o->greedy ? 1 : o->beam;
    opt.use_cache = !o->no_cache;
    opt.batch = o->batch;
    auto out = translate_lines(run, lines, opt, &cut);
    for (auto& c : cut)
      fmt::print(stderr, "attnlab: warning: {}:{}: {} tokens, more than this model reads; translated the first {}\n", name,
                 c.line + 1, c.tokens, c.kept);
    std::string text;
    for (auto& l : out) text += l + "\n";
    if (o->output.empty()) fmt::print("{}", text);
    else write_file_atomic(o->output, text);
  });
}

void add_generate_command(CLI::App& app) {
  struct Opts {
    std::string run, which = "best";
    std::optional<std::string> prompt;
    GenerateOptions gen;
    std::optional<float> temperature;
    std::optional<int> top_k;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("generate", "continue prompts with a trained language model (--arch lm)");
  cmd->add_option("--run", o->run, "run directory of an --arch lm run")->required();
  cmd->add_option("--prompt", o->prompt, "the text to continue; \"\" starts from the beginning-of-sentence token "
                                         "(default: prompts from standard input, one per line)");
  cmd->add_option("--max-tokens", o->gen.max_tokens, "new tokens at most per prompt (fewer at end of sentence)")
      ->check(whole_number(1, 4096));
  cmd->add_option("--temperature", o->temperature, "sample from softmax(logits / T) (default: greedy)")->check(real_number(0, true));
  cmd->add_option("--top-k", o->top_k, "with --temperature: sample among the k most likely tokens")->check(whole_number(1));
  cmd->add_option("--seed", o->gen.seed, "sampling seed")->check(whole_number(0));
  cmd->add_flag("--no-cache", [o](int64_t) { o->gen.use_cache = false; }, "recompute the whole sequence each step");
  cmd->add_option("--checkpoint", o->which, "best or last")->check(CLI::IsMember({"best", "last"}));
  cmd->add_option("--threads", o->threads, "threads (default: ATTNLAB_THREADS or all cores)")->check(whole_number(0, 1024));
  cmd->callback([o]() {
    if (o->top_k && !o->temperature)
      throw UsageError("--top-k: applies to sampling; give --temperature too (without it generation is greedy)");
    if (o->temperature && !std::isfinite(*o->temperature))  // 1e39 passes as a number and becomes inf as a float
      throw UsageError(fmt::format("--temperature: out of float range (a float32 holds up to {:.4g})",
                                   double(std::numeric_limits<float>::max())));
    if (o->temperature) o->gen.temperature = *o->temperature;
    if (o->top_k) o->gen.top_k = *o->top_k;
    if (o->prompt && !valid_utf8(*o->prompt)) throw UsageError("--prompt: invalid UTF-8 (give the prompt as UTF-8 text)");
    set_threads(o->threads);
    LoadedRun run = load_run(o->run, o->which);
    const LanguageModel& lm = language_model(run);
    std::vector<std::string> prompts;
    if (o->prompt) {
      prompts.push_back(*o->prompt);
    } else {
      if (::isatty(STDIN_FILENO))
        fmt::print(stderr, "generate: reading prompts from standard input, one per line (an empty line: from the start); "
                           "end with Ctrl-D (or give --prompt TEXT)\n");
      std::string line;
      while (std::getline(std::cin, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!valid_utf8(line)) throw std::runtime_error(fmt::format("stdin:{}: invalid UTF-8", prompts.size() + 1));
        prompts.push_back(line);
      }
    }
    for (size_t i = 0; i < prompts.size(); i++) {
      std::vector<int32_t> ids = run.tok->encode(prompts[i]);
      if (int(ids.size()) + 1 >= lm.cfg.max_len)
        throw UsageError(fmt::format("{}: {} tokens, more than this model reads ({})",
                                     o->prompt ? "--prompt" : fmt::format("stdin:{}", i + 1), ids.size(), lm.cfg.max_len - 2));
      // The model reads max_len tokens, bos and the prompt included: generation stops there.
      const int room = lm.cfg.max_len - 1 - int(ids.size());
      if (o->gen.max_tokens > room)
        say_warning(fmt::format("--max-tokens {}: this model reads {} tokens in all, so {} ends after at most {} new tokens",
                                o->gen.max_tokens, lm.cfg.max_len,
                                o->prompt ? std::string("the prompt") : fmt::format("prompt {}", i + 1), room));
      GenerateOptions g = o->gen;
      g.seed = o->gen.seed + i;  // each prompt its own draws, the same on every run
      std::vector<int32_t> all = ids, more = generate_ids(lm, ids, g);
      all.insert(all.end(), more.begin(), more.end());
      fmt::print("{}\n", run.tok->decode(all));
      if (std::fflush(stdout) != 0) throw std::system_error(errno, std::generic_category(), "standard output");
    }
  });
}

static std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_file_limited(path, kSentenceFileMaxBytes, path));
  std::string l;
  while (std::getline(in, l)) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (!valid_utf8(l)) throw std::runtime_error(fmt::format("{}:{}: invalid UTF-8", path, lines.size() + 1));
    lines.push_back(l);
  }
  return lines;
}

void add_score_command(CLI::App& app) {
  auto ref = std::make_shared<std::string>(), hyp = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("score", "corpus BLEU and chrF as sacrebleu's defaults compute them");
  cmd->add_option("--ref", *ref, "reference file, one sentence per line")->required();
  cmd->add_option("--hyp", *hyp, "hypothesis file, line-aligned with --ref")->required();
  cmd->callback([ref, hyp]() {
    auto r = read_lines(*ref), h = read_lines(*hyp);
    if (r.size() != h.size())
      throw std::runtime_error(fmt::format("--hyp {} has {} but --ref {} has {}", *hyp, counted(int64_t(h.size()), "line"), *ref, r.size()));
    BleuResult b = corpus_bleu(h, r);
    fmt::print("BLEU|{} = {:.2f} {:.1f}/{:.1f}/{:.1f}/{:.1f} (BP = {:.3f} ratio = {:.3f} hyp_len = {} ref_len = {})\n",
               bleu_signature(), b.score, b.precisions[0], b.precisions[1], b.precisions[2], b.precisions[3], b.bp, b.ratio,
               b.sys_len, b.ref_len);
    fmt::print("chrF2|{} = {:.2f}\n", chrf_signature(), corpus_chrf(h, r));
  });
}

void add_gradcheck_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("gradcheck", "check every op's gradient against finite differences");
  cmd->callback([]() {
    fmt::print("{:<14} {:<44} {:>12} {:>12}  {}\n", "op", "case", "max abs err", "max rel err", "result");
    int failed = 0;
    for (auto& c : gradcheck_table()) {
      GradcheckResult r = run_gradcheck(c);
      fmt::print("{:<14} {:<44} {:>12.3g} {:>12.3g}  {}\n", r.op, r.label, r.max_abs_err, r.max_rel_err,
                 r.pass ? "pass" : "FAIL (" + r.worst + ")");
      failed += !r.pass;
    }
    fmt::print("{} cases, {} failed (pass: |analytic - numeric| <= {} + {} |numeric|, central differences, step {})\n",
               gradcheck_table().size(), failed, kGradAbsTol, kGradRelTol, kGradStep);
    exit_code() = failed ? 1 : 0;
  });
}

void add_internal_error_test_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("internal-error-test", "for tests: fail as a bug in a layer would");
  cmd->group("");  // hidden: not in --help, not suggested for a mistyped command
  cmd->callback([]() {
    // a layer that got its shapes wrong: the real op refuses, as it would deep in a model
    Tape tape;
    TapeScope scope(tape);
    Var a = constant(Tensor::zeros({2, 3}), "a"), b = constant(Tensor::zeros({3, 2}), "b");
    add(a, b, "internal-error-test");
  });
}

void add_corpus_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("corpus", "build corpora");
  cmd->require_subcommand(1);
  struct Opts {
    std::string locale_dir = "/usr/share/locale", lang = "de", out;
    std::string task = "reverse";
    int n = 4000, n_eval = 200;
    uint64_t seed = 1;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* ex = cmd->add_subcommand("extract", "pair English msgids with translations from gettext .mo catalogs");
  ex->add_option("--locale-dir", o->locale_dir, "directory holding <lang>/LC_MESSAGES/*.mo");
  ex->add_option("--lang", o->lang, "target language code");
  ex->add_option("--out", o->out, "output directory")->required();
  ex->callback([o]() {
    ExtractStats s = extract_gettext_corpus(o->locale_dir, o->lang, o->out);
    fmt::print("{} catalogs ({} unreadable), {} entries, {} pairs kept ({} duplicate sources dropped): train {} valid {} test {}\n",
               s.files, s.bad_files, s.entries, s.kept, s.duplicates, s.train, s.valid, s.test);
    for (auto& b : s.bad) fmt::print(stderr, "skipped: {}\n", b);
  });
  struct SplitOpts {
    std::string tsv, src_file, tgt_file, src_lang = "en", tgt_lang = "de", out;
    int64_t valid = 1000, test = 1000;
    uint64_t seed = 1;
  };
  auto so = std::make_shared<SplitOpts>();
  CLI::App* sp = cmd->add_subcommand("split", "one parallel corpus (a TSV, or two line-aligned files) into train/valid/test for train --corpus");
  sp->add_option("--tsv", so->tsv, "one `source<TAB>target` pair per line")->check(CLI::ExistingFile);
  sp->add_option("--src-file", so->src_file, "source sentences, one per line (with --tgt-file)")->check(CLI::ExistingFile);
  sp->add_option("--tgt-file", so->tgt_file, "their translations, line by line")->check(CLI::ExistingFile);
  sp->add_option("--src-lang", so->src_lang, "source language: the files' suffix (train.en)")->capture_default_str();
  sp->add_option("--tgt-lang", so->tgt_lang, "target language: the files' suffix (train.de)")->capture_default_str();
  sp->add_option("--valid", so->valid, "validation pairs")->check(whole_number(0))->capture_default_str();
  sp->add_option("--test", so->test, "test pairs")->check(whole_number(0))->capture_default_str();
  sp->add_option("--seed", so->seed, "which pairs go to valid and test")->check(whole_number(0))->capture_default_str();
  sp->add_option("--out", so->out, "a new folder for {train,valid,test}.{SRC,TGT}")->required();
  sp->footer("Exact duplicate pairs are kept once, and every pair of one source sentence goes to the same split, so no\n"
             "sentence of valid or test is seen in training. Then: attnlab train --corpus OUT --src-lang SRC --tgt-lang TGT");
  sp->callback([so]() {
    const bool tsv = !so->tsv.empty(), files = !so->src_file.empty() || !so->tgt_file.empty();
    if (tsv == files) throw UsageError("corpus split: give --tsv FILE, or --src-file and --tgt-file (one of the two)");
    if (files && (so->src_file.empty() || so->tgt_file.empty()))
      throw UsageError(so->src_file.empty() ? "--tgt-file needs --src-file" : "--src-file needs --tgt-file");
    for (const std::string* lang : {&so->src_lang, &so->tgt_lang})
      if (lang->empty() || lang->find_first_of("/. \t") != std::string::npos)
        throw UsageError(fmt::format("--{}-lang '{}': expected a file suffix such as en or de", lang == &so->src_lang ? "src" : "tgt", *lang));
    if (so->src_lang == so->tgt_lang) throw UsageError(fmt::format("--src-lang and --tgt-lang are both '{}': the files would be one", so->src_lang));
    const ParallelCorpus all = tsv ? read_tsv(so->tsv) : read_parallel(so->src_file, so->tgt_file);
    const SplitStats s = split_corpus(all, so->out, so->src_lang, so->tgt_lang, so->valid, so->test, so->seed);
    fmt::print("read {} pairs ({} blank lines skipped); {} exact duplicates kept once; {} source sentences with several "
                    "translations, each kept in one split\n", s.read, s.blank, s.duplicates, s.shared_sources);
    fmt::print("wrote {}/{{train,valid,test}}.{{{},{}}}: train {}, valid {}, test {}\n", so->out, so->src_lang, so->tgt_lang,
                    s.train, s.valid, s.test);
    fmt::print("train on it: attnlab train --corpus {} --src-lang {} --tgt-lang {} --out runs/mine\n", so->out, so->src_lang,
                    so->tgt_lang);
  });
  CLI::App* syn = cmd->add_subcommand("synthetic", "write a synthetic task corpus (copy, reverse, sort)");
  syn->add_option("--task", o->task)->check(CLI::IsMember({"copy", "reverse", "sort"}));
  syn->add_option("--train", o->n, "training pairs")->check(whole_number(1));
  syn->add_option("--eval", o->n_eval, "valid and test pairs")->check(whole_number(1));
  syn->add_option("--seed", o->seed, "random seed")->check(whole_number(0));
  syn->add_option("--out", o->out, "output directory")->required();
  syn->callback([o]() {
    std::filesystem::create_directories(o->out);
    write_synthetic_corpus(o->task, o->out, o->n, o->n_eval, o->seed);
    fmt::print("wrote {}/{{train,valid,test}}.{{src,tgt}}\n", o->out);
  });
}

}  // namespace attn
