// tests/test_tools.cpp — tools/: `attnlab export` (train/export.h), and tools/attnlab_torch.py, which
// loads a run into PyTorch and checks it against what export wrote; bench/step_perf.py's bad input.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <attnlab/core/fileio.h>
#include <attnlab/core/safetensors.h>
#include <attnlab/data/tokenizer.h>
#include <attnlab/models/model.h>
#include "tests/cli.h"
#include "tests/skip.h"

using attn::write_file_atomic;
using json = nlohmann::json;

// Tiny runs: 30 steps of a d 16 model on the reversal task (a symbol tokenizer), one layer per
// stack for seq2seq and two for an lm or mlm; 10 test sentences.
static const std::string kRunFlags =
    "--task reverse --task-train 300 --d-model 16 --heads 2 --d-ff 32 --steps 30 --eval-every 15 --warmup 5 --lr 0.003 "
    "--threads 1 --quiet";

static void train(const fs::path& out, const std::string& arch, const std::string& variant, const std::string& extra = "") {
  const std::string layers = arch == "lm"    ? "--dec-layers 2"
                             : arch == "mlm" ? "--enc-layers 2"
                                             : "--enc-layers 1 --dec-layers 1 --eval-sentences 0 --test-sentences 10 --beam 1";
  Result r = attnlab("train --arch " + arch + " --variant " + variant + " " + layers + " " + kRunFlags + " " + extra + " --out " +
                     out.string());
  INFO(r.out);
  REQUIRE(r.code == 0);
}

static Result torch_tool(const std::string& args) {
  return shell(std::string("/usr/bin/python3 ") + ATTNLAB_TEST_DIR + "/../tools/attnlab_torch.py " + args +
               " --attnlab " + ATTNLAB_BINARY + " --threads 1");
}

TEST_CASE("attnlab export writes a run's validation batches, one batch's gradients and its greedy test translations") {
  const fs::path d = temp_dir("export");
  train(d / "s2s", "seq2seq", "qq-noself");
  Result r = attnlab("export --run " + (d / "s2s").string() + " --out " + (d / "x").string() + " --threads 1");
  INFO(r.out);
  REQUIRE(r.code == 0);
  const json ref = json::parse(read_file((d / "x/reference.json").string()));
  CHECK(ref["weights"] == (d / "s2s/model.best.safetensors").string());
  int64_t sentences = 0;
  for (auto& b : ref["valid"]["batches"]) sentences += b["B"].get<int64_t>();
  CHECK(sentences == 200);  // every validation pair of the reversal task (TrainConfig::task_eval), once
  CHECK(ref["test"]["greedy"].size() == 10);                  // as many as the run's --test-sentences
  CHECK(ref["test"]["src"][0].back() == attn::Tokenizer::kEos);
  const attn::SafetensorsFile g = attn::load_safetensors((d / "x/gradients.safetensors").string());
  const attn::SafetensorsFile w = attn::load_safetensors((d / "s2s/model.best.safetensors").string());
  REQUIRE(g.tensors.size() == w.tensors.size() + 1);          // the loss, then one gradient per parameter
  CHECK(g.tensors[0].first == "loss");
  for (size_t i = 0; i < w.tensors.size(); i++) {
    CHECK(g.tensors[i + 1].first == "grad/" + w.tensors[i].first);
    CHECK(g.tensors[i + 1].second.shape() == w.tensors[i].second.shape());
  }
  // what does not apply, and what is not a run, refused in one line
  train(d / "lm", "lm", "qq");
  Result lm = attnlab("export --run " + (d / "lm").string() + " --out " + (d / "y").string() + " --test-sentences 3");
  CHECK(lm.code == 2);
  CHECK(last_line(lm.out) == "attnlab: error: --test-sentences: --run " + (d / "lm").string() +
                                 " is an --arch lm model, which does not translate");
  Result none = attnlab("export --run " + d.string() + " --out " + (d / "z").string());
  CHECK(none.code == 1);
  CHECK(last_line(none.out) == "attnlab: error: --run " + d.string() + ": not a run directory (no config.json)");
  CHECK(!fs::exists(d / "y"));
  CHECK(!fs::exists(d / "z"));
  fs::remove_all(d);
}

