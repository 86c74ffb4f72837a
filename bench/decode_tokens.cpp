// bench/decode_tokens.cpp — what one generated token costs as the output grows.
//
// A cached decoder's step attends over every earlier position, so its time grows with the
// length at the attention's rate (O(T) per token, a small slope next to the step's fixed cost
// of projections and output layer). Anything that copies the cache per token adds to that
// slope. This times steps at forced lengths: a translation run decodes one source of 20 tokens
// for exactly L steps with beam 1 and 5 (eos ignored; the beam rows are reordered every step,
// row i taking row i+1's history, so that a search's reordering is paid); a language-model run
// continues a prompt of 20 tokens greedily for L tokens.
//
//   cmake --build build --target bench_decode_tokens
//   build/bench_decode_tokens RUN_DIR --threads 1
//
// Per length: ms per token over the L tokens, and ms per token over the last tenth of them; then
// the slope between 40 and 160 (µs per token per position). Result: docs/benchmarks.md.
#include "bench/micro.h"
#include <attnlab/models/decode.h>
#include <attnlab/train/loaded_run.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <vector>

using namespace attn;
using attn::bench::seconds;

struct Timing {
  double per_token = 1e30, at_end = 1e30;  // ms, best of the repetitions
};

// The next token of each row: the most likely one but eos (the length is forced).
static std::vector<int32_t> next_tokens(const Tensor& logits, int eos) {
  const int64_t R = logits.dim(0), V = logits.dim(1);
  std::vector<int32_t> out(size_t(R), 0);
  for (int64_t r = 0; r < R; r++) {
    const float* z = logits.data() + r * V;
    float best = -1e30f;
    for (int64_t v = 0; v < V; v++)
      if (v != eos && z[v] > best) best = z[v], out[size_t(r)] = int32_t(v);
  }
  return out;
}

static void keep(Timing& t, const std::vector<double>& step_seconds) {
  const size_t L = step_seconds.size(), tail = std::max<size_t>(1, L / 10);
  const double all = std::accumulate(step_seconds.begin(), step_seconds.end(), 0.0);
  const double end = std::accumulate(step_seconds.end() - long(tail), step_seconds.end(), 0.0);
  t.per_token = std::min(t.per_token, 1000 * all / double(L));
  t.at_end = std::min(t.at_end, 1000 * end / double(tail));
}

static Timing translate_forced(const Transformer& m, const std::vector<int32_t>& src, int beam, int L) {
  NoGradScope ng;
  Timing t;
  std::vector<int> rotate(static_cast<size_t>(beam)), repeat(static_cast<size_t>(beam), 0);
  for (int i = 0; i < beam; i++) rotate[size_t(i)] = (i + 1) % beam;
  for (int rep = 0; rep < 3; rep++) {
    DecodeState st = m.start(src, 1, int(src.size()));
    if (beam > 1) m.reorder(st, repeat);
    std::vector<int32_t> tokens(size_t(beam), m.cfg.bos_id);
    std::vector<double> steps;
    for (int s = 0; s < L; s++) {
      const double t0 = seconds();
      tokens = next_tokens(m.step(st, tokens), m.cfg.eos_id);
      if (beam > 1) m.reorder(st, rotate);
      steps.push_back(seconds() - t0);
    }
    keep(t, steps);
  }
  return t;
}

static Timing generate_forced(const LanguageModel& lm, const std::vector<int32_t>& prompt, int L) {
  NoGradScope ng;
  Timing t;
  for (int rep = 0; rep < 3; rep++) {
    LmState st = lm.start(1);
    Tensor z = lm.step(st, {lm.cfg.bos_id});
    for (int32_t id : prompt) z = lm.step(st, {id});
    std::vector<double> steps;
    for (int s = 0; s < L; s++) {
      const double t0 = seconds();
      z = lm.step(st, next_tokens(z, lm.cfg.eos_id));
      steps.push_back(seconds() - t0);
    }
    keep(t, steps);
  }
  return t;
}

int main(int argc, char** argv) {
  attn::bench::start(argc, argv);
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: bench_decode_tokens RUN_DIR [--threads N]\n");
    return 2;
  }
  LoadedRun run = load_run(argv[1]);
  const ModelConfig& cfg = run.model->cfg;
  std::vector<int32_t> src;  // 20 tokens: 19 words of the vocabulary and eos
  for (int i = 0; i < 19; i++) src.push_back(int32_t(4 + (i * 37) % (cfg.vocab - 4)));
  std::vector<int> lengths;
  for (int L : {10, 40, 160})
    if (L + 21 <= cfg.max_len) lengths.push_back(L);
  std::printf("%s (d %d, %d heads, vocab %d), %d thread(s)\n", argv[1], cfg.d_model, cfg.heads, cfg.vocab, num_threads());
  std::printf("%-22s %6s %14s %14s\n", "", "length", "ms/token", "ms/token at end");
  auto report = [&](const char* what, auto timing_at) {
    std::vector<Timing> ts;
    for (int L : lengths) {
      ts.push_back(timing_at(L));
      std::printf("%-22s %6d %14.3f %14.3f\n", what, L, ts.back().per_token, ts.back().at_end);
    }
    if (lengths.size() == 3)
      std::printf("%-22s slope 40 -> 160: %.2f us per token per position\n", what,
                  1000 * (ts[2].at_end - ts[1].at_end) / (160 - 40));
  };
  if (const Transformer* m = run.model->translator()) {
    src.push_back(cfg.eos_id);
    report("translate, beam 1", [&](int L) { return translate_forced(*m, src, 1, L); });
    report("translate, beam 5", [&](int L) { return translate_forced(*m, src, 5, L); });
  } else if (const LanguageModel* lm = run.model->generator()) {
    src.push_back(4);
    report("generate, greedy", [&](int L) { return generate_forced(*lm, src, L); });
  } else {
    std::fprintf(stderr, "%s: neither translates nor generates (an mlm run)\n", argv[1]);
    return 1;
  }
  return 0;
}
