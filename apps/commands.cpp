// apps/commands.cpp — train, translate, score, gradcheck and corpus (and internal-error-test, for tests).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "apps/commands.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/fileio.h"
#include "core/threads.h"
#include "core/usage_error.h"
#include "core/words.h"
#include "data/corpus.h"
#include "data/metrics.h"
#include "data/synthetic.h"
#include "data/utf8.h"
#include "models/generate.h"
#include "train/trainer.h"

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

// The line (1-based) of a config file where `key` is set (or, for "[", the first section).
static int config_line(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    n++;
    const size_t at = line.find_first_not_of(" \t");
    if (at == std::string::npos) continue;
    if (key == "[" ? line[at] == '[' : line.compare(at, key.size(), key) == 0 &&
                                           line.find_first_not_of(" \t", at + key.size()) == line.find('=', at))
      return n;
  }
  return 0;
}

std::vector<std::string> expand_config_files(CLI::App& app, std::vector<std::string> args) {
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
    std::vector<CLI::ConfigItem> items;
    try {
      items = CLI::ConfigTOML().from_file(file);
    } catch (const CLI::FileError&) {
      throw std::runtime_error("--config " + file + ": cannot read the file");
    } catch (const CLI::ParseError& e) {
      throw std::runtime_error("--config " + file + ": " + e.what());
    }
    std::vector<std::string> flags;
    const std::string text = read_file(file);
    for (auto& it : items) {
      if (it.name == "++" || it.name == "--" || !it.parents.empty())  // CLI11's markers of a [section]
        throw UsageError(fmt::format("--config {}:{}: sections are not read: put every setting at the top level, "
                                     "as `name = value`", file, config_line(text, "[")));
      std::string name = it.name;
      std::replace(name.begin(), name.end(), '_', '-');
      const std::string where = fmt::format("--config {}:{}", file, config_line(text, it.name));
      CLI::Option* opt = sub->get_option_no_throw("--" + name);
      if (!opt || name == "config")
        throw UsageError(fmt::format("{}: unknown option '{}' for '{}'", where, it.name, sub->get_name()));
      if (opt->get_expected_max() == 0) {  // a switch (a flag): true / false
        if (it.inputs.size() != 1 || (it.inputs[0] != "true" && it.inputs[0] != "false"))
          throw UsageError(fmt::format("{}: '{}' is a switch and takes true or false", where, it.name));
        if (it.inputs[0] == "true") flags.push_back("--" + name);
        continue;
      }
      flags.push_back("--" + name);
      std::string value;
      for (size_t k = 0; k < it.inputs.size(); k++) value += (k ? "," : "") + it.inputs[k];
      for (int k = 0;; k++) {  // the flag's own checks, so that the error names the file
        CLI::Validator* check = nullptr;
        try {
          check = opt->get_validator(k);
        } catch (const CLI::OptionNotFound&) {
          break;
        }
        std::string v = value;
        if (std::string err = (*check)(v); !err.empty())
          throw UsageError(fmt::format("{}: {}: {}", where, it.name, err));
      }
      flags.push_back(value);
    }
    args.erase(args.begin() + int64_t(i), args.begin() + int64_t(i + span));
    args.insert(args.begin() + int64_t(at) + 1, flags.begin(), flags.end());
    i = at + flags.size();
  }
  return args;
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
  cmd->add_option("--arch", c.model.arch, "architecture: seq2seq (translation: encoder-decoder), lm (decoder-only: --dec-layers "
                  "causal blocks, next-token prediction), mlm (encoder-only: --enc-layers blocks, masked-token prediction)")
      ->check(CLI::IsMember(ModelConfig::arch_names()));
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
  cmd->add_option("--eval-every", c.eval_every, "steps between evaluations and checkpoints")->check(whole_number(1));
  cmd->add_option("--log-every", c.log_every, "steps between log lines")->check(whole_number(1));
  cmd->add_option("--eval-sentences", c.eval_sentences, "valid sentences decoded for BLEU/chrF at evaluations (0: none)")->check(whole_number(0));
  cmd->add_option("--test-sentences", c.test_sentences, "test sentences decoded at the end (0: all)")->check(whole_number(0));
  cmd->add_option("--beam", c.beam, "beam size for the final test decoding")->check(whole_number(1, 64));
  cmd->add_option("--seed", c.seed, "random seed")->check(whole_number(0));
  cmd->add_option("--threads", c.threads, "threads for BLAS and attnlab loops (default: ATTNLAB_THREADS or all cores)")->check(whole_number(0, 1024));
}