// The requirement of every [torch] case here: the system Python imports torch, numpy and sentencepiece.
static void skip_unless_torch_tool() {
  const std::string found = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ('torch', 'numpy', "
                            "'sentencepiece')))";  // found, not imported: importing torch takes seconds
  skip_unless(std::system(("/usr/bin/python3 -c \"" + found + "\" >/dev/null 2>&1").c_str()) == 0,
              "python3-torch, python3-numpy or python3-sentencepiece not installed (make test installs them)");
}

TEST_CASE("attnlab_torch.py --check: PyTorch agrees with attnlab on every architecture and variant", "[torch]") {
  skip_unless_torch_tool();
  const fs::path d = temp_dir("torch-tool");
  std::string runs;
  for (const attn::VariantPreset& p : attn::variant_presets()) {  // every preset of the translation model
    train(d / ("seq2seq-" + p.name), "seq2seq", p.name);
    runs += " " + (d / ("seq2seq-" + p.name)).string();
  }
  for (std::string arch : {"lm", "mlm"})  // each variant component of the one site an lm or mlm has
    for (std::string variant : {"qk", "qq", "qq-noself", "qq-normk", "noO", "qq-noV-noO"}) {
      train(d / (arch + "-" + variant), arch, variant);
      runs += " " + (d / (arch + "-" + variant)).string();
    }
  // post-LN blocks with GELU; and a SentencePiece tokenizer on a slice of the embedded corpus
  train(d / "post-ln-gelu", "seq2seq", "qq", "--post-ln --gelu");
  const fs::path corpus = d / "corpus", source = fs::path(ATTNLAB_TEST_DIR) / "../data/corpora/gettext-en-de";
  fs::create_directories(corpus);
  for (auto [split, lines] : {std::pair<std::string, int>{"train", 300}, {"valid", 20}, {"test", 10}})
    REQUIRE(shell("for l in en de; do head -n " + std::to_string(lines) + " " + (source / (split + ".$l")).string() + " > " +
                  (corpus / (split + ".$l")).string() + "; done").code == 0);
  Result sp = attnlab("train --corpus " + corpus.string() + " --vocab 150 --d-model 16 --heads 2 --enc-layers 1 --dec-layers 1 "
                      "--d-ff 32 --steps 30 --eval-every 15 --warmup 5 --lr 0.003 --eval-sentences 0 --beam 1 --threads 1 "
                      "--quiet --out " + (d / "sentencepiece").string());
  INFO(sp.out);
  REQUIRE(sp.code == 0);
  runs += " " + (d / "post-ln-gelu").string() + " " + (d / "sentencepiece").string();

  Result r = torch_tool(runs + " --check");
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("runs checked: all agree with attnlab"));
  CHECK_THAT(r.out, !Catch::Contains("MISMATCH"));
  // the last checkpoint's weights: metrics.csv's validation loss at its step
  Result last = torch_tool((d / "lm-qq").string() + " --checkpoint last --check");
  INFO(last.out);
  CHECK(last.code == 0);
  CHECK_THAT(last.out, Catch::Contains("(metrics.csv, step 30)"));
  fs::remove_all(d);
}

