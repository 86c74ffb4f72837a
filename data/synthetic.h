// data/synthetic.h — seeded toy translation tasks: copy, reverse, sort.
//
// Sentences are space-separated symbols "s0".."s{K-1}", so the tasks run through the same
// corpus -> tokenizer -> train pipeline as real text.
//   ParallelCorpus c = synthetic_task("reverse", 1000, /*seed=*/1);   // "s3 s1 s4" -> "s4 s1 s3"
#pragma once
#include <string>

#include <attnlab/data/corpus.h>

namespace attn {

struct SyntheticSpec {
  int symbols = 16;
  int min_len = 3, max_len = 10;
};

ParallelCorpus synthetic_task(const std::string& task, int n, uint64_t seed, const SyntheticSpec& spec = {});
// Writes DIR/{train,valid,test}.{src,tgt} for the task.
void write_synthetic_corpus(const std::string& task, const std::string& dir, int n_train, int n_eval, uint64_t seed,
                            const SyntheticSpec& spec = {});

}  // namespace attn
