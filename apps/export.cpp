// apps/export.cpp — `attnlab export`: what attnlab computes for a run's weights (its validation
// batches and loss, one batch's gradients, greedy test translations), for another implementation
// to be checked against (train/export.h; tools/attnlab_torch.py --check runs it).
//
//   attnlab export --run runs/qq --out /tmp/qq-export     # reference.json, gradients.safetensors
#include <memory>

#include "apps/commands.h"
#include <attnlab/core/threads.h>
#include <attnlab/core/words.h>
#include <attnlab/train/export.h>

namespace attn {

void add_export_command(CLI::App& app) {
  struct Opts {
    std::string run, out, which = "best";
    int test_sentences = -1, threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "export", "write a run's validation batches, one batch's gradients and its greedy test translations, as token ids "
                "and tensors, to check another implementation against (tools/attnlab_torch.py --check)");
  cmd->add_option("--run", o->run, "run directory")->required();
  cmd->add_option("--out", o->out, "directory for reference.json and gradients.safetensors")->required();
  cmd->add_option("--checkpoint", o->which, "best or last")->check(CLI::IsMember({"best", "last"}));
  cmd->add_option("--test-sentences", o->test_sentences,
                  "a translation run: the test sentences translated (default: as many as the run's final test)")
      ->check(whole_number(0))
      ->default_str("the run's");
  cmd->add_option("--threads", o->threads, "threads (default: ATTNLAB_THREADS or all cores)")->check(whole_number(0, 1024));
  cmd->callback([o]() {
    set_threads(o->threads);
    const RunExport e = export_run(o->run, o->which, o->test_sentences);
    write_run_export(e, o->out);
    const size_t test = e.reference.contains("test") ? e.reference["test"]["src"].size() : 0;
    fmt::print("export: {} ({}) -> {}/reference.json ({}{}) and {}/gradients.safetensors ({})\n", o->run,
               e.reference["weights"].get<std::string>(), o->out,
               counted(int64_t(e.reference["valid"]["batches"].size()), "validation batch", "validation batches"),
               test ? ", " + counted(int64_t(test), "greedy test translation") : "", o->out,
               counted(int64_t(e.gradients.size()) - 1, "parameter gradient"));
  });
}

}  // namespace attn