TEST_CASE("attnlab_torch.py --check fails on weights or a variant that are not what attnlab recorded, and names bad input", "[torch]") {
  skip_unless_torch_tool();
  const fs::path d = temp_dir("torch-tool-bad");
  train(d / "a", "seq2seq", "qq-noself");

  // one weight moved: the validation loss is no longer the one results.json holds
  REQUIRE(shell("cp -r " + (d / "a").string() + " " + (d / "perturbed").string()).code == 0);
  const std::string best = (d / "perturbed/model.best.safetensors").string();
  attn::SafetensorsFile f = attn::load_safetensors(best);
  for (auto& [name, t] : f.tensors)
    if (name == "dec.0.ff.w1.weight") t.at({0, 0}) += 1.f;
  attn::save_safetensors(best, f.tensors, f.metadata);

  // config.json says qq where the run trained qq+noself: the same tensors, another model
  REQUIRE(shell("cp -r " + (d / "a").string() + " " + (d / "variant").string()).code == 0);
  const std::string config = (d / "variant/config.json").string();
  json c = json::parse(read_file(config));
  c["model"]["enc_self"] = c["model"]["dec_self"] = "qq";
  write_file_atomic(config, c.dump(2));

  Result r = torch_tool((d / "perturbed").string() + " " + (d / "variant").string() + " --check");
  INFO(r.out);
  CHECK(r.code == 1);
  const std::string perturbed = r.out.substr(0, r.out.find((d / "variant").string() + ":")), variant = r.out.substr(perturbed.size());
  CHECK_THAT(perturbed, Catch::Contains("valid loss") && Catch::Contains("MISMATCH") &&
                            Catch::Contains("the weights or config.json changed since it recorded results.json"));
  CHECK_THAT(variant, Catch::Contains("valid loss") && Catch::Contains("MISMATCH"));
  CHECK_THAT(r.out, Catch::Contains("2 runs checked: 2 disagree"));

  // input that is not a run: one line naming the file, exit 2
  Result none = torch_tool(d.string());
  CHECK(none.code == 2);
  CHECK(last_line(none.out) == "attnlab_torch: error: " + d.string() + ": not a run directory (no config.json)");
  c["model"]["enc_self"] = "qx";
  write_file_atomic(config, c.dump(2));
  Result unknown = torch_tool((d / "variant").string());
  CHECK(unknown.code == 2);
  CHECK(last_line(unknown.out) == "attnlab_torch: error: " + config + ": model: enc_self: unknown attention variant 'qx' "
                                      "(expected qk or qq, optionally followed by +noself, +normk, +noV, +noO)");
  const std::string bytes = read_file((d / "a/model.best.safetensors").string());
  write_file_atomic((d / "a/model.best.safetensors").string(), bytes.substr(0, bytes.size() - 10));
  Result truncated = torch_tool((d / "a").string());
  CHECK(truncated.code == 2);
  CHECK_THAT(last_line(truncated.out), Catch::StartsWith("attnlab_torch: error: " + (d / "a/model.best.safetensors").string() +
                                                         ": truncated: tensor '"));
  fs::remove_all(d);
}

TEST_CASE("bench/step_perf.py refuses bad input in one line, before running anything") {
  const auto step_perf = [](const std::string& args) {
    return shell(std::string("/usr/bin/python3 ") + ATTNLAB_TEST_DIR + "/../bench/step_perf.py " + args);
  };
  const std::string bin = ATTNLAB_BINARY;
  const Result d0 = step_perf(bin + " --d 0"), nan = step_perf(bin + " --seconds nan"),
               word = step_perf(bin + " --threads two"), top = step_perf(bin + " --top -1");
  for (const Result* r : {&d0, &nan, &word, &top}) {
    INFO(r->out);
    CHECK(r->code == 2);
  }
  CHECK(last_line(d0.out) == "step_perf.py: error: argument --d: 0 is not a finite number above 0");
  CHECK(last_line(nan.out) == "step_perf.py: error: argument --seconds: nan is not a finite number above 0");
  CHECK(last_line(word.out) == "step_perf.py: error: argument --threads: 'two' is not a number");
  const Result missing = step_perf("/nonexistent/attnlab --d 64");
  CHECK(missing.code == 1);
  CHECK(missing.out == "step_perf.py: /nonexistent/attnlab: not an executable\n");
}
