// nn/kv_cache.cpp — appending, attending over and reordering the incremental decoder's cache.
#include <attnlab/nn/kv_cache.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include <attnlab/core/kernels.h>

namespace attn {

// (capacity, slots, H, D): the offset of position t, slot s, head h.
static int64_t at(const Tensor& kv, int64_t t, int64_t s, int64_t h) {
  return ((t * kv.dim(1) + s) * kv.dim(2) + h) * kv.dim(3);
}

void KVCache::append(const Tensor& k_new, const Tensor& v_new) {
  const int64_t R = k_new.dim(0), H = k_new.dim(1), D = k_new.dim(3);
  if (k_new.dim(2) != 1 || v_new.shape() != k_new.shape())
    throw std::logic_error("KVCache::append: one position per row, keys and values alike; got " +
                           shape_str(k_new.shape()) + " and " + shape_str(v_new.shape()));
  if (!keys.defined()) {
    keys = Tensor::empty({16, R, H, D});
    values = Tensor::empty({16, R, H, D});
    rows = int(R);
  }
  if (R != rows || H != keys.dim(2) || D != keys.dim(3))
    throw std::logic_error("KVCache::append: " + shape_str(k_new.shape()) + " does not fit a cache of " +
                           std::to_string(rows) + " rows, " + shape_str({keys.dim(2), keys.dim(3)}) + " heads x width");
  if (len == keys.dim(0)) {  // full: double the capacity (positions so far move once)
    for (Tensor* kv : {&keys, &values}) {
      Tensor grown = Tensor::empty({2 * kv->dim(0), kv->dim(1), H, D});
      std::copy(kv->data(), kv->data() + at(*kv, len, 0, 0), grown.data());
      *kv = grown;
    }
  }
  for (int64_t r = 0; r < R; r++)  // row r's new position goes into slot r: free at this t
    for (int64_t h = 0; h < H; h++) {
      std::copy_n(k_new.data() + (r * H + h) * D, D, keys.data() + at(keys, len, r, h));
      std::copy_n(v_new.data() + (r * H + h) * D, D, values.data() + at(values, len, r, h));
    }
  std::vector<int32_t> here(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; r++) here[size_t(r)] = int32_t(r);
  slot.push_back(std::move(here));
  len++;
}

Tensor KVCache::attend(const Tensor& q, const Tensor& mask, float scale, bool noself, Tensor* probs) const {
  const int64_t R = q.dim(0), H = q.dim(1), D = q.dim(3), T = len;
  if (R != rows || q.dim(2) != 1 || H != keys.dim(2) || D != keys.dim(3))
    throw std::logic_error("KVCache::attend: query " + shape_str(q.shape()) + " does not fit the cache");
  // Scores, raw: S[r, h, t] = q[r, h] · keys[t, slot[t][r], h]; softmax scales them.
  std::vector<const int32_t*> at_t(static_cast<size_t>(T));  // slot[t], as the kernels take it
  for (int64_t t = 0; t < T; t++) at_t[size_t(t)] = slot[size_t(t)].data();
  Tensor s = Tensor::empty({R, H, 1, T});
  cache_scores(s.data(), q.data(), keys.data(), at_t.data(), R, H, T, D, keys.dim(1));
  // The mask, with noself's: the newest position (the query's own) hidden when another is visible.
  Tensor m = !mask.defined() ? Tensor({R, 1, T}) : noself ? mask.clone() : mask;  // noself writes into its own copy
  if (m.shape() != Shape{R, 1, T})
    throw std::logic_error("KVCache::attend: mask " + shape_str(m.shape()) + " for " + std::to_string(R) + " rows of " +
                           std::to_string(T) + " positions");
  if (noself)
    for (int64_t r = 0; r < R; r++) {
      float* row = m.data() + r * T;
      bool other = false;
      for (int64_t t = 0; t + 1 < T; t++) other = other || row[t] == 0.f;
      if (other) row[T - 1] = -std::numeric_limits<float>::infinity();
    }
  Tensor p = Tensor::empty({R, H, 1, T});
  softmax_forward(p.data(), s.data(), m.data(), int(R), int(H), 1, int(T), scale);
  Tensor o = Tensor::empty({R, H, 1, D});  // o[r, h] = Σ_t P[r, h, t] values[t, slot[t][r], h]
  cache_context(o.data(), p.data(), values.data(), at_t.data(), R, H, T, D, values.dim(1));
  if (probs) *probs = p;
  return o;
}

void KVCache::reorder(const std::vector<int>& new_rows) {
  if (!keys.defined()) return;  // nothing cached yet: the first append sets the rows
  for (int r : new_rows)
    if (r < 0 || r >= rows)
      throw std::logic_error("KVCache::reorder: row " + std::to_string(r) + " of " + std::to_string(rows));
  const int64_t R = int64_t(new_rows.size());
  if (R > keys.dim(1)) {  // more rows than slots: each row's positions copied into its own slot
    const int64_t H = keys.dim(2), D = keys.dim(3);
    for (Tensor* kv : {&keys, &values}) {
      Tensor wide = Tensor::empty({kv->dim(0), R, H, D});
      for (int64_t t = 0; t < len; t++)
        for (int64_t i = 0; i < R; i++)
          std::copy_n(kv->data() + at(*kv, t, slot[size_t(t)][size_t(new_rows[size_t(i)])], 0), H * D,
                      wide.data() + at(wide, t, i, 0));
      *kv = wide;
    }
    for (auto& st : slot) {
      st.resize(size_t(R));
      for (int64_t i = 0; i < R; i++) st[size_t(i)] = int32_t(i);
    }
    rows = int(R);
    return;
  }
  for (auto& st : slot) {  // the indices move; the keys and values stay
    std::vector<int32_t> moved(static_cast<size_t>(R));
    for (int64_t i = 0; i < R; i++) moved[size_t(i)] = st[size_t(new_rows[size_t(i)])];
    st = std::move(moved);
  }
  rows = int(R);
}

}  // namespace attn
