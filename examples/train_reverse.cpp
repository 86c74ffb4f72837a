// examples/train_reverse.cpp — train a tiny QQᵀ transformer from C++, without the command line.
//
// The library's run layer (train/) does what `attnlab train` does: a Trainer reads the data,
// builds the tokenizer, model and optimizer, and reports its progress through a callback.
// Here: a 1+1-layer model learns to reverse sequences of symbols; the program checks that the
// validation loss fell and exits 1 if it did not.
//   build/examples/train_reverse [run directory]
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "train/trainer.h"

int main(int argc, char** argv) {
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
  cfg.steps = 400;
  cfg.eval_every = 100;
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
  bool falling = valid_loss.size() == 4;
  for (size_t i = 1; i < valid_loss.size(); i++) falling = falling && valid_loss[i] < valid_loss[i - 1];
  const bool learned = falling && valid_loss.back() < 0.5 * chance;
  std::printf("chance level %.3f; the loss %s\n", chance,
              learned ? "fell at every evaluation to under half of it: it learns" : "did not fall to under half of it");
  return learned ? 0 : 1;
}
