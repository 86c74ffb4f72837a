// attnlab/attnlab.h — the whole library in one include: tensors and kernels, the tape, layers and
// attention variants, the models, data and metrics, and runs (training, evaluation, reports).
//
//   #include <attnlab/attnlab.h>
//   int main(int, char** argv) {
//     attn::init_runtime(argv);         // optional: the CLI's BLAS kernels and OpenMP policy
//     attn::TrainConfig cfg;  cfg.task = "reverse";  cfg.out = "run";
//     return attn::run_training(cfg);
//   }
// Build with CMake (find_package(attnlab) and target_link_libraries(app PRIVATE attnlab::attnlab))
// or pkg-config (pkg-config --cflags --libs --static attnlab). Each header below can also be
// included alone.
#pragma once

#include <attnlab/version.h>

#include <attnlab/core/csv.h>
#include <attnlab/core/fileio.h>
#include <attnlab/core/json_file.h>
#include <attnlab/core/kernels.h>
#include <attnlab/core/rng.h>
#include <attnlab/core/runtime.h>
#include <attnlab/core/safetensors.h>
#include <attnlab/core/tensor.h>
#include <attnlab/core/threads.h>
#include <attnlab/core/usage_error.h>
#include <attnlab/core/words.h>

#include <attnlab/autograd/gradcheck.h>
#include <attnlab/autograd/ops.h>
#include <attnlab/autograd/registry.h>
#include <attnlab/autograd/tape.h>

#include <attnlab/nn/attention.h>
#include <attnlab/nn/kv_cache.h>
#include <attnlab/nn/layers.h>
#include <attnlab/nn/optim.h>

#include <attnlab/data/batch.h>
#include <attnlab/data/batching.h>
#include <attnlab/data/corpus.h>
#include <attnlab/data/metrics.h>
#include <attnlab/data/mo.h>
#include <attnlab/data/synthetic.h>
#include <attnlab/data/tokenizer.h>
#include <attnlab/data/utf8.h>

#include <attnlab/models/arch.h>
#include <attnlab/models/blocks.h>
#include <attnlab/models/checkpoint.h>
#include <attnlab/models/decode.h>
#include <attnlab/models/generate.h>
#include <attnlab/models/lm.h>
#include <attnlab/models/model.h>
#include <attnlab/models/transformer.h>

#include <attnlab/train/build_info.h>
#include <attnlab/train/config.h>
#include <attnlab/train/evaluate.h>
#include <attnlab/train/export.h>
#include <attnlab/train/frontier.h>
#include <attnlab/train/grid.h>
#include <attnlab/train/loaded_run.h>
#include <attnlab/train/plot.h>
#include <attnlab/train/report.h>
#include <attnlab/train/run_dir.h>
#include <attnlab/train/run_logs.h>
#include <attnlab/train/trainer.h>
