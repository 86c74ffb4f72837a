// examples/train_reverse.cpp — train a tiny QQᵀ transformer from C++, without the command line.
//
// The library's run layer (train/) does what `attnlab train` does: a Trainer reads the data,
// builds the tokenizer, model and optimizer, and reports its progress through a callback.
// Here: a 1+1-layer model learns to reverse sequences of symbols; the program checks that the
// validation loss fell and exits 1 if it did not. It runs the kernels `attnlab train` runs
// (attn::init_runtime, core/runtime.h), so `attnlab train` with the same settings gives the same
// losses, bit for bit, on one machine (tests/test_apps.cpp):
//   build/examples/train_reverse [run directory [steps]]     # 400 steps unless told
// and the same run from the command line, in one line:
//   attnlab train --task reverse --task-train 2000 --variant qq --d-model 32 --heads 2 --enc-layers 1
//     --dec-layers 1 --d-ff 64 --lr 3e-3 --warmup 50 --steps 400 --eval-every 100 --eval-sentences 0
//     --test-sentences 50 --beam 1 --threads 1 --out DIR
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include <attnlab/core/runtime.h>
#include <attnlab/core/threads.h>
#include <attnlab/train/trainer.h>

int main(int argc, char** argv) {
  attn::init_runtime(argv);  // first: it may start the program again, once (core/runtime.h)
  attn::TrainConfig cfg;
  cfg.task = "reverse";  // synthetic pairs: "a b c" -> "c b a"
  cfg.task_train = 2000;
  cfg.variant = "qq";    // W_k = W_q in both self-attentions
  cfg.model.d_model = 32;
  cfg.model.heads = 2;
  cfg.model.enc_layers = cfg.model.dec_layers = 1;
  cfg.model.d_ff = 64;
  cfg.lr = 3e-3f;
  cfg.warmup = 50;
  cfg.steps = argc > 2 ? std::atoll(argv[2]) : 400;
  cfg.eval_every = std::max(1, int(cfg.steps / 4));  // four evaluations
  cfg.eval_sentences = 0;  // loss only at evaluations
  cfg.test_sentences = 50;
  cfg.beam = 1;
  cfg.threads = 1;
  cfg.out = argc > 1 ? argv[1] : (std::filesystem::temp_directory_path() / "attnlab-example-reverse").string();
  std::filesystem::remove_all(cfg.out);

  std::vector<double> valid_loss;  // at each evaluation
  attn::Trainer trainer(cfg, [&](const attn::Progress& p) {
    if (p.kind == attn::Progress::Kind::Eval) {
      valid_loss.push_back(p.eval.loss);
      std::printf("step %lld: validation loss %.3f\n", static_cast<long long>(p.step), p.eval.loss);
    }
  });
  std::printf("%lld parameters\n", static_cast<long long>(trainer.model().params.count()));
  while (!trainer.done()) trainer.step();
  const nlohmann::json results = trainer.finish();
  std::printf("test BLEU %.1f\n", results["test_bleu"].get<double>());

  // An untrained model's guess is about uniform over the vocabulary: a loss of ln(vocab).
  const double chance = std::log(double(trainer.model().cfg.vocab));
  bool falling = valid_loss.size() >= 4;
  for (size_t i = 1; i < valid_loss.size(); i++) falling = falling && valid_loss[i] < valid_loss[i - 1];
  const bool under_half = !valid_loss.empty() && valid_loss.back() < 0.5 * chance;
  // 400 steps take it under half of that; a shorter run (a test's) only has to fall
  const bool learned = falling && (under_half || cfg.steps < 400);
  std::printf("chance level %.3f; the loss %s %s half of it%s\n", chance,
              falling ? "fell at every evaluation" : "did not fall at every evaluation", under_half ? "to under" : "and ended above",
              learned ? ": it learns" : "");
  return learned ? 0 : 1;
}
