// data/batching.cpp — length bucketing: sort by length (ties broken by a seeded shuffle), cut
// into batches under the token budget, shuffle the batch order per epoch.
#include <attnlab/data/batching.h>

#include <attnlab/core/rng.h>
#include <attnlab/core/usage_error.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

namespace attn {

Batch make_batch(const std::vector<const Example*>& ex, int pad, int bos, int eos) {
  Batch b;
  b.B = int(ex.size());
  for (auto* e : ex) {
    b.S = std::max(b.S, int(e->src.size()));
    b.T = std::max(b.T, int(e->tgt.size()) + 1);
  }
  b.src.assign(size_t(b.B) * b.S, pad);
  b.tgt_in.assign(size_t(b.B) * b.T, pad);
  b.tgt_out.assign(size_t(b.B) * b.T, pad);
  for (int i = 0; i < b.B; i++) {
    const Example& e = *ex[i];
    std::copy(e.src.begin(), e.src.end(), b.src.begin() + int64_t(i) * b.S);
    b.tgt_in[size_t(i) * b.T] = bos;
    std::copy(e.tgt.begin(), e.tgt.end(), b.tgt_in.begin() + int64_t(i) * b.T + 1);
    std::copy(e.tgt.begin(), e.tgt.end(), b.tgt_out.begin() + int64_t(i) * b.T);
    b.tgt_out[size_t(i) * b.T + e.tgt.size()] = eos;
    b.src_tokens += int64_t(e.src.size());
    b.tgt_tokens += int64_t(e.tgt.size()) + 1;
  }
  return b;
}

Batcher::Batcher(const std::vector<Example>& data, int max_tokens, uint64_t seed, bool shuffle)
    : data_(data), max_tokens_(max_tokens), seed_(seed), shuffle_(shuffle) {
  if (data.empty()) throw std::invalid_argument("batcher: no examples");
  if (max_tokens <= 0) throw UsageError(fmt::format("--batch-tokens: must be positive, got {}", max_tokens));
  plan_epoch(0);
}

void Batcher::plan_epoch(int64_t epoch) {
  Rng rng(seed_ * 1000003ull + uint64_t(epoch));
  std::vector<int> idx(data_.size());
  std::iota(idx.begin(), idx.end(), 0);
  if (shuffle_)
    for (size_t i = idx.size(); i > 1; i--) std::swap(idx[i - 1], idx[rng.below(uint32_t(i))]);
  auto len = [&](int i) { return std::max(data_[i].src.size(), data_[i].tgt.size() + 1); };
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return len(a) < len(b); });
  batches_.clear();
  std::vector<int> cur;
  size_t cur_max = 0;
  for (int i : idx) {
    const size_t m = std::max(cur_max, len(i));
    if (!cur.empty() && int64_t(m) * int64_t(cur.size() + 1) > max_tokens_) {
      batches_.push_back(cur);
      cur.clear();
      cur_max = 0;
    }
    cur.push_back(i);
    cur_max = std::max(cur_max, len(i));
  }
  if (!cur.empty()) batches_.push_back(cur);
  if (shuffle_)
    for (size_t i = batches_.size(); i > 1; i--) std::swap(batches_[i - 1], batches_[rng.below(uint32_t(i))]);
  pos_ = {epoch, 0};
}

Batch Batcher::next() {
  if (pos_.index >= int64_t(batches_.size())) plan_epoch(pos_.epoch + 1);
  std::vector<const Example*> ex;
  for (int i : batches_[size_t(pos_.index)]) ex.push_back(&data_[size_t(i)]);
  pos_.index++;
  return make_batch(ex, 0, 1, 2);
}

void Batcher::restore(Position p) {
  if (p.epoch < 0) throw std::invalid_argument(fmt::format("batcher: cannot resume at epoch {}", p.epoch));
  plan_epoch(p.epoch);
  if (p.index < 0 || p.index > int64_t(batches_.size()))
    throw std::invalid_argument(fmt::format("batcher: cannot resume at batch {} of an epoch of {} batches (a different corpus?)",
                                            p.index, batches_.size()));
  pos_.index = p.index;
}

}  // namespace attn
