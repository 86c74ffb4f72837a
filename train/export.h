// train/export.h — what attnlab computes for a run's weights, written out as token ids and tensors,
// so that another implementation of the same model can be checked against it exactly
// (tools/attnlab_torch.py --check reads it; docs/checkpoints.md describes both files).
//
//   RunExport e = export_run("runs/qq", "best", /*test_sentences=*/-1);
//   write_run_export(e, "out");   // out/reference.json, out/gradients.safetensors
//
// reference.json:
//   weights        the weights file loaded (run_weights_file)
//   valid          the validation split in the batches evaluation scores (B, S, T, src, tgt_in,
//                  tgt_out; an mlm's also `input` and `targets`: its fixed mask), and `loss`, the
//                  mean loss per scored token as evaluation computes it for these weights now
//   grad_batch     the first validation batch with the masks its training loss used (an mlm's
//                  drawn from Rng(grad_seed), as a training step draws them), and each ReLU's
//                  inputs within `near_zero` of its largest |input|: `relu_near_zero`, a list of
//                  {node, index (flat), positive (the side attnlab took)}
//   test           seq2seq only: the first test source `lines`, their token ids `src` (as
//                  translate reads them: cut to max_len - 1, eos appended) and their `greedy`
//                  translations (token ids without bos and eos)
// gradients.safetensors: `loss` (1,), the training loss of grad_batch (label smoothing on,
// dropout off), and `grad/NAME` for every parameter NAME, in attnlab's layout.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <attnlab/core/tensor.h>

namespace attn {

struct RunExport {
  nlohmann::json reference;
  std::vector<std::pair<std::string, Tensor>> gradients;  // "loss", then "grad/NAME" in parameter order
};

// `which`: "best" or "last" (as load_run). `test_sentences`: how many test sentences a seq2seq
// run translates; -1: as many as the run's final test did (--test-sentences, 0 meaning all).
RunExport export_run(const std::string& dir, const std::string& which, int test_sentences);
// Creates out_dir if needed; each file is written atomically.
void write_run_export(const RunExport& e, const std::string& out_dir);

}  // namespace attn