// SIGINT during training: the run saves a checkpoint at the end of the step and exits with 130.
static std::atomic<bool> g_stop_training{false};
extern "C" void on_train_sigint(int) { g_stop_training = true; }

// What `attnlab train` shows as it goes: on a terminal one line rewritten in place, elsewhere
// (a log file) a line per logged step.
static ProgressFn train_printer(bool quiet) {
  const bool tty = ::isatty(STDOUT_FILENO) && !quiet;
  return [tty, quiet](const Progress& p) {
    switch (p.kind) {
      case Progress::Kind::Note:  // quiet runs send only what was asked for (--dump-tape)
        fmt::print("{}{}", p.text, !p.text.empty() && p.text.back() == '\n' ? "" : "\n");
        break;
      case Progress::Kind::Eval:
        if (!quiet)
          fmt::print("{}step {} | valid loss {:.4f} ppl {:.2f}{}{}\n", tty ? "\n" : "", p.step, p.eval.loss, p.eval.ppl,
                     p.eval.bleu >= 0 ? fmt::format(" bleu {:.2f} chrf {:.2f}", p.eval.bleu, p.eval.chrf) : "",
                     p.eval.accuracy >= 0 ? fmt::format(" accuracy {:.1f}%", 100 * p.eval.accuracy) : "");
        break;
      case Progress::Kind::Step:
        if (tty)
          fmt::print("\rstep {}/{} | loss {:.4f} | {:.0f} tok/s | ETA {}   ", p.step, p.steps, p.train_loss, p.tokens_per_s,
                     format_duration(p.eta_seconds));
        else if (!quiet && p.log_step)
          fmt::print("step {}/{} loss {:.4f} lr {:.3g} gnorm {:.3f} {:.0f} tok/s ETA {}\n", p.step, p.steps, p.train_loss, p.lr,
                     p.grad_norm, p.tokens_per_s, format_duration(p.eta_seconds));
        break;
      case Progress::Kind::Done:
        if (tty) fmt::print("\n");
        if (!quiet) fmt::print("{}\n", p.text);
        break;
    }
    std::fflush(stdout);
  };
}

void add_train_command(CLI::App& app) {
  auto cfg = std::make_shared<TrainConfig>();
  CLI::App* cmd = app.add_subcommand("train", "train one model; writes a run directory");
  add_train_options(cmd, *cfg);
  cmd->add_option("--out", cfg->out, "run directory");
  cmd->add_flag("--resume", cfg->resume, "continue the run in --out from its last checkpoint");
  cmd->add_flag("--dump-tape", cfg->dump_tape, "print the tape of the first training step (before and after backward)");
  cmd->add_option("--dot", cfg->dot, "write the first step's tape as Graphviz to this file");
  cmd->add_flag("--quiet", cfg->quiet, "no progress output");
  cmd->callback([cfg]() {
    g_stop_training = false;
    auto previous = std::signal(SIGINT, on_train_sigint);
    int64_t step = 0;
    const int code = run_training(*cfg, train_printer(cfg->quiet), &g_stop_training, &step);
    std::signal(SIGINT, previous);
    if (code == 130) {
      if (::isatty(STDOUT_FILENO) && !cfg->quiet) fmt::print("\n");
      fmt::print(stderr, "interrupted at step {}: checkpoint saved; continue with: attnlab train --resume --out {}\n", step,
                 cfg->out);
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
    if (o->temperature) o->gen.temperature = *o->temperature;
    if (o->top_k) o->gen.top_k = *o->top_k;
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
      GenerateOptions g = o->gen;
      g.seed = o->gen.seed + i;  // each prompt its own draws, the same on every run
      std::vector<int32_t> all = ids, more = generate_ids(lm, ids, g);
      all.insert(all.end(), more.begin(), more.end());
      fmt::print("{}\n", run.tok->decode(all));
      std::fflush(stdout);
    }
  });
}

static std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(path));
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
